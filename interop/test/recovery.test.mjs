// Channel recovery with the official client and the js/sc-recovery.cjs
// helper: a client that was disconnected gets exactly what it missed on a
// history channel, in order, then the live publications; a position older
// than the history is refused and the app is told. Channel history is an
// extension of the Go fixture beyond docs/interop-fixture.md's base contract (SC_HISTORY), so these tests
// are skipped against the reference.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import path from 'node:path';
import {newScope, waitUntil, collect, fixtureCommand, projectDir} from './lib/fixture.mjs';

const require = createRequire(import.meta.url);
const {withRecovery} = require(path.join(projectDir, 'js', 'sc-recovery.cjs'));

const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

test('a reconnecting client recovers exactly the missed publications, in order', {timeout: 30000}, async (t) => {
  if (isReference()) { t.skip('the reference has no channel history'); return; }
  const scope = newScope(t);
  const fx = await scope.fixture([], {SC_HISTORY: 'h/*'});
  const sub = await scope.connectedClient(fx.port);
  const recoveries = [];
  const recovery = withRecovery(sub.socket, {onRecovery: (ev) => recoveries.push(ev)});
  scope.defer(() => recovery.destroy());
  const channel = recovery.subscribe('h/news');
  const data = collect(channel, 'news');
  await waitUntil(() => recoveries.length === 1, {label: 'the first sc.recovery'});
  assert.equal(recoveries[0].recovered, undefined);

  const pub = await scope.connectedClient(fx.port);
  for (let i = 1; i <= 3; i++) await pub.socket.invokePublish('h/news', i);
  await data.count(3);
  await waitUntil(() => recovery.position('h/news')?.offset === 3, {label: 'position 3'});

  sub.socket.disconnect();
  await waitUntil(() => sub.socket.state === sub.socket.CLOSED, {label: 'disconnected'});
  for (let i = 4; i <= 7; i++) await pub.socket.invokePublish('h/news', i);
  sub.socket.connect();

  await waitUntil(() => recoveries.length === 2, {label: 'sc.recovery after the reconnect'});
  assert.equal(recoveries[1].recovered, true);
  assert.equal(recoveries[1].missed, 4);
  await data.count(7);
  await pub.socket.invokePublish('h/news', 8);
  const got = await data.count(8);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(data.items.length, 8, 'nothing delivered twice');
  assert.equal(recovery.position('h/news').offset, 8);
});

test('a position older than the history: recovery fails and the app is told', {timeout: 30000}, async (t) => {
  if (isReference()) { t.skip('the reference has no channel history'); return; }
  const scope = newScope(t);
  const fx = await scope.fixture([], {SC_HISTORY: 'h/*', SC_HISTORY_SIZE: '3'});
  const pub = await scope.connectedClient(fx.port);
  for (let i = 1; i <= 6; i++) await pub.socket.invokePublish('h/old', i);
  const page = await pub.socket.invoke('sc.history', {channel: 'h/old'});
  assert.deepEqual(page.publications.map((p) => p.data), [4, 5, 6]);
  assert.equal(page.offset, 6);

  const sub = await scope.connectedClient(fx.port);
  const recoveries = [];
  const recovery = withRecovery(sub.socket, {onRecovery: (ev) => recoveries.push(ev)});
  scope.defer(() => recovery.destroy());
  const channel = recovery.subscribe('h/old', {}, {offset: 1, epoch: page.epoch});
  const data = collect(channel, 'old');
  await waitUntil(() => recoveries.length === 1, {label: 'sc.recovery'});
  assert.equal(recoveries[0].recovered, false);
  assert.equal(recoveries[0].offset, 6);
  await pub.socket.invokePublish('h/old', 7);
  assert.deepEqual(await data.count(1), [7]);

  // Garbage positions are refused with a clear error.
  await assert.rejects(
    sub.socket.invoke('#subscribe', {channel: 'h/old', data: {recover: {offset: -1, epoch: 'x'}}}),
    (err) => err.name === 'InvalidArgumentsError');
  assert.throws(() => recovery.subscribe('h/x', {data: 'text'}), TypeError);
});
