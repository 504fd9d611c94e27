// TLS: the official client connects over wss:// to the scserver binary
// (bin/scserver, or SC_SERVER) with a certificate the test makes with
// openssl; the certificate is replaced and reloaded on SIGHUP without
// dropping the open socket; SIGTERM then closes it with 1001. scserver's
// own feature, so it is skipped against the reference fixture.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {scClient, projectDir, fixtureCommand, waitUntil, withTimeout, collect, WAIT} from './lib/fixture.mjs';

const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));
const serverBinary = () => process.env.SC_SERVER || path.join(projectDir, 'bin', 'scserver');

// Writes a self-signed certificate for 127.0.0.1 named cn to dir/cert.pem
// and dir/key.pem (written aside, then renamed into place) and returns the
// certificate's PEM.
function makeCert(dir, cn) {
  const tmpKey = path.join(dir, 'key.pem.new');
  const tmpCert = path.join(dir, 'cert.pem.new');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', tmpKey, '-out', tmpCert, '-days', '1', '-subj', `/CN=${cn}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], {stdio: ['ignore', 'ignore', 'pipe']});
  fs.renameSync(tmpKey, path.join(dir, 'key.pem'));
  fs.renameSync(tmpCert, path.join(dir, 'cert.pem'));
  return fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
}

// Starts scserver with args and resolves with {port, proc, output, exited}
// once it prints its address.
async function startServer(args) {
  const bin = serverBinary();
  assert.ok(fs.existsSync(bin), `${bin} is missing: go build -o bin/scserver ./cmd/scserver (or set SC_SERVER)`);
  const proc = spawn(bin, ['-addr', '127.0.0.1:0', ...args], {stdio: ['ignore', 'pipe', 'pipe']});
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({code, signal})));
  const port = await waitUntil(() => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
    return m && Number(m[1]);
  }, {timeout: 20000, label: `scserver to listen\n${out}`});
  return {port, proc, exited, output: () => out};
}

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
