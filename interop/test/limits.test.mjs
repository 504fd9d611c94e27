// Limits of the scserver binary seen by the official client: a socket over
// the inbound rate limit gets a close event with code 4101 and its reason
// (and the client reconnects), a connection over -max-connections is
// refused while the others are served. scserver's own features, so they are
// skipped against the reference fixture.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {scClient, fixtureCommand, waitUntil, withTimeout, WAIT, FAST_RECONNECT} from './lib/fixture.mjs';
import {startServer} from './lib/scserver.mjs';

const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

function client(port, options = {}) {
  return scClient.create({hostname: '127.0.0.1', port, autoReconnectOptions: {...FAST_RECONNECT}, ...options});
}

function release(socket) {
  socket.disconnect();
  socket.killAllListeners();
}

test('a client over the inbound rate limit is closed with 4101 and its reason, then reconnects', {timeout: 30000}, async (t) => {
  if (isReference()) { t.skip('limits are a feature of the scserver binary'); return; }
  const server = await startServer(['-inbound-message-rate', '5', '-inbound-message-burst', '20', '-drain-delay', '0', '-log-level', 'warn']);
  t.after(() => server.stop());
  const calm = client(server.port, {autoReconnect: false});
  const calmConnected = withTimeout(calm.listener('connect').once(), WAIT, 'calm connect');
  const flood = client(server.port);
  const floodConnected = withTimeout(flood.listener('connect').once(), WAIT, 'flood connect');
  t.after(() => { release(calm); release(flood); });
  await calmConnected;
  await floodConnected;

  const closed = withTimeout(flood.listener('close').once(), WAIT, 'close event of the flooding client');
  for (let i = 0; i < 100; i++) flood.transmit('noise', i);
  const {code, reason} = await closed;
  assert.equal(code, 4101);
  assert.equal(reason, 'Socket inbound rate limit exceeded');
  // The official client reconnects after a 4xxx close below 4500; the
  // other client was not touched.
  await withTimeout(flood.listener('connect').once(), WAIT, 'reconnect');
  assert.equal(await calm.invoke('echo', 'calm'), 'calm');
  await waitUntil(() => /inbound rate limit/.test(server.output()), {label: `the warning\n${server.output()}`});
});

test('a connection over -max-connections is refused; the others are served', {timeout: 30000}, async (t) => {
  if (isReference()) { t.skip('limits are a feature of the scserver binary'); return; }
  const server = await startServer(['-max-connections', '1', '-drain-delay', '0', '-log-level', 'warn']);
  t.after(() => server.stop());
  const first = client(server.port, {autoReconnect: false});
  t.after(() => release(first));
  await withTimeout(first.listener('connect').once(), WAIT, 'first connect');
  const second = client(server.port, {autoReconnect: false});
  t.after(() => release(second));
  const {error} = await withTimeout(second.listener('error').once(), WAIT, 'the refusal of the second');
  assert.ok(error, 'an error event');
  assert.notEqual(second.state, second.OPEN);
  assert.equal(await first.invoke('echo', 'served'), 'served');
  await waitUntil(() => /connection limit/.test(server.output()), {label: `the warning\n${server.output()}`});
});
