// Client versions: the same short scenario (connect, invoke or emit with a
// callback, transmit, subscribe, publish, login, pings kept alive, reconnect
// with resubscription) with every major of socketcluster-client from 14 to
// 20 and with asyngular-client 6, each installed under an npm alias (see
// package.json), against a fixture started with the protocol version that
// client needs: -protocol-version 1 for socketcluster-client 14 (pings "#1",
// pongs "#2"), 2 for the others. A last test checks what happens when the
// versions do not match (the same as with the reference server: the server
// closes with 4001).

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import {startFixture, sleep, waitUntil, withTimeout, FAST_RECONNECT, WAIT} from './lib/fixture.mjs';

const require = createRequire(import.meta.url);

// Pings every 200 ms; the server drops a socket that sends no pong for
// 2500 ms and the client drops a connection that gets no ping for as long.
const PING_INTERVAL = 200;
const PING_TIMEOUT = 2500;
// How long a connected client must stay connected with no traffic of its
// own: longer than PING_TIMEOUT, so only answered pings can keep it open.
const KEEP_ALIVE = PING_TIMEOUT + 1000;

export const CLIENTS = [
  {label: 'socketcluster-client 14', pkg: 'sc-client-14', api: 'v14', protocolVersion: 1},
  // asyngular-client's default path is /asyngular/.
  {label: 'asyngular-client 6', pkg: 'asyngular-client-6', api: 'streams', protocolVersion: 2, options: {path: '/socketcluster/'}},
  {label: 'socketcluster-client 15', pkg: 'sc-client-15', api: 'streams', protocolVersion: 2},
  {label: 'socketcluster-client 16', pkg: 'sc-client-16', api: 'streams', protocolVersion: 2},
  {label: 'socketcluster-client 17', pkg: 'sc-client-17', api: 'streams', protocolVersion: 2},
  {label: 'socketcluster-client 18', pkg: 'sc-client-18', api: 'streams', protocolVersion: 2},
  {label: 'socketcluster-client 19', pkg: 'sc-client-19', api: 'streams', protocolVersion: 2},
  {label: 'socketcluster-client 20', pkg: 'socketcluster-client', api: 'streams', protocolVersion: 2},
];

const fixtures = {};

before(async () => {
  const args = (v) => ['-protocol-version', String(v), '-ping-interval', String(PING_INTERVAL), '-ping-timeout', String(PING_TIMEOUT)];
  [fixtures[1], fixtures[2]] = await Promise.all([startFixture(args(1)), startFixture(args(2))]);
});

after(async () => {
  await Promise.all(Object.values(fixtures).map((f) => f.stop()));
});

// ---------------------------------------------------------------------------
// One adapter per client API, so that the scenario reads the same for all:
// v14 has emit/on with callbacks and channel.watch; 15 and later (and
// asyngular) have invoke/transmit and async streams.

function eventLog() {
  const items = [];
  const waiters = new Set();
  return {
    items,
    push(name, data) {
      items.push({name, data});
      for (const w of [...waiters]) w();
    },
    count: (name) => items.filter((e) => e.name === name).length,
    // Waits until there are n events of this name; returns the n-th.
    wait(name, n = 1, timeout = WAIT) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = items.filter((e) => e.name === name);
          if (found.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(found[n - 1].data);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeout} ms waiting for ${name} #${n} (have ${JSON.stringify(items.map((e) => e.name))})`));
        }, timeout);
        if (!check()) waiters.add(check);
      });
    },
  };
}

function v14Adapter(lib, port, options) {
  const socket = lib.create({
    hostname: '127.0.0.1', port, multiplex: false, autoReconnect: true,
    autoReconnectOptions: {...FAST_RECONNECT}, ...options,
  });
  const log = eventLog();
  for (const name of ['connect', 'disconnect', 'authenticate', 'error']) {
    socket.on(name, (data) => log.push(name, data));
  }
  const call = (event, data) => new Promise((resolve, reject) => {
    socket.emit(event, data, (err, res) => (err ? reject(err) : resolve(res)));
  });
  return {
    log,
    state: () => socket.state,
    authToken: () => socket.authToken,
    invoke: call,
    transmit: (event, data) => socket.emit(event, data),
    onReceive(event, fn) { socket.on(event, fn); },
    onInvoke(event, fn) { socket.on(event, (data, res) => res(null, fn(data))); },
    subscribe(channel, onData) {
      const ch = socket.subscribe(channel);
      ch.watch(onData);
      return new Promise((resolve, reject) => {
        if (ch.state === 'subscribed') return resolve();
        ch.once('subscribe', () => resolve());
        ch.once('subscribeFail', reject);
      });
    },
    publish: (channel, data) => new Promise((resolve, reject) => {
      socket.publish(channel, data, (err, ack) => (err ? reject(err) : resolve(ack)));
    }),
    close() {
      socket.off();
      socket.on('error', () => {}); // an EventEmitter throws an unheard error
      socket.destroy();
    },
  };
}

function streamsAdapter(lib, port, options) {
  const socket = lib.create({
    hostname: '127.0.0.1', port, autoReconnect: true, autoReconnectOptions: {...FAST_RECONNECT}, ...options,
  });
  const log = eventLog();
  const consume = async (stream, fn) => {
    for await (const value of stream) fn(value);
  };
  for (const name of ['connect', 'disconnect', 'authenticate', 'error']) {
    consume(socket.listener(name), (data) => log.push(name, data));
  }
  return {
    log,
    state: () => socket.state,
    authToken: () => socket.authToken,
    invoke: (event, data) => socket.invoke(event, data),
    transmit: (event, data) => socket.transmit(event, data),
    onReceive(event, fn) { consume(socket.receiver(event), fn); },
    onInvoke(event, fn) { consume(socket.procedure(event), (req) => req.end(fn(req.data))); },
    async subscribe(channel, onData) {
      const ch = socket.subscribe(channel);
      consume(ch, onData);
      if (ch.state !== 'subscribed') await ch.listener('subscribe').once();
    },
    publish: (channel, data) => socket.invokePublish(channel, data),
    close() {
      socket.disconnect();
      socket.killAllListeners();
      socket.killAllReceivers();
      socket.killAllChannels();
    },
  };
}

function connect(client, port, options = {}) {
  const lib = require(client.pkg);
  const opts = {...client.options, ...options};
  return client.api === 'v14' ? v14Adapter(lib, port, opts) : streamsAdapter(lib, port, opts);
}

// ---------------------------------------------------------------------------

describe('client versions', {concurrency: 2}, () => {
  for (const client of CLIENTS) {
    test(`${client.label} against a protocol version ${client.protocolVersion} server`, {timeout: 25000}, async (t) => {
      const fx = fixtures[client.protocolVersion];
      const c = connect(client, fx.port);
      t.after(() => c.close());
      const tag = client.pkg;

      // Connect.
      const status = await c.log.wait('connect');
      const connectedAt = Date.now();
      assert.equal(typeof status.id, 'string');
      assert.equal(status.pingTimeout, PING_TIMEOUT);
      assert.equal(status.isAuthenticated, false);

      // Invoke (v14: emit with a callback), an error, and the reverse way.
      assert.deepEqual(await c.invoke('echo', {n: 1, s: 'é'}), {n: 1, s: 'é'});
      await assert.rejects(c.invoke('fail', {code: 7}), (err) => {
        assert.equal(err.name, 'FailError');
        assert.equal(err.message, 'it failed');
        return true;
      });
      c.onInvoke('clientEcho', (data) => ({back: data}));
      assert.deepEqual(await c.invoke('serverInvoke', [1, 2]), {back: [1, 2]});

      // Transmit (v14: emit without a callback) and a server transmit back.
      const pongs = [];
      c.onReceive('pongYou', (data) => pongs.push(data));
      c.transmit('pingMe', {tag});
      await waitUntil(() => pongs.length === 1, {label: 'pongYou'});
      assert.deepEqual(pongs[0], {tag});

      // Subscribe, then publish with an acknowledgement and get it back.
      const channel = `room-${tag}`;
      const got = [];
      await c.subscribe(channel, (data) => got.push(data));
      await c.publish(channel, 'one');
      await waitUntil(() => got.includes('one'), {label: `publish on ${channel}`});

      // Login: the token reaches the client and the server sees it.
      assert.equal(await c.invoke('login', {username: `user-${tag}`}), 'ok');
      await c.log.wait('authenticate');
      assert.equal(c.authToken().username, `user-${tag}`);
      assert.equal((await c.invoke('whoami')).username, `user-${tag}`);

      // Pings kept alive: with no traffic of its own for longer than the
      // ping timeout, the socket stays connected only if the pongs arrive
      // (a version mismatch is closed with 4001, see below).
      const idle = KEEP_ALIVE - (Date.now() - connectedAt);
      if (idle > 0) await sleep(idle);
      assert.equal(c.log.count('disconnect'), 0, `disconnected: ${JSON.stringify(c.log.items.filter((e) => e.name === 'disconnect'))}`);
      assert.equal(c.state(), 'open');

      // Reconnect: the server disconnects the socket with a code the
      // client reconnects after; it connects again with its token and
      // its subscription.
      await c.invoke('disconnectMe', {code: 4400, reason: 'come back'});
      await c.log.wait('disconnect');
      const again = await c.log.wait('connect', 2);
      assert.notEqual(again.id, status.id);
      assert.equal(again.isAuthenticated, true);
      await waitUntil(async () => (await c.invoke('stats')).subscriptions.includes(channel), {label: 'resubscription'});
      await c.publish(channel, 'two');
      await waitUntil(() => got.includes('two'), {label: `publish after reconnect on ${channel}`});
      assert.deepEqual(got, ['one', 'two']);
    });
  }
});

describe('protocol versions', {concurrency: 2}, () => {
  // socketcluster-client 14 only speaks version 1: it never answers a
  // version-2 ping (an empty frame), so the server's pong deadline closes
  // the socket with 4001. The reference server does the same.
  test('socketcluster-client 14 against a version 2 server is closed with 4001', {timeout: 20000}, async (t) => {
    const c = connect(CLIENTS[0], fixtures[2].port, {autoReconnect: false});
    t.after(() => c.close());
    await c.log.wait('connect');
    const code = await withTimeout(c.log.wait('disconnect', 1, PING_TIMEOUT * 4), PING_TIMEOUT * 4 + 1000, 'disconnect');
    assert.ok(code === 4001 || code === 4000, `close code ${code}`);
  });

  // The other way: a version 2 client never answers "#1".
  test('socketcluster-client 20 against a version 1 server is closed with 4001', {timeout: 20000}, async (t) => {
    const c = connect(CLIENTS.at(-1), fixtures[1].port, {autoReconnect: false});
    t.after(() => c.close());
    await c.log.wait('connect');
    const {code} = await c.log.wait('disconnect', 1, PING_TIMEOUT * 4);
    assert.ok(code === 4001 || code === 4000, `close code ${code}`);
  });

  // Clients from 15 on speak version 1 when told to.
  test('socketcluster-client 20 with protocolVersion 1 is served by a version 1 server', {timeout: 20000}, async (t) => {
    const c = connect(CLIENTS.at(-1), fixtures[1].port, {protocolVersion: 1});
    t.after(() => c.close());
    await c.log.wait('connect');
    assert.deepEqual(await c.invoke('echo', 'v1'), 'v1');
    await sleep(KEEP_ALIVE);
    assert.equal(c.log.count('disconnect'), 0);
    assert.equal(c.state(), 'open');
  });
});
