// Mixed SCC clusters: Node scc-broker and scc-broker-client workers with
// our scc-state, scc-broker and scserver workers. The official client on
// every worker: every subscriber gets every publish exactly once, in
// publisher order, across all instances and both broker kinds.
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import {
  goState, goBroker, nodeBroker, nodeWorker, goWorker, settled, connect, subscriber, waitFor, stopAll, sleep, delays,
  ranges, Timeline, diagnostics,
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

// Delivery problems are collected for the whole run, then reported
// together with what every process says (diagnostics), so that a failure
// names the subscriber's worker, the channel, its broker, the publisher,
// the sequence wanted and the one received, and when it arrived.

// brokerOf returns a function naming a channel's broker (by the mapping
// of the broker URIs uris, as every worker computes it).
function brokerOf(uris, brokers) {
  const mapper = new SkeletonRendezvousMapper();
  mapper.setSites(uris);
  return (ch) => {
    const uri = mapper.findSite(ch);
    const b = brokers.find((x) => uri && uri.endsWith(`:${x.port}`));
    return `${uri} (${b ? b.name : 'unknown'})`;
  };
}

// sequences splits a channel's messages by publisher: the values of i
// and their arrival times.
function sequences(sub, ch, publishers) {
  const seqs = Array.from({length: publishers}, () => ({i: [], at: []}));
  const at = sub.at.get(ch);
  sub.got.get(ch).forEach((m, k) => {
    if (!seqs[m.p]) return;
    seqs[m.p].i.push(m.i);
    seqs[m.p].at.push(at[k]);
  });
  return seqs;
}

// exactlyOnceInOrder lists the channels where a publisher's messages did
// not arrive as 0..n-1, each once, in order.
function exactlyOnceInOrder(sub, channels, pubNames, n, broker, timeline) {
  const problems = [];
  for (const ch of channels) {
    sequences(sub, ch, pubNames.length).forEach((seq, p) => {
      const bad = seq.i.findIndex((i, k) => i !== k);
      if (bad < 0 && seq.i.length === n) return;
      const where = bad < 0 ? `${seq.i.length} of ${n}` : `first wrong: ${seq.i[bad]} at position ${bad}, ${timeline.phase(seq.at[bad])}`;
      problems.push(`${sub.name} channel ${ch} on broker ${broker(ch)}, publisher ${p} (${pubNames[p]}): want 0-${n - 1}, got ${ranges(seq.i)} (${where})`);
    });
  }
  return problems;
}

// inOrder lists the channels where a publisher's messages arrived out of
// order or twice (losses are allowed: the cluster was changing).
function inOrder(sub, channels, pubNames, broker, timeline) {
  const problems = [];
  for (const ch of channels) {
    sequences(sub, ch, pubNames.length).forEach((seq, p) => {
      const bad = seq.i.findIndex((i, k) => k > 0 && i <= seq.i[k - 1]);
      if (bad < 0) return;
      problems.push(`${sub.name} channel ${ch} on broker ${broker(ch)}, publisher ${p} (${pubNames[p]}): ${seq.i[bad]} after ${seq.i[bad - 1]} ` +
        `(${timeline.phase(seq.at[bad])}; the one before: ${timeline.phase(seq.at[bad - 1])}); received ${ranges(seq.i)}`);
    });
  }
  return problems;
}

// report fails the test with the problems, the timeline and every
// process's state.
async function report(what, problems, timeline) {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 20).join('\n');
  const more = problems.length > 20 ? `\n… and ${problems.length - 20} more` : '';
  assert.fail(`${what}: ${problems.length} problem(s)\n${shown}${more}\ntimeline:\n${timeline}\nprocesses:\n${await diagnostics()}`);
}

// run runs a test body; the processes it started are stopped whatever
// happens.
async function run(body) {
  try {
    await body();
  } finally {
    await stopAll();
  }
}

test('mixed cluster: our scc-state, a Node and a Go scc-broker, a Node worker and two Go workers', () => run(async () => {
  const tl = new Timeline();
  const statePort = (await goState()).port;
  const nb = await nodeBroker(statePort);
  const gb = await goBroker(statePort);
  await sleep(delays.startup);
  const workers = [
    await nodeWorker(statePort),
    await goWorker(statePort),
    await goWorker(statePort, '&pubSubBatchDuration=5'),
  ];
  tl.mark('workers started');
  const channels = channelNames(40);
  const subs = await Promise.all(workers.map((w) => subscriber(w.port, channels, w)));
  await settled(workers, 2);
  tl.mark('settled on 2 brokers');

  // The channels are spread over both broker kinds.
  const uris = (await workers[0].status()).uris;
  const broker = brokerOf(uris, [nb, gb]);
  const mapper = new SkeletonRendezvousMapper();
  mapper.setSites(uris);
  const used = new Set(channels.map((c) => mapper.findSite(c)));
  assert.equal(used.size, 2, `channels on both brokers ${uris}`);
  assert.ok(uris.some((u) => u.endsWith(`:${nb.port}`)) && uris.some((u) => u.endsWith(`:${gb.port}`)), `${uris}`);

  const n = 25;
  const pubs = await Promise.all(workers.map((w) => connect(w.port)));
  const pubNames = workers.map((w) => `${w.name}:${w.port}`);
  tl.mark('publishing');
  await Promise.all(pubs.map((s, p) => publishAll(s, p, channels, n)));
  tl.mark('published');
  const want = channels.length * workers.length * n;
  for (const sub of subs) {
    try {
      await waitFor(`${sub.name} receives ${want}`, () => sub.count() >= want);
    } catch (err) {
      tl.mark(`gave up waiting: ${err.message}`);
    }
  }
  await sleep(300); // room for a duplicate to show
  tl.mark('checked');
  await report('every subscriber gets every publish exactly once, in order',
    subs.flatMap((sub) => exactlyOnceInOrder(sub, channels, pubNames, n, broker, tl)), tl);
  for (const s of [...pubs, ...subs.map((x) => x.socket)]) s.disconnect();
}));

test('swapping instances one at a time under live traffic: a broker added, one removed, a Node worker replaced by a Go one', () => run(async () => {
  const tl = new Timeline();
  const statePort = (await goState()).port;
  const nb = await nodeBroker(statePort);
  const gb = await goBroker(statePort);
  await sleep(delays.startup);
  const nw = await nodeWorker(statePort);
  const gw = await goWorker(statePort);
  const channels = channelNames(30);
  const subN = await subscriber(nw.port, channels, nw);
  const subG = await subscriber(gw.port, channels, gw);
  await settled([nw, gw], 2);
  tl.mark('settled on 2 brokers (Node, Go)');
  const urisBefore = (await nw.status()).uris;

  // Two publishers, one on each worker, publish rounds without pause.
  const pubN = await connect(nw.port);
  const pubG = await connect(gw.port);
  const pubNames = [`${nw.name}:${nw.port}`, `${gw.name}:${gw.port}`];
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
  tl.mark('publishing');
  const gb2 = await goBroker(statePort);
  tl.mark(`second Go broker started (round ${round})`);
  await settled([nw, gw], 3);
  tl.mark(`settled on 3 brokers (round ${round})`);
  await nb.kill();
  tl.mark(`Node broker killed (round ${round})`);
  await settled([nw, gw], 2);
  tl.mark(`settled on 2 Go brokers (round ${round})`);
  // The Node worker is replaced by a Go worker; its clients move too.
  const gw2 = await goWorker(statePort);
  const subG2 = await subscriber(gw2.port, channels, gw2);
  await settled([gw2], 2);
  tl.mark(`second Go worker settled (round ${round})`);
  subN.socket.disconnect();
  pubN.disconnect();
  await nw.stop();
  tl.mark(`Node worker stopped (round ${round})`);
  await settled([gw, gw2], 2);
  tl.mark(`settled: two Go workers, two Go brokers (round ${round})`);
  running = false;
  await publishing;

  // Publishes after everything settled arrive everywhere; nothing is ever
  // duplicated or reordered.
  const from = round;
  tl.mark(`steady rounds ${from}-${from + 9}`);
  for (let r = from; r < from + 10; r++) {
    await Promise.all(channels.map((ch) => pubG.invokePublish(ch, {p: 1, i: r})));
  }
  for (const sub of [subG, subG2]) {
    try {
      await waitFor(`${sub.name}: the rounds after the swaps`, () =>
        channels.every((ch) => sub.got.get(ch).some((m) => m.p === 1 && m.i === from + 9)));
    } catch (err) {
      tl.mark(`gave up waiting: ${err.message}`);
    }
  }
  await sleep(300);
  // Channels are named by the broker they were on before the swaps.
  const before = brokerOf(urisBefore, [nb, gb, gb2]);
  const problems = [subN, subG, subG2].flatMap((sub) => inOrder(sub, channels, pubNames, before, tl));
  for (const sub of [subG, subG2]) {
    for (const ch of channels) {
      const seen = new Set(sub.got.get(ch).filter((m) => m.p === 1).map((m) => m.i));
      const missing = [];
      for (let r = from; r < from + 10; r++) if (!seen.has(r)) missing.push(r);
      if (missing.length) problems.push(`${sub.name} channel ${ch}: steady rounds ${ranges(missing)} missing; received ${ranges(sub.got.get(ch).filter((m) => m.p === 1).map((m) => m.i))}`);
    }
  }
  await report('nothing duplicated or reordered; the rounds after the swaps arrive', problems, tl);
  for (const s of [pubG, subG.socket, subG2.socket]) s.disconnect();
}));

test('Node workers on our scc-state and scc-broker instances only', () => run(async () => {
  const tl = new Timeline();
  const statePort = (await goState()).port;
  const brokers = [await goBroker(statePort), await goBroker(statePort)];
  await sleep(delays.startup);
  const workers = [await nodeWorker(statePort), await nodeWorker(statePort, {SCC_PUB_SUB_BATCH_DURATION: '5'})];
  const channels = channelNames(30);
  const subs = await Promise.all(workers.map((w) => subscriber(w.port, channels, w)));
  await settled(workers, 2);
  tl.mark('settled on 2 brokers');
  const broker = brokerOf((await workers[0].status()).uris, brokers);
  const n = 20;
  const pubs = await Promise.all(workers.map((w) => connect(w.port)));
  const pubNames = workers.map((w) => `${w.name}:${w.port}`);
  tl.mark('publishing');
  await Promise.all(pubs.map((s, p) => publishAll(s, p, channels, n)));
  tl.mark('published');
  const want = channels.length * workers.length * n;
  for (const sub of subs) {
    try {
      await waitFor(`${sub.name} receives ${want}`, () => sub.count() >= want);
    } catch (err) {
      tl.mark(`gave up waiting: ${err.message}`);
    }
  }
  await sleep(300);
  await report('every subscriber gets every publish exactly once, in order',
    subs.flatMap((sub) => exactlyOnceInOrder(sub, channels, pubNames, n, broker, tl)), tl);
  for (const s of [...pubs, ...subs.map((x) => x.socket)]) s.disconnect();
}));
