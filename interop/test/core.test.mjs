// Core protocol: handshake, ping/pong, RPC in both directions, the
// procedures and receivers of the interop fixture, raw-frame edge cases,
// close codes and shutdown.

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {
  newScope, startFixture, sleep, waitUntil, withTimeout, collect, WAIT,
} from './lib/fixture.mjs';

const T = {timeout: 15000};

// Main fixture: default timers except a short server ack timeout, so that a
// server→client invoke without a client handler fails quickly.
const ACK_TIMEOUT = 1000;
let main;
// Timer fixture: fast pings. The pong deadline leaves room for a stalled
// process on a busy machine (the clients give up after pingTimeout too).
const PING_INTERVAL = 200;
const PING_TIMEOUT = 2500;
// Only for the raw 4005 test, on a fixture of its own: official clients on a
// loaded machine may need longer than this to send their #handshake.
const HANDSHAKE_TIMEOUT = 500;
let timers;

before(async () => {
  [main, timers] = await Promise.all([
    startFixture(['-ack-timeout', String(ACK_TIMEOUT)]),
    startFixture(['-ping-interval', String(PING_INTERVAL), '-ping-timeout', String(PING_TIMEOUT)]),
  ]);
});

after(async () => {
  await Promise.all([main && main.stop(), timers && timers.stop()]);
});

const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

// ---------------------------------------------------------------------------

describe('handshake', () => {
  test('official client: id, default pingTimeout 20000, not authenticated, no authError', T, async (t) => {
    const scope = newScope(t);
    const client = scope.client(main.port);
    const status = await client.waitEvent('connect');
    assert.equal(typeof status.id, 'string');
    assert.match(status.id, /^[A-Za-z0-9_-]+$/);
    assert.equal(status.pingTimeout, 20000);
    assert.equal(status.isAuthenticated, false);
    assert.equal(status.authError, undefined);
    assert.equal(client.socket.state, 'open');
    assert.equal(client.socket.id, status.id);
    assert.equal(client.socket.authState, 'unauthenticated');
  });

  test('pingTimeout in the handshake equals the -ping-timeout flag', T, async (t) => {
    const scope = newScope(t);
    const client = scope.client(timers.port);
    const status = await client.waitEvent('connect');
    assert.equal(status.pingTimeout, PING_TIMEOUT);
    assert.equal(client.socket.pingTimeout, PING_TIMEOUT);
  });

  test('raw: response is {"rid":cid,"data":{id,pingTimeout,isAuthenticated}} in a text frame', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.open();
    raw.send({event: '#handshake', data: {authToken: null}, cid: 7});
    const frame = await raw.nextFrame((f) => f.json && f.json.rid === 7);
    assert.equal(frame.type, 'text');
    assert.deepEqual(Object.keys(frame.json).sort(), ['data', 'rid']);
    assert.deepEqual(Object.keys(frame.json.data).sort(), ['id', 'isAuthenticated', 'pingTimeout']);
    assert.equal(frame.json.data.pingTimeout, 20000);
    assert.equal(frame.json.data.isAuthenticated, false);
    assert.equal(typeof frame.json.data.id, 'string');
  });

  test('raw: "data":{} and a missing data are accepted as "no token"', T, async (t) => {
    const scope = newScope(t);
    for (const packet of [
      {event: '#handshake', data: {}, cid: 1},
      {event: '#handshake', cid: 1},
    ]) {
      const raw = scope.raw(main.port);
      await raw.open();
      raw.send(packet);
      const response = await raw.response(1);
      assert.equal(response.error, undefined);
      assert.equal(response.data.isAuthenticated, false);
      assert.equal(hasOwn(response.data, 'authError'), false);
    }
  });

  test('options come from the environment; a flag wins over its variable', T, async (t) => {
    const scope = newScope(t);
    const [fromEnv, fromFlag] = await Promise.all([
      scope.fixture([], {SC_PING_TIMEOUT: '4321'}),
      scope.fixture(['-ping-timeout', '5432'], {SC_PING_TIMEOUT: '4321'}),
    ]);
    assert.equal((await scope.raw(fromEnv.port).handshake()).pingTimeout, 4321);
    assert.equal((await scope.raw(fromFlag.port).handshake()).pingTimeout, 5432);
  });

  test('every client gets a distinct id', T, async (t) => {
    const scope = newScope(t);
    const clients = [];
    for (let i = 0; i < 5; i++) clients.push(scope.client(main.port));
    const ids = await Promise.all(clients.map((c) => c.waitEvent('connect').then((s) => s.id)));
    assert.equal(new Set(ids).size, ids.length);
  });
});

// ---------------------------------------------------------------------------

describe('ping and pong', {concurrency: true}, () => {
  test('an idle client stays connected well past pingTimeout; pings are empty text frames', T, async (t) => {
    const scope = newScope(t);
    const client = scope.client(timers.port);
    const {id} = await client.waitEvent('connect');
    const raw = scope.raw(timers.port); // answers pings like the client
    await raw.handshake();
    await sleep(PING_TIMEOUT * 1.6);
    assert.deepEqual(client.events.items.filter((e) => e.name !== 'connecting' && e.name !== 'connect'), []);
    assert.deepEqual(client.all('disconnect'), []);
    assert.deepEqual(client.all('close'), []);
    assert.equal(client.socket.state, 'open');
    assert.equal(client.socket.id, id);
    assert.equal(client.socket.transport.socket.readyState, 1, 'the server closed the connection');
    assert.equal(await client.socket.invoke('echo', 'still here'), 'still here');
    assert.ok(raw.isOpen(), 'raw client answering pings was closed');
    // One ping per 200 ms for 4 s: expect clearly more than a handful.
    assert.ok(raw.pings >= 8, `only ${raw.pings} pings in ${PING_TIMEOUT * 1.6} ms`);
    const pings = raw.frames.items.filter((f) => f.text === '' || (f.type === 'binary' && f.data.length === 0));
    assert.ok(pings.every((f) => f.type === 'text'), 'a ping was not a text frame');
  });

  test('raw: no pong → server closes with 4001 and an empty reason', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(timers.port, {autoPong: false});
    await raw.handshake();
    const opened = Date.now();
    const closed = await raw.waitClose(PING_TIMEOUT + 4000);
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, '');
    const elapsed = closed.time - opened;
    assert.ok(elapsed >= PING_TIMEOUT * 0.5, `closed after only ${elapsed} ms`);
    assert.ok(raw.pings >= 1, 'no ping was sent before the pong timeout');
  });

  test('-protocol-version 1 (and SC_PROTOCOL_VERSION): pings are "#1", "#2" answers keep the socket open', T, async (t) => {
    const scope = newScope(t);
    const [fromFlag, fromEnv] = await Promise.all([
      scope.fixture(['-protocol-version', '1', '-ping-interval', '200', '-ping-timeout', String(PING_TIMEOUT)]),
      scope.fixture(['-ping-interval', '200'], {SC_PROTOCOL_VERSION: '1'}),
    ]);
    for (const fx of [fromFlag, fromEnv]) {
      const raw = scope.raw(fx.port, {autoPong: false});
      await raw.handshake();
      const ping = await raw.nextFrame((f) => f.type === 'text' && f.text === '#1', PING_TIMEOUT, 'version 1 ping');
      assert.equal(ping.text, '#1');
      assert.ok(!raw.frames.items.some((f) => f.type === 'text' && f.text === ''), 'a version 2 ping was sent');
    }
    const raw = scope.raw(fromFlag.port, {autoPong: false});
    raw.ws.on('message', (d, isBinary) => { if (!isBinary && String(d) === '#1') raw.send('#2'); });
    await raw.handshake();
    await sleep(PING_TIMEOUT * 1.5);
    assert.ok(raw.isOpen(), 'answering "#2" to "#1" did not keep the socket open');
  });

  test('raw: pongs alone keep a socket open past pingTimeout', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(timers.port);
    await raw.handshake();
    await sleep(PING_TIMEOUT * 1.5);
    assert.ok(raw.isOpen());
  });
});

// ---------------------------------------------------------------------------

describe('close codes before the handshake', {concurrency: true}, () => {
  test('raw: no #handshake → close 4005 after -handshake-timeout', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture(['-handshake-timeout', String(HANDSHAKE_TIMEOUT), '-ping-interval', '200']);
    // Must not answer pings: a pong before the handshake is itself a 4009.
    const raw = scope.raw(fx.port, {autoPong: false});
    await raw.open();
    const opened = Date.now();
    const closed = await raw.waitClose(HANDSHAKE_TIMEOUT + 4000);
    assert.equal(closed.code, 4005);
    assert.equal(closed.reason, '');
    const elapsed = closed.time - opened;
    assert.ok(elapsed >= HANDSHAKE_TIMEOUT * 0.6, `closed after only ${elapsed} ms`);
  });

  for (const [what, frame] of [
    ['an invoke', '{"event":"echo","data":1,"cid":1}'],
    ['a transmit', '{"event":"pingMe","data":1}'],
    ['a #subscribe', '{"event":"#subscribe","data":{"channel":"a"},"cid":1}'],
    ['a response packet', '{"rid":1,"data":1}'],
    ['invalid JSON', '{not json'],
    ['a pong', ''],
  ]) {
    test(`raw: ${what} before the handshake → close 4009`, T, async (t) => {
      const scope = newScope(t);
      const raw = scope.raw(main.port, {autoPong: false});
      await raw.open();
      raw.send(frame);
      const closed = await raw.waitClose();
      assert.equal(closed.code, 4009);
      assert.equal(closed.reason, '');
      assert.equal(raw.packets().length, 0, 'the server answered the packet');
    });
  }

  test('raw: #handshake without a numeric cid → close 4008', T, async (t) => {
    const scope = newScope(t);
    for (const frame of [
      '{"event":"#handshake","data":{"authToken":null}}',
      '{"event":"#handshake","data":{"authToken":null},"cid":"1"}',
    ]) {
      const raw = scope.raw(main.port);
      await raw.open();
      raw.send(frame);
      const closed = await raw.waitClose();
      assert.equal(closed.code, 4008, frame);
      assert.equal(closed.reason, '');
      assert.equal(raw.packets().length, 0, 'the server answered the malformed handshake');
    }
  });
});

// ---------------------------------------------------------------------------

describe('echo', () => {
  const values = [
    ['an object', {a: 1, b: {c: [1, 2, {d: 'e'}]}, 'ü-ключ': 'ünïcødé ✓'}],
    ['an array', [1, 'two', {three: 3}, [4], null, false]],
    ['an empty object', {}],
    ['an empty array', []],
    ['a string', 'hello'],
    ['a string with escapes', 'quote " backslash \\ newline \n tab \t nul \u0000 emoji 😀'],
    ['an integer', 42],
    ['a negative float', -12.5],
    ['a large number', 2 ** 53 - 1],
    ['true', true],
    ['false', false],
    ['0', 0],
    ['the empty string', ''],
    ['null', null],
    ['a string that looks like JSON', '{"event":"x"}'],
  ];

  test('official client: values come back unchanged', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    for (const [label, value] of values) {
      assert.deepEqual(await client.socket.invoke('echo', value), value, label);
    }
  });

  test('official client: undefined data comes back as undefined', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    assert.equal(await client.socket.invoke('echo'), undefined);
  });

  test('official client: Buffer and ArrayBuffer travel as {base64:true,data}', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    assert.deepEqual(await client.socket.invoke('echo', Buffer.from('hello')), {base64: true, data: 'aGVsbG8='});
    assert.deepEqual(await client.socket.invoke('echo', new Uint8Array([1, 2, 3]).buffer), {base64: true, data: 'AQID'});
    const bytes = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    assert.deepEqual(
      await client.socket.invoke('echo', {nested: {blob: bytes}}),
      {nested: {blob: {base64: true, data: bytes.toString('base64')}}},
    );
  });

  test('raw: falsy values keep their "data" key; a missing data key stays missing', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    const cases = [
      ['{"event":"echo","cid":10}', '{"rid":10}'],
      ['{"event":"echo","data":null,"cid":11}', '{"rid":11,"data":null}'],
      ['{"event":"echo","data":false,"cid":12}', '{"rid":12,"data":false}'],
      ['{"event":"echo","data":0,"cid":13}', '{"rid":13,"data":0}'],
      ['{"event":"echo","data":"","cid":14}', '{"rid":14,"data":""}'],
      ['{"event":"echo","data":[],"cid":15}', '{"rid":15,"data":[]}'],
      ['{"event":"echo","data":{},"cid":16}', '{"rid":16,"data":{}}'],
    ];
    for (const [frame] of cases) raw.send(frame);
    for (const [frame, expected] of cases) {
      const rid = JSON.parse(frame).cid;
      const response = await raw.response(rid);
      assert.deepEqual(response, JSON.parse(expected), frame);
      assert.equal(hasOwn(response, 'data'), hasOwn(JSON.parse(expected), 'data'), frame);
      assert.equal(hasOwn(response, 'error'), false, frame);
    }
  });

  test('official client: a 1 MB payload round-trips', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const big = 'x'.repeat(1024 * 1024);
    assert.equal(await client.socket.invoke('echo', big), big);
    const obj = {items: Array.from({length: 20000}, (_, i) => ({i, s: `item-${i}`}))};
    assert.ok(JSON.stringify(obj).length > 500 * 1024);
    assert.deepEqual(await client.socket.invoke('echo', obj), obj);
  });

  test('official client: 1000 concurrent invokes are all answered correctly', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const results = await Promise.all(
      Array.from({length: 1000}, (_, i) => client.socket.invoke('echo', {i, s: `v${i}`})),
    );
    results.forEach((r, i) => assert.deepEqual(r, {i, s: `v${i}`}));
  });

  test('several clients invoking at once each get their own answers', T, async (t) => {
    const scope = newScope(t);
    const clients = await Promise.all(Array.from({length: 10}, () => scope.connectedClient(main.port)));
    await Promise.all(clients.map(async (client, c) => {
      const results = await Promise.all(
        Array.from({length: 100}, (_, i) => client.socket.invoke('echo', [c, i])),
      );
      results.forEach((r, i) => assert.deepEqual(r, [c, i]));
    }));
  });
});

// ---------------------------------------------------------------------------

describe('procedures', () => {
  test('fail: FailError "it failed", with the fields of object data copied', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await assert.rejects(client.socket.invoke('fail'), (err) => {
      assert.equal(err.name, 'FailError');
      assert.equal(err.message, 'it failed');
      return true;
    });
    await assert.rejects(client.socket.invoke('fail', 'just a string'), {name: 'FailError', message: 'it failed'});
    await assert.rejects(client.socket.invoke('fail', {code: 42, detail: {deep: [1, 2]}, flag: false}), (err) => {
      assert.equal(err.name, 'FailError');
      assert.equal(err.message, 'it failed');
      assert.equal(err.code, 42);
      assert.deepEqual(err.detail, {deep: [1, 2]});
      assert.equal(err.flag, false);
      return true;
    });
  });

  test('raw: fail answers {"rid","error":{message,name,...fields}} without data or stack', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    const response = await raw.invoke('fail', {extra: 'x', n: 1});
    assert.equal(hasOwn(response, 'data'), false);
    assert.deepEqual(response.error, {message: 'it failed', name: 'FailError', extra: 'x', n: 1});
    const plain = await raw.invoke('fail');
    assert.deepEqual(plain.error, {message: 'it failed', name: 'FailError'});
  });

  test('fail: "name" and "message" in data do not replace FailError / it failed', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await assert.rejects(client.socket.invoke('fail', {name: 'Other', message: 'other', x: 1}), (err) => {
      assert.equal(err.name, 'FailError');
      assert.equal(err.message, 'it failed');
      assert.equal(err.x, 1);
      return true;
    });
  });

  test('whoami: null for an anonymous socket', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    assert.equal(await client.socket.invoke('whoami'), null);
  });

  test('serverTransmit: the receiver "notice" gets the data; the call returns "ok"', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const notices = collect(client.socket.receiver('notice'), 'notices');
    assert.equal(await client.socket.invoke('serverTransmit', {hello: ['world']}), 'ok');
    assert.deepEqual(await notices.next(), {hello: ['world']});
    assert.equal(await client.socket.invoke('serverTransmit', false), 'ok');
    assert.equal(await notices.next(), false);
  });

  test('raw: serverTransmit sends {"event":"notice","data":...}; without data there is no data key', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send({event: 'serverTransmit', data: [1], cid: 5});
    assert.deepEqual(await raw.nextPacket((p) => p.event === 'notice'), {event: 'notice', data: [1]});
    raw.send({event: 'serverTransmit', cid: 6});
    assert.deepEqual(await raw.nextPacket((p) => p.event === 'notice'), {event: 'notice'});
    assert.deepEqual(await raw.response(5), {rid: 5, data: 'ok'});
    assert.deepEqual(await raw.response(6), {rid: 6, data: 'ok'});
  });

  test('serverInvoke: the client procedure clientEcho answers', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const requests = collect(client.socket.procedure('clientEcho'), 'clientEcho requests');
    const pending = client.socket.invoke('serverInvoke', {q: 21});
    const request = await requests.next();
    assert.deepEqual(request.data, {q: 21});
    request.end({answer: request.data.q * 2});
    assert.deepEqual(await pending, {answer: 42});
  });

  test('serverInvoke: the client error name (and fields) reach the caller', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const requests = collect(client.socket.procedure('clientEcho'), 'clientEcho requests');
    const pending = client.socket.invoke('serverInvoke', 5);
    const request = await requests.next();
    const error = new Error('client says no');
    error.name = 'ClientNo';
    error.detail = {why: 'because'};
    request.error(error);
    await assert.rejects(pending, (err) => {
      assert.equal(err.name, 'ClientNo');
      assert.equal(err.message, 'client says no');
      assert.deepEqual(err.detail, {why: 'because'});
      return true;
    });
  });

  test('raw: server invoke is {"event":"clientEcho","cid":N,"data":...}; the raw answer is relayed', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send({event: 'serverInvoke', data: {v: 1}, cid: 50});
    const call = await raw.nextPacket((p) => p.event === 'clientEcho');
    assert.equal(typeof call.cid, 'number');
    assert.deepEqual(call.data, {v: 1});
    raw.send({rid: call.cid + 1000, data: 'wrong rid is ignored'});
    raw.send({rid: call.cid, data: {v: 2}});
    assert.deepEqual(await raw.response(50), {rid: 50, data: {v: 2}});

    raw.send({event: 'serverInvoke', cid: 51});
    const call2 = await raw.nextPacket((p) => p.event === 'clientEcho');
    assert.equal(hasOwn(call2, 'data'), false, 'undefined data must not be sent as a key');
    assert.notEqual(call2.cid, call.cid);
    raw.send({rid: call2.cid, error: {message: 'nope', name: 'ClientErr', custom: true}});
    const failed = await raw.response(51);
    assert.equal(failed.error.name, 'ClientErr');
    assert.equal(failed.error.message, 'nope');
  });

  test('serverInvoke: no client handler → the server gives up with TimeoutError after -ack-timeout', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const started = Date.now();
    await assert.rejects(client.socket.invoke('serverInvoke', 1), (err) => {
      assert.equal(err.name, 'TimeoutError');
      assert.equal(err.message, 'Event response for clientEcho event timed out');
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= ACK_TIMEOUT * 0.8, `gave up after only ${elapsed} ms`);
    assert.ok(elapsed < ACK_TIMEOUT + 4000, `took ${elapsed} ms`);
    assert.equal(client.socket.state, 'open');
  });

  test('disconnectMe: answers "ok", then closes with the given code and reason', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    assert.equal(await client.socket.invoke('disconnectMe', {code: 4600, reason: 'bye now'}), 'ok');
    const event = await client.waitEvent('disconnect');
    assert.equal(event.code, 4600);
    assert.equal(event.reason, 'bye now');
    // 4500–4999 are permanent: no reconnect.
    await sleep(500);
    assert.equal(client.all('connecting').length, 0);
    assert.equal(client.socket.state, 'closed');
  });

  test('raw: disconnectMe close frame carries exactly the code and reason (empty if none)', T, async (t) => {
    const scope = newScope(t);
    for (const [data, code, reason] of [
      [{code: 4321, reason: 'custom reason ✓'}, 4321, 'custom reason ✓'],
      [{code: 4100}, 4100, ''],
      [{code: 1011, reason: 'x'}, 1011, 'x'],
    ]) {
      const raw = scope.raw(main.port);
      await raw.handshake();
      const response = await raw.invoke('disconnectMe', data);
      assert.deepEqual(response, {rid: response.rid, data: 'ok'});
      const closed = await raw.waitClose();
      assert.equal(closed.code, code);
      assert.equal(closed.reason, reason);
    }
  });

  test('disconnectMe with code 4000: the client reconnects and gets a new id', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const firstId = client.socket.id;
    assert.equal(await client.socket.invoke('disconnectMe', {code: 4000, reason: 'r4000'}), 'ok');
    const event = await client.waitEvent('disconnect');
    assert.equal(event.code, 4000);
    assert.equal(event.reason, 'r4000');
    const status = await client.waitEvent('connect');
    assert.notEqual(status.id, firstId);
    assert.equal(client.socket.id, status.id);
    const stats = await client.socket.invoke('stats');
    assert.equal(stats.id, status.id);
    assert.equal(await client.socket.invoke('echo', 'after reconnect'), 'after reconnect');
  });

  test('slow: a slow call does not delay a later fast one (responses out of order)', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const order = [];
    const started = Date.now();
    const slow = client.socket.invoke('slow', {ms: 1500}).then((v) => { order.push('slow'); return v; });
    const fast = client.socket.invoke('echo', 'fast').then((v) => { order.push('fast'); return v; });
    const fastSlow = client.socket.invoke('slow', {ms: 10}).then((v) => { order.push('slow10'); return v; });
    assert.equal(await fast, 'fast');
    assert.equal(await fastSlow, 10);
    assert.equal(await slow, 1500);
    assert.ok(Date.now() - started >= 1400, 'slow returned too early');
    assert.deepEqual(order, ['fast', 'slow10', 'slow']);
  });

  test('raw: slow responses are sent when ready, not in request order', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send({event: 'slow', data: {ms: 1000}, cid: 100});
    raw.send({event: 'echo', data: 'fast', cid: 101});
    await raw.response(100);
    const rids = raw.packets().filter((p) => p.rid === 100 || p.rid === 101).map((p) => p.rid);
    assert.deepEqual(rids, [101, 100]);
    assert.deepEqual(raw.packets().find((p) => p.rid === 100), {rid: 100, data: 1000});
  });

  test('stats: counts, subscriptions and id', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture([]);
    const a = await scope.connectedClient(fx.port);
    let stats = await a.socket.invoke('stats');
    assert.deepEqual(stats, {clientsCount: 1, pendingClientsCount: 0, subscriptions: [], id: a.socket.id});

    // A WebSocket without a handshake is pending.
    const pending = scope.raw(fx.port, {autoPong: false});
    await pending.open();
    await waitUntil(async () => (await a.socket.invoke('stats')).pendingClientsCount === 1, {label: 'pendingClientsCount 1'});

    const channel = a.socket.subscribe('stats/one');
    await channel.listener('subscribe').once(WAIT);
    a.socket.subscribe('stats/two');
    await waitUntil(() => a.socket.isSubscribed('stats/two'), {label: 'subscribed to stats/two'});
    stats = await a.socket.invoke('stats');
    assert.deepEqual([...stats.subscriptions].sort(), ['stats/one', 'stats/two']);
    assert.equal(stats.id, a.socket.id);

    const b = await scope.connectedClient(fx.port);
    stats = await b.socket.invoke('stats');
    assert.equal(stats.clientsCount, 2);
    assert.deepEqual(stats.subscriptions, []);
    assert.equal(stats.id, b.socket.id);

    await b.close();
    await pending.close();
    await waitUntil(async () => {
      const s = await a.socket.invoke('stats');
      return s.clientsCount === 1 && s.pendingClientsCount === 0;
    }, {label: 'counts back to 1/0'});
  });
});

// ---------------------------------------------------------------------------

describe('receivers', () => {
  test('pingMe: the server transmits the data back to the receiver pongYou', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const pongs = collect(client.socket.receiver('pongYou'), 'pongYou');
    for (const value of [{a: 1}, 'text', 0, false, null, [1, 2]]) {
      client.socket.transmit('pingMe', value);
      assert.deepEqual(await pongs.next(), value);
    }
  });

  test('raw: pingMe without data → {"event":"pongYou"} with no data key; null stays null', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send('{"event":"pingMe"}');
    assert.deepEqual(await raw.nextPacket((p) => p.event === 'pongYou'), {event: 'pongYou'});
    raw.send('{"event":"pingMe","data":null}');
    assert.deepEqual(await raw.nextPacket((p) => p.event === 'pongYou'), {event: 'pongYou', data: null});
    // A transmit is never answered.
    await sleep(200);
    assert.equal(raw.packets().filter((p) => 'rid' in p).length, 1, 'only the handshake response');
  });
});

// ---------------------------------------------------------------------------

describe('unknown procedures and raw-frame handling', {concurrency: true}, () => {
  test('official client: an unknown procedure is never answered (client TimeoutError)', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port, {ackTimeout: 500});
    await assert.rejects(client.socket.invoke('noSuchProcedure', 1), {name: 'TimeoutError'});
    assert.equal(client.socket.state, 'open');
  });

  test('raw: no frame ever carries the rid of an unknown procedure', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send({event: 'noSuchProcedure', data: 1, cid: 4242});
    raw.send({event: '#noSuchEither', cid: 4243});
    raw.send({event: 'echo', data: 'after', cid: 4244});
    assert.deepEqual(await raw.response(4244), {rid: 4244, data: 'after'});
    await sleep(1000);
    assert.equal(raw.packets().filter((p) => p.rid === 4242 || p.rid === 4243).length, 0);
    assert.ok(raw.isOpen());
  });

  test('raw: invalid JSON after the handshake is ignored; the socket keeps working', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    for (const junk of ['{not json', '[1,2', 'hello', '123', 'null', '"str"', '{}', '[]', '[{"foo":2},"x"]', '{"event":5}', '{"rid":"1"}']) {
      raw.send(junk);
    }
    assert.deepEqual(await raw.invoke('echo', 'still fine', {cid: 77}), {rid: 77, data: 'still fine'});
    await sleep(200);
    assert.ok(raw.isOpen());
    assert.equal(raw.packets().filter((p) => p.rid !== 1 && p.rid !== 77).length, 0, 'junk was answered');
  });

  test('raw: a batch (JSON array) of two invokes in one frame → both answered', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send('[{"event":"echo","data":"one","cid":21},{"event":"echo","data":"two","cid":22}]');
    assert.deepEqual(await raw.response(21), {rid: 21, data: 'one'});
    assert.deepEqual(await raw.response(22), {rid: 22, data: 'two'});
    // Mixed: a transmit and an invoke, and a junk element that is skipped.
    raw.send('[{"event":"pingMe","data":"p"},5,{"event":"echo","data":"three","cid":23}]');
    assert.deepEqual(await raw.nextPacket((p) => p.event === 'pongYou'), {event: 'pongYou', data: 'p'});
    assert.deepEqual(await raw.response(23), {rid: 23, data: 'three'});
  });

  test('raw: a string cid is not an invoke (it is a transmit and gets no response)', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.send('{"event":"pingMe","data":"as transmit","cid":"5"}');
    assert.deepEqual(await raw.nextPacket((p) => p.event === 'pongYou'), {event: 'pongYou', data: 'as transmit'});
    raw.send('{"event":"echo","data":"x","cid":"6"}');
    raw.send('{"event":"echo","data":"y","cid":7}');
    await raw.response(7);
    await sleep(300);
    const rids = raw.packets().filter((p) => 'rid' in p).map((p) => p.rid);
    assert.deepEqual(rids, [1, 7]);
  });

  test('raw: numeric cids are echoed exactly (15.5, 0, -1, 2^40)', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    for (const cid of ['15.5', '0', '-1', '1099511627776', '1e3']) {
      raw.send(`{"event":"echo","data":"c","cid":${cid}}`);
    }
    for (const cid of [15.5, 0, -1, 1099511627776, 1000]) {
      const frame = await raw.nextFrame((f) => f.json && Object.is(f.json.rid, cid), WAIT, `rid ${cid}`);
      assert.deepEqual(frame.json, {rid: cid, data: 'c'});
    }
    assert.ok(raw.frames.items.some((f) => f.text === '{"rid":15.5,"data":"c"}'), 'rid 15.5 not written as 15.5');
  });

  test('raw: a JSON packet in a binary frame is processed; the answer is a text frame', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    raw.sendBinary(Buffer.from('{"event":"echo","data":"bin","cid":31}'));
    const frame = await raw.nextFrame((f) => f.json && f.json.rid === 31);
    assert.equal(frame.type, 'text');
    assert.deepEqual(frame.json, {rid: 31, data: 'bin'});
  });

  test('raw: every frame the server sends is a text frame', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake();
    await raw.invoke('echo', {a: 1});
    await raw.invoke('echo', Buffer.from('abc').toJSON());
    await raw.invoke('fail', {});
    raw.send({event: 'pingMe', data: 'x'});
    await raw.nextPacket((p) => p.event === 'pongYou');
    assert.ok(raw.frames.items.length >= 5);
    assert.ok(raw.frames.items.every((f) => f.type === 'text'));
  });
});

// ---------------------------------------------------------------------------

describe('HTTP', () => {
  test('an upgrade on another path is refused with HTTP 400', T, async (t) => {
    const scope = newScope(t);
    for (const path of ['/wrong/', '/socketcluster', '/']) {
      const raw = scope.raw(main.port, {path});
      await assert.rejects(raw.open(), /HTTP 400/, path);
    }
  });

  test('a plain GET is not upgraded and the server keeps serving', T, async (t) => {
    const scope = newScope(t);
    const response = await withTimeout(fetch(`http://127.0.0.1:${main.port}/socketcluster/`), WAIT, 'GET');
    await response.arrayBuffer();
    assert.ok(response.status >= 400, `status ${response.status}`);
    const client = await scope.connectedClient(main.port);
    assert.equal(await client.socket.invoke('echo', 1), 1);
  });
});

// ---------------------------------------------------------------------------

describe('shutdown', () => {
  test('SIGTERM: every client gets close code 1001 and the fixture exits 0', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture([]);
    const clients = await Promise.all([1, 2, 3].map(() => scope.connectedClient(fx.port, {autoReconnect: false})));
    const raw = scope.raw(fx.port);
    await raw.handshake();
    const pending = scope.raw(fx.port, {autoPong: false});
    await pending.open();
    await waitUntil(async () => (await clients[0].socket.invoke('stats')).pendingClientsCount === 1, {label: 'pending socket registered'});

    fx.proc.kill('SIGTERM');
    for (const client of clients) {
      const event = await client.waitEvent('disconnect');
      assert.equal(event.code, 1001);
    }
    assert.equal((await raw.waitClose()).code, 1001);
    assert.equal((await pending.waitClose()).code, 1001);
    const exit = await withTimeout(fx.exited, 8000, 'fixture exit');
    assert.deepEqual(exit, {code: 0, signal: null});
  });

  test('SIGINT also closes with 1001 and exits 0', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture([]);
    const client = await scope.connectedClient(fx.port, {autoReconnect: false});
    fx.proc.kill('SIGINT');
    assert.equal((await client.waitEvent('disconnect')).code, 1001);
    assert.deepEqual(await withTimeout(fx.exited, 8000, 'fixture exit'), {code: 0, signal: null});
  });
});
