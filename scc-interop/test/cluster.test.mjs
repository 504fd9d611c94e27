// Mixed SCC clusters: Node scc-broker and scc-broker-client workers with
// our scc-state, scc-broker and scserver workers. The official client on
// every worker: every subscriber gets every publish exactly once, in
// publisher order, across all instances and both broker kinds.
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import {
  freePort, goState, goBroker, nodeBroker, nodeWorker, goWorker, settled, connect, subscriber, waitFor, stopAll, sleep, delays,
} from '../lib/cluster.mjs';

const require = createRequire(import.meta.url);
const SkeletonRendezvousMapper = require('scc-broker-client/mappers/skeleton-rendezvous-mapper');

after(stopAll);

const channelNames = (n) => Array.from({length: n}, (_, i) => `room-${i}`);

// publishAll has the client publish {p, i} for i < n on every channel,
// in order.
async function publishAll(socket, p, channels, n) {
  for (let i = 0; i < n; i++) {
    await Promise.all(channels.map((ch) => socket.invokePublish(ch, {p, i})));
  }
}

// exactlyOnceInOrder checks, per channel and publisher, 0..n-1 in order.
function exactlyOnceInOrder(sub, channels, publishers, n) {
  for (const ch of channels) {
    const next = new Array(publishers).fill(0);
    for (const m of sub.got.get(ch)) {
      assert.equal(m.i, next[m.p], `worker ${sub.port} channel ${ch} publisher ${m.p}: got ${m.i}, want ${next[m.p]} (duplicate, loss or reorder)`);
      next[m.p]++;
    }
    assert.deepEqual(next, new Array(publishers).fill(n), `worker ${sub.port} channel ${ch}: counts per publisher`);
  }
}

test('mixed cluster: our scc-state, a Node and a Go scc-broker, a Node worker and two Go workers', async () => {
  const statePort = await freePort();
  const state = await goState(statePort);
  const nb = await nodeBroker(await freePort(), statePort);
  const gb = await goBroker(await freePort(), statePort);
  await sleep(delays.startup);
  const workers = [
    await nodeWorker(await freePort(), statePort),
    await goWorker(await freePort(), statePort),
    await goWorker(await freePort(), statePort, '&pubSubBatchDuration=5'),
  ];
  const channels = channelNames(40);
  const subs = await Promise.all(workers.map((w) => subscriber(w.port, channels)));
  await settled(workers, 2);

  // The channels are spread over both broker kinds.
  const uris = (await workers[0].status()).uris;
  const mapper = new SkeletonRendezvousMapper();
  mapper.setSites(uris);
  const used = new Set(channels.map((c) => mapper.findSite(c)));
  assert.equal(used.size, 2, `channels on both brokers ${uris}`);
  assert.ok(uris.some((u) => u.endsWith(`:${nb.port}`)) && uris.some((u) => u.endsWith(`:${gb.port}`)), `${uris}`);

  const n = 25;
  const pubs = await Promise.all(workers.map((w) => connect(w.port)));
  await Promise.all(pubs.map((s, p) => publishAll(s, p, channels, n)));
  const want = channels.length * workers.length * n;
  for (const sub of subs) await waitFor(`worker ${sub.port} receives ${want}`, () => sub.count() >= want);
  await sleep(300); // room for a duplicate to show
  for (const sub of subs) exactlyOnceInOrder(sub, channels, workers.length, n);
  for (const s of [...pubs, ...subs.map((x) => x.socket)]) s.disconnect();
  await stopAll();
  void state;
});

test('swapping instances one at a time under live traffic: a broker added, one removed, a Node worker replaced by a Go one', async () => {
  const statePort = await freePort();
  await goState(statePort);
  const nb = await nodeBroker(await freePort(), statePort);
  await goBroker(await freePort(), statePort);
  await sleep(delays.startup);
  const nw = await nodeWorker(await freePort(), statePort);
  const gw = await goWorker(await freePort(), statePort);
  const channels = channelNames(30);
  const subN = await subscriber(nw.port, channels);
  const subG = await subscriber(gw.port, channels);
  await settled([nw, gw], 2);

  // Two publishers, one on each worker, publish rounds without pause.
  const pubN = await connect(nw.port);
  const pubG = await connect(gw.port);
  let round = 0;
  let running = true;
  const publishing = (async () => {
    while (running) {
      await Promise.all(channels.flatMap((ch) => [
        pubN.invokePublish(ch, {p: 0, i: round}).catch(() => {}),
        pubG.invokePublish(ch, {p: 1, i: round}).catch(() => {}),
      ]));
      round++;
      await sleep(20);
    }
  })();

  // A Go broker joins, then the Node broker goes away (crash).
  const gb2 = await goBroker(await freePort(), statePort);
  await settled([nw, gw], 3);
  await nb.kill();
  await settled([nw, gw], 2);
  // The Node worker is replaced by a Go worker; its clients move too.
  const gw2 = await goWorker(await freePort(), statePort);
  const subG2 = await subscriber(gw2.port, channels);
  await settled([gw2], 2);
  subN.socket.disconnect();
  pubN.disconnect();
  await nw.stop();
  await settled([gw, gw2], 2);
  running = false;
  await publishing;
  void gb2;

  // Publishes after everything settled arrive everywhere; nothing is ever
  // duplicated or reordered.
  const from = round;
  for (let r = from; r < from + 10; r++) {
    await Promise.all(channels.map((ch) => pubG.invokePublish(ch, {p: 1, i: r})));
  }
  for (const sub of [subG, subG2]) {
    await waitFor(`worker ${sub.port}: the rounds after the swaps`, () =>
      channels.every((ch) => sub.got.get(ch).some((m) => m.p === 1 && m.i === from + 9)));
  }
  for (const sub of [subN, subG, subG2]) {
    for (const ch of channels) {
      const last = [-1, -1];
      for (const m of sub.got.get(ch)) {
        assert.ok(m.i > last[m.p], `worker ${sub.port} channel ${ch} publisher ${m.p}: ${m.i} after ${last[m.p]}`);
        last[m.p] = m.i;
      }
    }
  }
  for (const sub of [subG, subG2]) {
    for (const ch of channels) {
      const seen = new Set(sub.got.get(ch).filter((m) => m.p === 1).map((m) => m.i));
      for (let r = from; r < from + 10; r++) assert.ok(seen.has(r), `worker ${sub.port} ${ch}: round ${r} missing`);
    }
  }
  for (const s of [pubG, subG.socket, subG2.socket]) s.disconnect();
  await stopAll();
});

test('Node workers on our scc-state and scc-broker instances only', async () => {
  const statePort = await freePort();
  await goState(statePort);
  await goBroker(await freePort(), statePort);
  await goBroker(await freePort(), statePort);
  await sleep(delays.startup);
  const workers = [await nodeWorker(await freePort(), statePort), await nodeWorker(await freePort(), statePort, {SCC_PUB_SUB_BATCH_DURATION: '5'})];
  const channels = channelNames(30);
  const subs = await Promise.all(workers.map((w) => subscriber(w.port, channels)));
  await settled(workers, 2);
  const n = 20;
  const pubs = await Promise.all(workers.map((w) => connect(w.port)));
  await Promise.all(pubs.map((s, p) => publishAll(s, p, channels, n)));
  const want = channels.length * workers.length * n;
  for (const sub of subs) await waitFor(`worker ${sub.port} receives ${want}`, () => sub.count() >= want);
  await sleep(300);
  for (const sub of subs) exactlyOnceInOrder(sub, channels, workers.length, n);
  for (const s of [...pubs, ...subs.map((x) => x.socket)]) s.disconnect();
  await stopAll();
});
