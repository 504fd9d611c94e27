// Publish/subscribe: subscriptions, delivery, acknowledgements, ordering,
// kick-out, limits, server-side publishes and malformed packets.

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {newScope, startFixture, sleep, waitUntil, collect, WAIT} from './lib/fixture.mjs';

const T = {timeout: 15000};
const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

let main;
before(async () => { main = await startFixture([]); });
after(async () => { if (main) await main.stop(); });

// Subscribes an official client and waits until the server confirmed it.
async function subscribed(client, channelName, options) {
  const channel = client.socket.subscribe(channelName, options);
  const data = collect(channel, `data on ${channelName}`);
  await waitUntil(() => client.socket.isSubscribed(channelName), {label: `subscription to ${channelName}`});
  return {channel, data};
}

// A raw client after its handshake.
async function rawClient(scope, port = main.port) {
  const raw = scope.raw(port);
  await raw.handshake();
  return raw;
}

const publishesOn = (raw, channel) =>
  raw.packets().filter((p) => p.event === '#publish' && p.data && p.data.channel === channel);

// ---------------------------------------------------------------------------

describe('subscribe, publish, unsubscribe', () => {
  test('official client: subscribe, receive its own publish, unsubscribe', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const channel = client.socket.subscribe('basic');
    const data = collect(channel, 'basic data');
    await channel.listener('subscribe').once(WAIT);
    assert.equal(channel.state, 'subscribed');
    assert.deepEqual(client.socket.subscriptions(), ['basic']);
    assert.deepEqual((await client.socket.invoke('stats')).subscriptions, ['basic']);

    assert.equal(await client.socket.invokePublish('basic', {n: 1}), undefined);
    assert.deepEqual(await data.next(), {n: 1});

    client.socket.unsubscribe('basic');
    assert.equal(client.socket.isSubscribed('basic', true), false);
    await waitUntil(async () => (await client.socket.invoke('stats')).subscriptions.length === 0, {label: 'server-side unsubscribe'});
    await client.socket.invokePublish('basic', {n: 2});
    await sleep(200);
    assert.deepEqual(data.items, [{n: 1}]);
  });

  test('a publish reaches every subscriber and the publisher, and nobody else', T, async (t) => {
    const scope = newScope(t);
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => scope.connectedClient(main.port)));
    const onA = (await subscribed(a, 'room')).data;
    const onB = (await subscribed(b, 'room')).data;
    const onCOther = (await subscribed(c, 'other-room')).data;

    await a.socket.invokePublish('room', 'from a');
    assert.equal(await onA.next(), 'from a');
    assert.equal(await onB.next(), 'from a');

    a.socket.transmitPublish('room', 'transmitted by a');
    assert.equal(await onA.next(), 'transmitted by a');
    assert.equal(await onB.next(), 'transmitted by a');

    // A client may publish to a channel it is not subscribed to.
    await c.socket.invokePublish('room', 'from c');
    assert.equal(await onA.next(), 'from c');
    assert.equal(await onB.next(), 'from c');
    await sleep(200);
    assert.deepEqual(onCOther.items, []);
    assert.equal(onA.items.length, 3);
    assert.equal(onB.items.length, 3);
  });

  test('raw: #subscribe is acknowledged with {"rid":N} and no data key', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    assert.deepEqual(await raw.invoke('#subscribe', {channel: 'raw/sub'}), {rid: 2});
    // Subscription data and waitForAuth (sent by the official client) are accepted.
    assert.deepEqual(await raw.invoke('#subscribe', {channel: 'raw/sub2', data: {x: 1}}), {rid: 3});
    // Subscribing twice is fine and still delivers once.
    assert.deepEqual(await raw.invoke('#subscribe', {channel: 'raw/sub'}), {rid: 4});
    assert.deepEqual((await raw.invoke('stats')).data.subscriptions.sort(), ['raw/sub', 'raw/sub2']);
    await raw.invoke('#publish', {channel: 'raw/sub', data: 'once'});
    await raw.invoke('echo', 'barrier');
    await sleep(200);
    assert.deepEqual(publishesOn(raw, 'raw/sub'), [{event: '#publish', data: {channel: 'raw/sub', data: 'once'}}]);
  });

  test('raw: invokePublish is acknowledged {"rid":N} (no data key) with and without subscribers', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    const none = await raw.invoke('#publish', {channel: 'ack/nobody', data: 'x'});
    assert.deepEqual(none, {rid: none.rid});
    assert.equal(hasOwn(none, 'data'), false);

    await raw.invoke('#subscribe', {channel: 'ack/me'});
    const mine = await raw.invoke('#publish', {channel: 'ack/me', data: 'y'});
    assert.deepEqual(mine, {rid: mine.rid});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'ack/me', data: 'y'}});
    // Only one delivery, and it was not answered with any other frame.
    await sleep(100);
    assert.equal(publishesOn(raw, 'ack/nobody').length, 0);
  });

  test('official client: invokePublish resolves with undefined with and without subscribers', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    assert.equal(await client.socket.invokePublish('nobody/here', 1), undefined);
    await subscribed(client, 'somebody/here');
    assert.equal(await client.socket.invokePublish('somebody/here', 1), undefined);
  });

  test('raw: transmitted #publish (no cid) is delivered and not answered', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('#subscribe', {channel: 'tp'});
    raw.send({event: '#publish', data: {channel: 'tp', data: 'no ack'}});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'tp', data: 'no ack'}});
    await sleep(200);
    assert.deepEqual(raw.packets().filter((p) => 'rid' in p).map((p) => p.rid), [1, 2]);
  });

  test('raw: published values keep their exact form (falsy values, missing data)', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('#subscribe', {channel: 'falsy'});
    const sentFrames = [
      '{"event":"#publish","data":{"channel":"falsy","data":false},"cid":10}',
      '{"event":"#publish","data":{"channel":"falsy","data":0},"cid":11}',
      '{"event":"#publish","data":{"channel":"falsy","data":""},"cid":12}',
      '{"event":"#publish","data":{"channel":"falsy","data":null},"cid":13}',
      '{"event":"#publish","data":{"channel":"falsy"},"cid":14}',
    ];
    for (const frame of sentFrames) raw.send(frame);
    await raw.response(14);
    await waitUntil(() => publishesOn(raw, 'falsy').length === 5, {label: '5 deliveries'});
    assert.deepEqual(publishesOn(raw, 'falsy'), [
      {event: '#publish', data: {channel: 'falsy', data: false}},
      {event: '#publish', data: {channel: 'falsy', data: 0}},
      {event: '#publish', data: {channel: 'falsy', data: ''}},
      {event: '#publish', data: {channel: 'falsy', data: null}},
      {event: '#publish', data: {channel: 'falsy'}},
    ]);
  });

  test('raw: the empty string is a valid channel name', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    assert.deepEqual(await raw.invoke('#subscribe', {channel: ''}, {cid: 5}), {rid: 5});
    await raw.invoke('#publish', {channel: '', data: 'empty'});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: '', data: 'empty'}});
  });

  test('raw: after #unsubscribe nothing more arrives on that channel', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    const publisher = await scope.connectedClient(main.port);
    await raw.invoke('#subscribe', {channel: 'u/1'});
    await raw.invoke('#subscribe', {channel: 'u/2'});
    await publisher.socket.invokePublish('u/1', 'before');
    await raw.nextPacket((p) => p.event === '#publish' && p.data.channel === 'u/1');

    // With a cid the unsubscribe is acknowledged with {"rid":N}.
    assert.deepEqual(await raw.invoke('#unsubscribe', 'u/1', {cid: 40}), {rid: 40});
    // Without a cid (as the official client sends it) nothing comes back.
    raw.send({event: '#unsubscribe', data: 'u/2'});
    await raw.invoke('echo', 'barrier', {cid: 41});
    assert.deepEqual((await raw.invoke('stats', undefined, {cid: 42})).data.subscriptions, []);

    for (let i = 0; i < 5; i++) {
      await publisher.socket.invokePublish('u/1', `after ${i}`);
      await publisher.socket.invokePublish('u/2', `after ${i}`);
    }
    await sleep(300);
    assert.deepEqual(publishesOn(raw, 'u/1').map((p) => p.data.data), ['before']);
    assert.deepEqual(publishesOn(raw, 'u/2'), []);
    assert.deepEqual(raw.packets().filter((p) => 'rid' in p).map((p) => p.rid).sort((x, y) => x - y), [1, 2, 3, 40, 41, 42]);
  });

  test('official client: unsubscribe sends {"event":"#unsubscribe","data":channel} and deliveries stop', T, async (t) => {
    const scope = newScope(t);
    const [client, publisher] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const {data} = await subscribed(client, 'stop/me');
    await publisher.socket.invokePublish('stop/me', 1);
    assert.equal(await data.next(), 1);
    client.socket.unsubscribe('stop/me');
    assert.ok(client.sentPackets().some((p) => p.event === '#unsubscribe' && p.data === 'stop/me'));
    await waitUntil(async () => (await client.socket.invoke('stats')).subscriptions.length === 0, {label: 'unsubscribed'});
    await publisher.socket.invokePublish('stop/me', 2);
    await sleep(200);
    assert.deepEqual(data.items, [1]);
  });
});

// ---------------------------------------------------------------------------

describe('fan-out and ordering', () => {
  test('50 subscribers each get every message exactly once and in order', T, async (t) => {
    const scope = newScope(t);
    const subscribers = await Promise.all(Array.from({length: 50}, () => scope.connectedClient(main.port)));
    const streams = await Promise.all(subscribers.map(async (c) => (await subscribed(c, 'fanout')).data));
    const publisher = await scope.connectedClient(main.port);
    const N = 100;
    for (let i = 0; i < N; i++) publisher.socket.transmitPublish('fanout', i);
    await Promise.all(streams.map((s) => s.count(N, {timeout: 12000})));
    await sleep(200);
    const expected = Array.from({length: N}, (_, i) => i);
    for (const s of streams) assert.deepEqual(s.items, expected);
  });

  test('1000 publishes from one client arrive in order', T, async (t) => {
    const scope = newScope(t);
    const [publisher, subscriber] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const onSub = (await subscribed(subscriber, 'ordered')).data;
    const onPub = (await subscribed(publisher, 'ordered')).data;
    const N = 1000;
    const acks = [];
    for (let i = 0; i < N; i++) acks.push(publisher.socket.invokePublish('ordered', {i}));
    await Promise.all(acks);
    await Promise.all([onSub.count(N, {timeout: 12000}), onPub.count(N, {timeout: 12000})]);
    const expected = Array.from({length: N}, (_, i) => ({i}));
    assert.deepEqual(onSub.items, expected);
    assert.deepEqual(onPub.items, expected);
  });

  test('binary data is published as {base64:true,data}', T, async (t) => {
    const scope = newScope(t);
    const [publisher, subscriber] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const onSub = (await subscribed(subscriber, 'binary')).data;
    await publisher.socket.invokePublish('binary', Buffer.from([0, 1, 2, 253, 254, 255]));
    await publisher.socket.invokePublish('binary', {file: new Uint8Array([104, 105]).buffer});
    assert.deepEqual(await onSub.next(), {base64: true, data: 'AAEC/f7/'});
    assert.deepEqual(await onSub.next(), {file: {base64: true, data: 'aGk='}});
  });

  test('a 1 MB publish reaches every subscriber', T, async (t) => {
    const scope = newScope(t);
    const clients = await Promise.all([1, 2, 3].map(() => scope.connectedClient(main.port)));
    const streams = await Promise.all(clients.map(async (c) => (await subscribed(c, 'big')).data));
    const big = {blob: 'b'.repeat(1024 * 1024), tail: [1, 2, 3]};
    await clients[0].socket.invokePublish('big', big);
    for (const s of streams) assert.deepEqual(await s.next({timeout: 12000}), big);
  });

  test('official client with batchOnHandshake: batched subscribes and publishes work', T, async (t) => {
    const scope = newScope(t);
    const client = scope.client(main.port, {batchOnHandshake: true});
    const channels = ['batch/a', 'batch/b', 'batch/c'];
    const streams = channels.map((name) => collect(client.socket.subscribe(name), name));
    await client.waitEvent('connect');
    await waitUntil(() => channels.every((name) => client.socket.isSubscribed(name)), {label: 'batched subscriptions'});
    for (const name of channels) client.socket.transmitPublish(name, name);
    for (let i = 0; i < channels.length; i++) assert.equal(await streams[i].next(), channels[i]);
    assert.ok(client.sent.items.some((f) => f.text && f.text.startsWith('[')), 'the client did not batch');
  });
});

// ---------------------------------------------------------------------------

describe('kick-out, limits, reconnect', () => {
  test('kick: the client gets kickOut, drops the channel and does not send #unsubscribe', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const {channel, data} = await subscribed(client, 'kick/me');
    await subscribed(client, 'kick/keep');
    const kicked = collect(channel.listener('kickOut'), 'channel kickOut');
    assert.equal(await client.socket.invoke('kick', {channel: 'kick/me', message: 'out you go'}), 'ok');
    assert.deepEqual(await client.waitEvent('kickOut'), {channel: 'kick/me', message: 'out you go'});
    assert.deepEqual(await kicked.next(), {message: 'out you go'});
    assert.equal(client.socket.isSubscribed('kick/me', true), false);
    assert.deepEqual((await client.socket.invoke('stats')).subscriptions, ['kick/keep']);
    await client.socket.invokePublish('kick/me', 'too late');
    await sleep(200);
    assert.deepEqual(data.items, []);
    assert.equal(client.sentPackets().filter((p) => p.event === '#unsubscribe').length, 0);
  });

  test('raw: kick sends {"event":"#kickOut","data":{"channel","message"}} and answers "ok"', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('#subscribe', {channel: 'k/raw'});
    const response = await raw.invoke('kick', {channel: 'k/raw', message: 'bye'});
    assert.deepEqual(response, {rid: response.rid, data: 'ok'});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#kickOut'), {event: '#kickOut', data: {channel: 'k/raw', message: 'bye'}});
    assert.deepEqual((await raw.invoke('stats')).data.subscriptions, []);
  });

  test('kick from a channel the socket is not in still answers "ok"', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    assert.equal(await client.socket.invoke('kick', {channel: 'never/joined', message: 'x'}), 'ok');
    assert.equal(client.socket.state, 'open');
    assert.equal(await client.socket.invoke('echo', 1), 1);
  });

  test('-channel-limit: subscribing past the limit fails with BrokerError', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture(['-channel-limit', '3']);
    const client = await scope.connectedClient(fx.port);
    for (const name of ['lim/1', 'lim/2', 'lim/3']) await subscribed(client, name);
    const channel = client.socket.subscribe('lim/4');
    const failure = await channel.listener('subscribeFail').once(WAIT);
    assert.equal(failure.error.name, 'BrokerError');
    assert.equal(client.socket.isSubscribed('lim/4', true), false);
    const event = await client.waitEvent('subscribeFail');
    assert.equal(event.channel, 'lim/4');
    assert.deepEqual((await client.socket.invoke('stats')).subscriptions.sort(), ['lim/1', 'lim/2', 'lim/3']);

    // After leaving one channel there is room again.
    client.socket.unsubscribe('lim/1');
    await waitUntil(async () => (await client.socket.invoke('stats')).subscriptions.length === 2, {label: 'room again'});
    await subscribed(client, 'lim/5');

    const raw = await rawClient(scope, fx.port);
    for (const name of ['r/1', 'r/2', 'r/3']) assert.deepEqual(await raw.invoke('#subscribe', {channel: name}), {rid: raw.nextCid - 1});
    const refused = await raw.invoke('#subscribe', {channel: 'r/4'});
    assert.equal(refused.error.name, 'BrokerError');
    assert.match(refused.error.message, /^Failed to subscribe socket to the r\/4 channel - .*limit/);
    assert.equal(hasOwn(refused, 'data'), false);
  });

  test('-allow-client-publish=false: client publishes fail with InvalidActionError; server publishes still work', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture(['-allow-client-publish=false']);
    const client = await scope.connectedClient(fx.port);
    const {data} = await subscribed(client, 'nopub');
    await assert.rejects(client.socket.invokePublish('nopub', 'x'), {name: 'InvalidActionError'});
    client.socket.transmitPublish('nopub', 'y');
    assert.equal(await client.socket.invoke('serverPublish', {channel: 'nopub', data: 'from server'}), 'ok');
    assert.equal(await data.next(), 'from server');
    client.socket.transmit('broadcast', {channel: 'nopub', data: 'broadcast'});
    assert.equal(await data.next(), 'broadcast');
    await sleep(100);
    assert.deepEqual(data.items, ['from server', 'broadcast']);

    const raw = await rawClient(scope, fx.port);
    const refused = await raw.invoke('#publish', {channel: 'nopub', data: 'raw'});
    assert.deepEqual(refused.error, {message: 'Client publish feature is disabled', name: 'InvalidActionError'});
  });

  test('subscriptions are renewed after a reconnect', T, async (t) => {
    const scope = newScope(t);
    const [client, publisher] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const one = (await subscribed(client, 'renew/1')).data;
    const two = (await subscribed(client, 'renew/2')).data;
    const firstId = client.socket.id;
    await client.socket.invoke('disconnectMe', {code: 4000});
    await client.waitEvent('disconnect');
    const status = await client.waitEvent('connect');
    assert.notEqual(status.id, firstId);
    await waitUntil(async () => {
      if (client.socket.state !== 'open') return false;
      const stats = await client.socket.invoke('stats');
      return stats.subscriptions.length === 2;
    }, {label: 'server-side subscriptions after reconnect'});
    assert.deepEqual([...(await client.socket.invoke('stats')).subscriptions].sort(), ['renew/1', 'renew/2']);
    await waitUntil(() => client.socket.isSubscribed('renew/1') && client.socket.isSubscribed('renew/2'), {label: 'client-side subscribed'});
    await publisher.socket.invokePublish('renew/1', 'again 1');
    await publisher.socket.invokePublish('renew/2', 'again 2');
    assert.equal(await one.next(), 'again 1');
    assert.equal(await two.next(), 'again 2');
  });
});

// ---------------------------------------------------------------------------

describe('server-side publishes', () => {
  test('serverPublish reaches every subscriber, the caller included', T, async (t) => {
    const scope = newScope(t);
    const [a, b] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const onA = (await subscribed(a, 'sp')).data;
    const onB = (await subscribed(b, 'sp')).data;
    assert.equal(await a.socket.invoke('serverPublish', {channel: 'sp', data: {n: 1}}), 'ok');
    assert.deepEqual(await onA.next(), {n: 1});
    assert.deepEqual(await onB.next(), {n: 1});
    assert.equal(await a.socket.invoke('serverPublish', {channel: 'sp', data: null}), 'ok');
    assert.equal(await onA.next(), null);
  });

  test('broadcast (a transmit) publishes data.data to data.channel', T, async (t) => {
    const scope = newScope(t);
    const [a, b] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const onA = (await subscribed(a, 'bc')).data;
    const onB = (await subscribed(b, 'bc')).data;
    a.socket.transmit('broadcast', {channel: 'bc', data: ['x']});
    assert.deepEqual(await onA.next(), ['x']);
    assert.deepEqual(await onB.next(), ['x']);
  });

  test('raw: a server-side publish is {"event":"#publish","data":{"channel","data"}}', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('#subscribe', {channel: 'srv'});
    await raw.invoke('serverPublish', {channel: 'srv', data: 'hello'});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'srv', data: 'hello'}});
    raw.send({event: 'broadcast', data: {channel: 'srv'}});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'srv'}});
  });
});

// ---------------------------------------------------------------------------

describe('malformed pub/sub packets (raw)', () => {
  const SUB = 'Subscribe channel name was malformatted';
  const UNSUB = 'Unsubscribe channel name was malformatted';
  const PUB = 'Publish channel name was malformatted';
  const cases = [
    ['#subscribe with data {}', '#subscribe', {}, 'InvalidActionError', SUB],
    ['#subscribe with a string', '#subscribe', 'chan', 'InvalidActionError', SUB],
    ['#subscribe without data', '#subscribe', undefined, 'InvalidActionError', SUB],
    ['#subscribe with a numeric channel', '#subscribe', {channel: 5}, 'InvalidActionError', SUB],
    ['#unsubscribe with an object', '#unsubscribe', {channel: 'x'}, 'InvalidActionError', UNSUB],
    ['#unsubscribe with a number', '#unsubscribe', 5, 'InvalidActionError', UNSUB],
    ['#unsubscribe without data', '#unsubscribe', undefined, 'InvalidActionError', UNSUB],
    ['#unsubscribe from a channel not subscribed', '#unsubscribe', 'not/subscribed', 'BrokerError',
      /^Failed to unsubscribe socket from the not\/subscribed channel - /],
    ['#publish without channel', '#publish', {data: 1}, 'InvalidActionError', PUB],
    ['#publish with a string', '#publish', 'chan', 'InvalidActionError', PUB],
    ['#publish without data', '#publish', undefined, 'InvalidActionError', PUB],
    ['#publish with a numeric channel', '#publish', {channel: 5, data: 1}, 'InvalidActionError', PUB],
  ];

  test('each gets an error response with the reference error name and message; the socket stays open', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    for (const [label, event, data, name, message] of cases) {
      const response = await raw.invoke(event, data);
      assert.ok(response.error, `${label}: no error`);
      assert.equal(response.error.name, name, label);
      if (message instanceof RegExp) assert.match(response.error.message, message, label);
      else assert.equal(response.error.message, message, label);
      assert.equal(hasOwn(response, 'data'), false, label);
    }
    assert.ok(raw.isOpen());
    assert.deepEqual((await raw.invoke('stats')).data.subscriptions, []);
  });

  test('#subscribe without a cid does nothing', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    raw.send({event: '#subscribe', data: {channel: 'nocid'}});
    await raw.invoke('echo', 'barrier');
    assert.deepEqual((await raw.invoke('stats')).data.subscriptions, []);
    await raw.invoke('#publish', {channel: 'nocid', data: 1});
    await sleep(200);
    assert.deepEqual(publishesOn(raw, 'nocid'), []);
  });

  test('malformed packets without a cid are ignored silently', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    raw.send({event: '#publish', data: 'bad'});
    raw.send({event: '#unsubscribe', data: 5});
    raw.send({event: '#unsubscribe', data: 'not/subscribed'});
    assert.deepEqual(await raw.invoke('echo', 'ok', {cid: 9}), {rid: 9, data: 'ok'});
    await sleep(100);
    assert.deepEqual(raw.packets().filter((p) => 'rid' in p).map((p) => p.rid), [1, 9]);
    assert.ok(raw.isOpen());
  });
});
