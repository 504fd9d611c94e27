// The fixture's middleware rules: handshake rejection at both stages,
// subscribe rules (private/, forbidden/), publish-in rules (readonly/,
// upper/), the publish-out rule (secret/) and the blocked procedure.

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {newScope, startFixture, sleep, waitUntil, collect, WAIT} from './lib/fixture.mjs';
import {validToken} from './lib/jwt.mjs';

const T = {timeout: 15000};
const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

let main;
before(async () => { main = await startFixture([]); });
after(async () => { if (main) await main.stop(); });

async function subscribed(client, channelName, options) {
  const channel = client.socket.subscribe(channelName, options);
  const data = collect(channel, `data on ${channelName}`);
  await waitUntil(() => client.socket.isSubscribed(channelName), {label: `subscription to ${channelName}`});
  return {channel, data};
}

async function loggedIn(scope, username) {
  const client = await scope.connectedClient(main.port);
  assert.equal(await client.socket.invoke('login', {username}), 'ok');
  await client.waitEvent('authenticate');
  return client;
}

async function rawClient(scope, token = null) {
  const raw = scope.raw(main.port);
  await raw.handshake(token);
  return raw;
}

const publishesOn = (raw, channel) =>
  raw.packets().filter((p) => p.event === '#publish' && p.data && p.data.channel === channel);

// ---------------------------------------------------------------------------

describe('handshake middleware', () => {
  test('reject=1: the upgrade is refused (HTTP 401), no WebSocket is opened', T, async (t) => {
    const scope = newScope(t);
    for (const query of ['reject=1', 'a=b&reject=1']) {
      const raw = scope.raw(main.port, {query});
      await assert.rejects(raw.open(), /HTTP 401/, query);
    }
    // Other values of the parameter are allowed.
    const allowed = scope.raw(main.port, {query: 'reject=0'});
    assert.equal((await allowed.handshake()).isAuthenticated, false);
  });

  test('reject=1: the official client never connects and keeps retrying after 1006', T, async (t) => {
    const scope = newScope(t);
    const client = scope.client(main.port, {query: {reject: '1'}});
    const aborted = await client.waitEvent('connectAbort');
    assert.equal(aborted.code, 1006);
    await client.waitEvent('connectAbort');
    assert.deepEqual(client.all('connect'), []);
    assert.ok(client.all('connecting').length >= 1, 'the client did not retry');
  });

  test('rejectsc=1: raw handshake gets a HandshakeRejectedError response (statusCode 4008), then close 4008', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port, {query: 'rejectsc=1'});
    await raw.open();
    raw.send({event: '#handshake', data: {authToken: null}, cid: 1});
    const response = await raw.response(1);
    assert.equal(hasOwn(response, 'data'), false);
    assert.equal(response.error.name, 'HandshakeRejectedError');
    assert.equal(response.error.statusCode, 4008);
    assert.equal(typeof response.error.message, 'string');
    const closed = await raw.waitClose();
    assert.equal(closed.code, 4008);
    assert.equal(closed.reason, '');
  });

  test('rejectsc=1: the official client gets close 4008 and HandshakeRejectedError, never connects', T, async (t) => {
    const scope = newScope(t);
    const client = scope.client(main.port, {query: {rejectsc: '1'}});
    const aborted = await client.waitEvent('connectAbort');
    assert.equal(aborted.code, 4008);
    const error = await client.waitEvent('error', {filter: (e) => e.error.name === 'HandshakeRejectedError'});
    assert.equal(error.error.statusCode, 4008);
    // 4008 is retried with back-off, and rejected again.
    const again = await client.waitEvent('connectAbort');
    assert.equal(again.code, 4008);
    assert.deepEqual(client.all('connect'), []);
  });

  test('rejectsc=1 with a valid token is still rejected', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port, {query: 'rejectsc=1'});
    await raw.open();
    raw.send({event: '#handshake', data: {authToken: validToken({username: 'a'})}, cid: 1});
    assert.equal((await raw.response(1)).error.name, 'HandshakeRejectedError');
    assert.equal((await raw.waitClose()).code, 4008);
  });
});

// ---------------------------------------------------------------------------

describe('invoke middleware', () => {
  test('the procedure "blocked" fails with BlockedError', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await assert.rejects(client.socket.invoke('blocked', {any: 'data'}), {name: 'BlockedError'});
    await assert.rejects(client.socket.invoke('blocked'), {name: 'BlockedError'});
    assert.equal(client.socket.state, 'open');
    assert.equal(await client.socket.invoke('echo', 'next'), 'next');
  });

  test('raw: {"rid":N,"error":{"message",...,"name":"BlockedError"}}; a transmit "blocked" gets nothing', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    const response = await raw.invoke('blocked', 1, {cid: 12});
    assert.equal(response.rid, 12);
    assert.equal(hasOwn(response, 'data'), false);
    assert.equal(response.error.name, 'BlockedError');
    assert.equal(typeof response.error.message, 'string');
    raw.send({event: 'blocked', data: 1});
    await raw.invoke('echo', 'barrier', {cid: 13});
    await sleep(100);
    assert.deepEqual(raw.packets().filter((p) => 'rid' in p).map((p) => p.rid), [1, 12, 13]);
  });
});

// ---------------------------------------------------------------------------

describe('subscribe middleware', () => {
  test('private/ needs an authenticated socket: AuthRequiredError, then allowed after login', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const channel = client.socket.subscribe('private/club');
    const failure = await channel.listener('subscribeFail').once(WAIT);
    assert.equal(failure.error.name, 'AuthRequiredError');
    assert.equal(client.socket.isSubscribed('private/club', true), false);
    assert.deepEqual((await client.socket.invoke('stats')).subscriptions, []);

    await client.socket.invoke('login', {username: 'member'});
    await client.waitEvent('authenticate');
    const {data} = await subscribed(client, 'private/club');
    await client.socket.invokePublish('private/club', 'members only');
    assert.equal(await data.next(), 'members only');
  });

  test('private/ with waitForAuth: subscribed as soon as the client logs in', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const channel = client.socket.subscribe('private/wait', {waitForAuth: true});
    await sleep(200);
    assert.equal(channel.state, 'pending');
    assert.equal(client.sentPackets().filter((p) => p.event === '#subscribe').length, 0);
    await client.socket.invoke('login', {username: 'patient'});
    await channel.listener('subscribe').once(WAIT);
    const sub = client.sentPackets().find((p) => p.event === '#subscribe');
    assert.deepEqual(sub.data, {channel: 'private/wait', waitForAuth: true});
    assert.deepEqual((await client.socket.invoke('stats')).subscriptions, ['private/wait']);
  });

  test('raw: private/ with a valid handshake token is allowed; only the prefix matters', T, async (t) => {
    const scope = newScope(t);
    const anon = await rawClient(scope);
    const refused = await anon.invoke('#subscribe', {channel: 'private/x'});
    assert.equal(refused.error.name, 'AuthRequiredError');
    assert.equal(hasOwn(refused, 'data'), false);
    assert.deepEqual(await anon.invoke('#subscribe', {channel: 'privatex'}, {cid: 30}), {rid: 30});
    assert.deepEqual(await anon.invoke('#subscribe', {channel: 'x/private/'}, {cid: 31}), {rid: 31});
    // Publishing to private/ is not restricted, only subscribing.
    assert.deepEqual(await anon.invoke('#publish', {channel: 'private/x', data: 1}, {cid: 32}), {rid: 32});

    const authed = await rawClient(scope, validToken({username: 'tokenholder'}));
    assert.deepEqual(await authed.invoke('#subscribe', {channel: 'private/x'}, {cid: 7}), {rid: 7});
  });

  test('forbidden/ is always refused with ForbiddenError, even when authenticated', T, async (t) => {
    const scope = newScope(t);
    const anon = await scope.connectedClient(main.port);
    const channel = anon.socket.subscribe('forbidden/zone');
    assert.equal((await channel.listener('subscribeFail').once(WAIT)).error.name, 'ForbiddenError');

    const authed = await loggedIn(scope, 'boss');
    const again = authed.socket.subscribe('forbidden/zone');
    assert.equal((await again.listener('subscribeFail').once(WAIT)).error.name, 'ForbiddenError');
    assert.deepEqual((await authed.socket.invoke('stats')).subscriptions, []);

    const raw = await rawClient(scope, validToken({username: 'boss'}));
    const refused = await raw.invoke('#subscribe', {channel: 'forbidden/zone'});
    assert.equal(refused.error.name, 'ForbiddenError');
  });
});

// ---------------------------------------------------------------------------

describe('publish-in middleware', () => {
  test('readonly/: client publishes fail with ReadOnlyError and reach nobody; subscribing is fine', T, async (t) => {
    const scope = newScope(t);
    const [publisher, reader] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const {data} = await subscribed(reader, 'readonly/news');
    await assert.rejects(publisher.socket.invokePublish('readonly/news', 'x'), {name: 'ReadOnlyError'});
    publisher.socket.transmitPublish('readonly/news', 'y');
    // Server-side publishes do not go through publish-in middleware.
    assert.equal(await publisher.socket.invoke('serverPublish', {channel: 'readonly/news', data: 'official'}), 'ok');
    assert.equal(await data.next(), 'official');
    reader.socket.transmit('broadcast', {channel: 'readonly/news', data: 'broadcast'});
    assert.equal(await data.next(), 'broadcast');
    await sleep(200);
    assert.deepEqual(data.items, ['official', 'broadcast']);
  });

  test('raw: readonly/ publish error response; a transmitted one is dropped silently', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('#subscribe', {channel: 'readonly/raw'});
    const refused = await raw.invoke('#publish', {channel: 'readonly/raw', data: 1}, {cid: 20});
    assert.equal(refused.rid, 20);
    assert.equal(refused.error.name, 'ReadOnlyError');
    assert.equal(hasOwn(refused, 'data'), false);
    raw.send({event: '#publish', data: {channel: 'readonly/raw', data: 2}});
    await raw.invoke('echo', 'barrier', {cid: 21});
    await sleep(200);
    assert.deepEqual(publishesOn(raw, 'readonly/raw'), []);
    assert.deepEqual(raw.packets().filter((p) => 'rid' in p).map((p) => p.rid), [1, 2, 20, 21]);
  });

  test('upper/: string data from clients is upper-cased for every subscriber, the publisher included', T, async (t) => {
    const scope = newScope(t);
    const [publisher, other] = await Promise.all([scope.connectedClient(main.port), scope.connectedClient(main.port)]);
    const onPub = (await subscribed(publisher, 'upper/shout')).data;
    const onOther = (await subscribed(other, 'upper/shout')).data;
    await publisher.socket.invokePublish('upper/shout', 'hello world');
    publisher.socket.transmitPublish('upper/shout', 'transmitted');
    await publisher.socket.invokePublish('upper/shout', 'grüße ünïcode');
    for (const stream of [onPub, onOther]) {
      assert.equal(await stream.next(), 'HELLO WORLD');
      assert.equal(await stream.next(), 'TRANSMITTED');
      const third = await stream.next();
      assert.ok(third.startsWith('GRÜ') && third.endsWith('E ÜNÏCODE'), third);
    }
  });

  test('upper/: non-string data is delivered unchanged', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const {data} = await subscribed(client, 'upper/raw');
    const values = [{text: 'lower'}, ['lower'], 5, true, null];
    for (const value of values) await client.socket.invokePublish('upper/raw', value);
    await data.count(values.length);
    assert.deepEqual(data.items, values);
  });

  test('upper/: server-side publishes are not upper-cased', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const {data} = await subscribed(client, 'upper/server');
    await client.socket.invoke('serverPublish', {channel: 'upper/server', data: 'from server'});
    assert.equal(await data.next(), 'from server');
    client.socket.transmit('broadcast', {channel: 'upper/server', data: 'broadcast'});
    assert.equal(await data.next(), 'broadcast');
  });

  test('raw: upper/ delivery frames and the plain {"rid":N} acknowledgement', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('#subscribe', {channel: 'upper/r'});
    assert.deepEqual(await raw.invoke('#publish', {channel: 'upper/r', data: 'abc'}, {cid: 50}), {rid: 50});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'upper/r', data: 'ABC'}});
    raw.send({event: '#publish', data: {channel: 'upper/r'}, cid: 51});
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'upper/r'}});
  });
});

// ---------------------------------------------------------------------------

describe('publish-out middleware (secret/)', () => {
  test('a message with "to" reaches only the sockets whose token username equals it', T, async (t) => {
    const scope = newScope(t);
    const alice = await loggedIn(scope, 'alice');
    const bob = await loggedIn(scope, 'bob');
    const anon = await scope.connectedClient(main.port);
    const streams = {};
    for (const [name, client] of Object.entries({alice, bob, anon})) {
      streams[name] = (await subscribed(client, 'secret/inbox')).data;
    }
    // From a client (bob writes to alice): bob's own copy is filtered too.
    assert.equal(await bob.socket.invokePublish('secret/inbox', {to: 'alice', text: 'hi alice'}), undefined);
    // From the server side: publish-out middleware applies as well.
    await anon.socket.invoke('serverPublish', {channel: 'secret/inbox', data: {to: 'bob', text: 'hi bob'}});
    // Without "to" (or with "to": null) everybody gets it.
    await anon.socket.invokePublish('secret/inbox', {text: 'to all'});
    await anon.socket.invokePublish('secret/inbox', {to: null, text: 'to all (null)'});
    // Non-object data is not filtered.
    await anon.socket.invokePublish('secret/inbox', 'plain string');
    // Nobody is called carol.
    await anon.socket.invokePublish('secret/inbox', {to: 'carol', text: 'lost'});
    await anon.socket.invokePublish('secret/inbox', 'end');

    for (const stream of Object.values(streams)) {
      await waitUntil(() => stream.items.some((item) => item === 'end'), {label: 'end marker'});
    }
    const all = [{text: 'to all'}, {to: null, text: 'to all (null)'}, 'plain string', 'end'];
    assert.deepEqual(streams.alice.items, [{to: 'alice', text: 'hi alice'}, ...all]);
    assert.deepEqual(streams.bob.items, [{to: 'bob', text: 'hi bob'}, ...all]);
    assert.deepEqual(streams.anon.items, all);
  });

  test('raw: filtered sockets get no frame; the publisher still gets {"rid":N}', T, async (t) => {
    const scope = newScope(t);
    const carol = await rawClient(scope, validToken({username: 'carol'}));
    const dave = await rawClient(scope, validToken({username: 'dave'}));
    await carol.invoke('#subscribe', {channel: 'secret/raw'});
    await dave.invoke('#subscribe', {channel: 'secret/raw'});
    assert.deepEqual(await dave.invoke('#publish', {channel: 'secret/raw', data: {to: 'carol', n: 1}}, {cid: 60}), {rid: 60});
    assert.deepEqual(await carol.nextPacket((p) => p.event === '#publish'), {event: '#publish', data: {channel: 'secret/raw', data: {to: 'carol', n: 1}}});
    await dave.invoke('#publish', {channel: 'secret/raw', data: 'marker'}, {cid: 61});
    await dave.nextPacket((p) => p.event === '#publish');
    assert.deepEqual(publishesOn(dave, 'secret/raw').map((p) => p.data.data), ['marker']);
  });

  test('after logout the named user no longer receives; after login again it does', T, async (t) => {
    const scope = newScope(t);
    const erin = await loggedIn(scope, 'erin');
    const {data} = await subscribed(erin, 'secret/erin');
    const sender = await scope.connectedClient(main.port);
    await sender.socket.invokePublish('secret/erin', {to: 'erin', n: 1});
    assert.deepEqual(await data.next(), {to: 'erin', n: 1});
    await erin.socket.invoke('logout');
    await erin.waitEvent('removeAuthToken');
    await sender.socket.invokePublish('secret/erin', {to: 'erin', n: 2});
    await erin.socket.invoke('login', {username: 'erin'});
    await sender.socket.invokePublish('secret/erin', {to: 'erin', n: 3});
    assert.deepEqual(await data.next(), {to: 'erin', n: 3});
    assert.deepEqual(data.items, [{to: 'erin', n: 1}, {to: 'erin', n: 3}]);
  });
});
