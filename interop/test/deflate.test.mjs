// permessage-deflate (RFC 7692) with the official client in Node: its ws
// engine offers the extension on every connection. Off by default (the
// offer is ignored, as by the reference); SC_PER_MESSAGE_DEFLATE=true is a
// Go fixture extension (skipped against the reference fixture, which has no
// such setting).

import {test, describe} from 'node:test';
import assert from 'node:assert/strict';
import {newScope, waitUntil, collect, fixtureCommand} from './lib/fixture.mjs';

const T = {timeout: 30000};
const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

// Chatty JSON: many small similar objects, as real traffic.
const chatty = (n) => Array.from({length: n}, (_, i) => ({
  id: i, symbol: ['ACME', 'INIT', 'GLOBEX'][i % 3], bid: 100 + (i % 17) / 4, ask: 100.5 + (i % 13) / 4, venue: 'XNAS',
}));

// The ws WebSocket and its TCP socket under an official client.
const wsOf = (client) => client.socket.transport.socket;
const tcpOf = (client) => wsOf(client)._socket;

describe('permessage-deflate', () => {
  test('off by default: the client offer is ignored and everything works uncompressed', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture();
    const client = await scope.connectedClient(fx.port);
    assert.equal(wsOf(client).extensions, '', 'no extension negotiated');
    const data = chatty(200);
    const tcp = tcpOf(client);
    const before = tcp.bytesRead;
    assert.deepEqual(await client.socket.invoke('echo', data), data);
    assert.ok(tcp.bytesRead - before >= JSON.stringify(data).length, 'the response came uncompressed');
  });

  test('negotiated with SC_PER_MESSAGE_DEFLATE: compressed both ways, no context takeover', T, async (t) => {
    if (isReference()) { t.skip('SC_PER_MESSAGE_DEFLATE is a Go fixture extension'); return; }
    const scope = newScope(t);
    const fx = await scope.fixture([], {SC_PER_MESSAGE_DEFLATE: 'true'});
    const client = await scope.connectedClient(fx.port);
    assert.equal(wsOf(client).extensions, 'permessage-deflate');
    // The parameters ws accepted from the server's answer.
    const params = wsOf(client)._extensions['permessage-deflate'].params;
    assert.equal(params.server_no_context_takeover, true);
    assert.equal(params.client_no_context_takeover, true);

    // A large invoke: the client compresses it (over ws's 1024-byte
    // threshold), the server inflates it and compresses the response.
    const data = chatty(2000);
    const size = JSON.stringify(data).length;
    const tcp = tcpOf(client);
    const [read0, written0] = [tcp.bytesRead, tcp.bytesWritten];
    assert.deepEqual(await client.socket.invoke('echo', data), data);
    const [read, written] = [tcp.bytesRead - read0, tcp.bytesWritten - written0];
    assert.ok(written < size / 4, `request: ${written} bytes on the wire for ${size}`);
    assert.ok(read < size / 4, `response: ${read} bytes on the wire for ${size}`);

    // Small messages (under the threshold) pass uncompressed, and many
    // messages in a row each inflate on their own.
    for (let i = 0; i < 50; i++) {
      assert.equal(await client.socket.invoke('echo', `small ${i}`), `small ${i}`);
      const medium = chatty(20 + i);
      assert.deepEqual(await client.socket.invoke('echo', medium), medium);
    }
  });

  test('a publish reaches compressed and uncompressed subscribers alike', T, async (t) => {
    if (isReference()) { t.skip('SC_PER_MESSAGE_DEFLATE is a Go fixture extension'); return; }
    const scope = newScope(t);
    const fx = await scope.fixture([], {SC_PER_MESSAGE_DEFLATE: 'true'});
    const compressed = [];
    for (let i = 0; i < 3; i++) compressed.push(await scope.connectedClient(fx.port));
    // perMessageDeflate: false in the ws options: this client offers nothing.
    const plain = await scope.connectedClient(fx.port, {wsOptions: {perMessageDeflate: false}});
    assert.equal(wsOf(plain).extensions, '');
    const subscribers = [...compressed, plain];
    const streams = [];
    for (const c of subscribers) {
      const ch = c.socket.subscribe('deflate/room');
      streams.push(collect(ch, 'publishes'));
      await waitUntil(() => c.socket.isSubscribed('deflate/room'), {label: 'subscribed'});
    }
    const messages = [chatty(500), 'short', chatty(3)];
    const publisher = compressed[0];
    for (const m of messages) await publisher.socket.invokePublish('deflate/room', m);
    for (const s of streams) {
      assert.deepEqual(await s.count(messages.length, {timeout: 10000}), messages);
    }
    // The server also sends a compressed publish of its own (serverPublish),
    // compressed once for its three compressed subscribers (the fixture's
    // compressionStats is a Go extension; the other frames meanwhile are
    // under the threshold).
    const before = await publisher.socket.invoke('compressionStats');
    const big = chatty(800);
    assert.equal(await publisher.socket.invoke('serverPublish', {channel: 'deflate/room', data: big}), 'ok');
    for (const s of streams) {
      const got = await s.count(messages.length + 1, {timeout: 10000});
      assert.deepEqual(got[messages.length], big);
    }
    const stats = await publisher.socket.invoke('compressionStats');
    assert.equal(stats.compressions - before.compressions, 1, 'one compression for three subscribers');
    const ratio = (stats.outBytes - before.outBytes) / (stats.inBytes - before.inBytes);
    assert.ok(ratio < 0.25, `compressed to ${(ratio * 100).toFixed(1)}%`);
  });
});
