// The MessagePack codec: the official client configured with the npm codec
// sc-codec-min-bin against the fixture started with SC_CODEC=minbin (a Go
// fixture extension beyond docs/interop-fixture.md; skipped against the reference).

import {test, describe} from 'node:test';
import assert from 'node:assert/strict';
import {createRequire} from 'node:module';
import crypto from 'node:crypto';
import {newScope, waitUntil, collect, fixtureCommand} from './lib/fixture.mjs';

const require = createRequire(import.meta.url);
const minBin = require('sc-codec-min-bin');
const T = {timeout: 20000};
const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

describe('sc-codec-min-bin', () => {
  test('handshake, RPC, errors, binary and pub/sub through the MessagePack codec', T, async (t) => {
    if (isReference()) { t.skip('SC_CODEC is a Go fixture extension'); return; }
    const scope = newScope(t);
    const fx = await scope.fixture([], {SC_CODEC: 'minbin'});
    const client = await scope.connectedClient(fx.port, {codecEngine: minBin});

    const values = [{a: 1, nested: {b: [1, 'two', null, true]}}, 'text', 42, 1.5, false, 0, '', null, [1, 2, 3]];
    for (const v of values) {
      assert.deepEqual(await client.socket.invoke('echo', v), v);
    }
    // The npm codec carries ArrayBuffers as MessagePack bin (a Node Buffer
    // would arrive as an index map, a limit of the npm codec itself).
    const bytes = crypto.randomBytes(64);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    const echoed = await client.socket.invoke('echo', ab);
    assert.ok(echoed instanceof ArrayBuffer, 'binary comes back as an ArrayBuffer');
    assert.ok(Buffer.from(echoed).equals(bytes), 'binary round trip');

    await assert.rejects(client.socket.invoke('fail', {code: 7}), (err) => {
      assert.equal(err.name, 'FailError');
      assert.equal(err.message, 'it failed');
      assert.equal(err.code, 7);
      return true;
    });

    const channel = client.socket.subscribe('codec/room');
    const data = collect(channel, 'codec data');
    await waitUntil(() => client.socket.isSubscribed('codec/room'), {label: 'subscribed'});
    const other = await scope.connectedClient(fx.port, {codecEngine: minBin});
    for (let i = 0; i < 20; i++) await other.socket.invokePublish('codec/room', {i});
    const got = await data.count(20, {timeout: 10000});
    assert.deepEqual(got.map((d) => d.i), [...Array(20).keys()]);

    // The server transmits and invokes through the codec too.
    const notices = collect(client.socket.receiver('notice'), 'notices');
    assert.equal(await client.socket.invoke('serverTransmit', {hello: 'codec'}), 'ok');
    assert.deepEqual((await notices.count(1))[0], {hello: 'codec'});
  });
});
