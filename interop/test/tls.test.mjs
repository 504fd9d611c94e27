// TLS: the official client connects over wss:// to the scserver binary
// (bin/scserver, or SC_SERVER) with a certificate the test makes with
// openssl; the certificate is replaced and reloaded on SIGHUP without
// dropping the open socket; SIGTERM then closes it with 1001. scserver's
// own feature, so it is skipped against the reference fixture.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {scClient, fixtureCommand, waitUntil, withTimeout, collect, WAIT} from './lib/fixture.mjs';
import {makeCert, startServer} from './lib/scserver.mjs';

const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

function wssClient(port, ca) {
  return scClient.create({
    hostname: '127.0.0.1', port, secure: true, autoReconnect: false, wsOptions: {ca},
  });
}

async function nextEvent(socket, name, timeout = WAIT) {
  return withTimeout(socket.listener(name).once(), timeout, `client event ${name}`);
}

test('the official client over wss://, certificate reload on SIGHUP, drain with 1001', {timeout: 60000}, async (t) => {
  if (isReference()) { t.skip('TLS is a feature of the scserver binary'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-tls-'));
  const sockets = [];
  let server;
  t.after(() => {
    for (const s of sockets) { s.disconnect(); s.killAllListeners(); s.killAllChannels(); }
    if (server && server.proc.exitCode === null) server.proc.kill('SIGKILL');
    fs.rmSync(dir, {recursive: true, force: true});
  });
  const first = makeCert(dir, 'first');
  server = await startServer([
    '-tls-cert', path.join(dir, 'cert.pem'), '-tls-key', path.join(dir, 'key.pem'),
    '-drain-delay', '0', '-log-level', 'info',
  ]);

  const a = wssClient(server.port, first);
  sockets.push(a);
  await nextEvent(a, 'connect');
  assert.deepEqual(await a.invoke('echo', {over: 'wss'}), {over: 'wss'});
  const channel = a.subscribe('tls/feed');
  const feed = collect(channel, 'tls/feed');
  await waitUntil(() => a.isSubscribed('tls/feed'), {label: 'subscription'});
  await a.invokePublish('tls/feed', 'hello');
  assert.deepEqual(await feed.count(1), ['hello']);

  // A client that trusts only a certificate the server does not have yet
  // fails; after the files are replaced and SIGHUP, it connects.
  const second = makeCert(dir, 'second');
  const early = wssClient(server.port, second);
  sockets.push(early);
  const err = await nextEvent(early, 'error');
  assert.match(String(err.error && (err.error.message || err.error)), /certificate|self[- ]signed|Socket hung up|ECONNRESET/i);
  early.disconnect();

  server.proc.kill('SIGHUP');
  await waitUntil(() => /TLS certificate reloaded/.test(server.output()), {label: `the reload\n${server.output()}`});
  const b = wssClient(server.port, second);
  sockets.push(b);
  await nextEvent(b, 'connect');
  assert.equal(await b.invoke('echo', 'new certificate'), 'new certificate');

  // The socket opened before the reload was not dropped.
  assert.equal(a.state, a.OPEN);
  assert.equal(await a.invoke('echo', 'still here'), 'still here');
  await b.invokePublish('tls/feed', 'from b');
  assert.deepEqual(await feed.count(2), ['hello', 'from b']);

  // SIGTERM drains: each client gets 1001.
  const closed = nextEvent(a, 'close', 15000);
  server.proc.kill('SIGTERM');
  assert.equal((await closed).code, 1001);
  const {code} = await withTimeout(server.exited, 15000, 'scserver exit');
  assert.equal(code, 0, server.output());
});
