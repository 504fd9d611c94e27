// Starts the scserver binary (bin/scserver, or SC_SERVER) for the tests of
// its own features (TLS, limits), and makes certificates with openssl.

import assert from 'node:assert/strict';
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {projectDir, waitUntil} from './fixture.mjs';

export const serverBinary = () => process.env.SC_SERVER || path.join(projectDir, 'bin', 'scserver');

// Writes a self-signed certificate for 127.0.0.1 named cn to dir/cert.pem
// and dir/key.pem (written aside, then renamed into place) and returns the
// certificate's PEM.
export function makeCert(dir, cn) {
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
export async function startServer(args) {
  const bin = serverBinary();
  assert.ok(fs.existsSync(bin), `${bin} is missing: go build -o bin/scserver ./cmd/scserver (or set SC_SERVER)`);
  const proc = spawn(bin, ['-addr', '127.0.0.1:0', ...args], {stdio: ['ignore', 'pipe', 'pipe']});
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({code, signal})));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  const port = await waitUntil(() => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
    return m && Number(m[1]);
  }, {timeout: 20000, label: `scserver to listen\n${out}`});
  return {port, proc, exited, stop, output: () => out};
}
