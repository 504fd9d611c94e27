// Scale-out: the official client on instance A receives what a client on
// instance B publishes, through the Redis and the NATS broker. Brokers are
// read from REDIS_URL / NATS_URL (defaults: the local ports); an
// unreachable broker skips its tests loudly, or fails them when
// SC_REQUIRE_BROKERS=1.

import {test, describe} from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import {newScope, waitUntil, collect, fixtureCommand} from './lib/fixture.mjs';

const T = {timeout: 20000};
const brokers = [
  ['redis', process.env.REDIS_URL || 'redis://127.0.0.1:6379'],
  ['nats', process.env.NATS_URL || 'nats://127.0.0.1:4222'],
];

function reachable(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({host: u.hostname, port: Number(u.port)}, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
  });
}

async function needBroker(t, name, url) {
  if (fixtureCommand().some((part) => part.includes('reference-fixture'))) {
    t.skip('the reference fixture only supports the memory broker');
    return false;
  }
  if (await reachable(url)) return true;
  const msg = `${name} broker at ${url} is unreachable`;
  if (process.env.SC_REQUIRE_BROKERS === '1') assert.fail(`${msg} (SC_REQUIRE_BROKERS=1)`);
  console.warn(`!!! SKIPPING scale-out tests: ${msg}`);
  t.skip(msg);
  return false;
}

async function subscribed(client, name) {
  const channel = client.socket.subscribe(name);
  const data = collect(channel, `data on ${name}`);
  await waitUntil(() => client.socket.isSubscribed(name), {label: `subscription to ${name}`});
  return data;
}

for (const [name, url] of brokers) {
  describe(`scale-out through ${name}`, () => {
    test(`a client on instance A gets every publish made on instance B, once and in order (${name})`, T, async (t) => {
      if (!(await needBroker(t, name, url))) return;
      const scope = newScope(t);
      const a = await scope.fixture(['-broker', url]);
      const b = await scope.fixture(['-broker', url]);
      const channel = `scaleout/${crypto.randomUUID()}`;
      const onA = await scope.connectedClient(a.port);
      const onB = await scope.connectedClient(b.port);
      const dataA = await subscribed(onA, channel);
      const dataB = await subscribed(onB, channel);
      const n = 100;
      for (let i = 0; i < n; i++) await onB.socket.invokePublish(channel, {i});
      const gotA = await dataA.count(n, {timeout: 10000});
      const gotB = await dataB.count(n, {timeout: 10000});
      assert.deepEqual(gotA.map((d) => d.i), [...Array(n).keys()]);
      assert.deepEqual(gotB.map((d) => d.i), [...Array(n).keys()]);
      // Nothing more arrives: each message was delivered exactly once.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(dataA.items.length, n);
      assert.equal(dataB.items.length, n);
    });

    test(`server-side publishes and unsubscribes cross instances (${name})`, T, async (t) => {
      if (!(await needBroker(t, name, url))) return;
      const scope = newScope(t);
      const a = await scope.fixture(['-broker', url]);
      const b = await scope.fixture(['-broker', url]);
      const channel = `scaleout/${crypto.randomUUID()}`;
      const onA = await scope.connectedClient(a.port);
      const onB = await scope.connectedClient(b.port);
      const dataA = await subscribed(onA, channel);
      assert.equal(await onB.socket.invoke('serverPublish', {channel, data: 'from B'}), 'ok');
      const [first] = await dataA.count(1, {timeout: 10000});
      assert.equal(first, 'from B');
      // After A leaves the channel, B's publishes no longer reach it.
      onA.socket.unsubscribe(channel);
      await new Promise((r) => setTimeout(r, 300));
      await onB.socket.invokePublish(channel, 'after unsubscribe');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(dataA.items.length, 1);
    });
  });
}
