// A subscriber that stops reading is disconnected as a slow consumer (close
// 4100) once its outbound queue passes the limit, while the publisher and
// the other subscribers are not held up. The limit is set with the Go
// fixture's SC_OUTBOUND_QUEUE_LIMIT (an extension beyond docs/interop-fixture.md: the
// reference has no limit, so this test is skipped against it).

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {newScope, waitUntil, collect, fixtureCommand, sleep} from './lib/fixture.mjs';

const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

test('a subscriber that stops reading is cut with 4100; the others get every message', {timeout: 30000}, async (t) => {
  if (isReference()) { t.skip('the reference has no outbound queue limit'); return; }
  const scope = newScope(t);
  const fx = await scope.fixture([], {SC_OUTBOUND_QUEUE_LIMIT: String(1 << 20)});

  const slow = scope.raw(fx.port);
  await slow.handshake();
  const sub = await slow.invoke('#subscribe', {channel: 'slow/feed'});
  assert.equal(sub.error, undefined);
  slow.ws._socket.pause(); // stop reading: the server's writes back up

  const fast = await scope.connectedClient(fx.port);
  const channel = fast.socket.subscribe('slow/feed');
  const data = collect(channel, 'feed');
  await waitUntil(() => fast.socket.isSubscribed('slow/feed'), {label: 'fast subscribed'});

  const publisher = await scope.connectedClient(fx.port);
  const blob = 'x'.repeat(64 * 1024);
  const n = 400; // 25 MiB: far past the TCP buffers and the 1 MiB queue limit
  for (let i = 0; i < n; i++) await publisher.socket.invokePublish('slow/feed', {i, blob});
  const got = await data.count(n, {timeout: 20000});
  assert.deepEqual(got.map((d) => d.i), [...Array(n).keys()]);

  slow.ws._socket.resume();
  const {code} = await slow.waitClose(10000);
  assert.ok(code === 4100 || code === 1006, `slow consumer closed with ${code}`);
  // The publisher and the fast subscriber are still connected and served.
  assert.equal(await publisher.socket.invoke('echo', 'still here'), 'still here');
  await sleep(50);
  assert.equal(fast.socket.state, 'open');
});
