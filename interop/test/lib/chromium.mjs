// Headless Chromium driven over the DevTools protocol with the `ws`
// package (no browser automation library): start it, open a blank page,
// evaluate scripts in it. The browser is Debian's `chromium` (CHROMIUM
// names another binary); .ci/run installs it.

import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {WebSocket, withTimeout} from './fixture.mjs';

export function chromiumPath() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  return candidates.find((p) => fs.existsSync(p)) || null;
}

// Starts headless Chromium and resolves with {page, close}: page.evaluate
// runs an expression in a blank page and resolves with its value (awaiting
// a promise), page.events collects DevTools events of the page.
export async function launchChromium({timeout = 20000} = {}) {
  const bin = chromiumPath();
  if (!bin) throw new Error('chromium not found (set CHROMIUM)');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-chromium-'));
  const proc = spawn(bin, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
    '--no-first-run', '--no-default-browser-check', '--disable-extensions',
    '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank',
  ], {stdio: ['ignore', 'ignore', 'pipe']});
  let stderr = '';
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const endpoint = await withTimeout(new Promise((resolve, reject) => {
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`chromium exited (${code}): ${stderr}`)));
  }), timeout, 'chromium start');

  const conn = new WebSocket(endpoint, {perMessageDeflate: false});
  await withTimeout(new Promise((resolve, reject) => {
    conn.once('open', resolve);
    conn.once('error', reject);
  }), timeout, 'DevTools connection');
  let nextId = 1;
  const pending = new Map();
  const events = [];
  conn.on('message', (raw) => {
    const msg = JSON.parse(raw.toString());
    if (msg.id && pending.has(msg.id)) {
      const {resolve, reject} = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(`${msg.error.message} ${msg.error.data || ''}`));
      else resolve(msg.result);
    } else if (msg.method) {
      events.push(msg);
    }
  });
  const send = (method, params = {}, sessionId) => {
    const id = nextId++;
    conn.send(JSON.stringify({id, method, params, ...(sessionId ? {sessionId} : {})}));
    return withTimeout(new Promise((resolve, reject) => pending.set(id, {resolve, reject})), timeout, method);
  };

  const {targetId} = await send('Target.createTarget', {url: 'about:blank'});
  const {sessionId} = await send('Target.attachToTarget', {targetId, flatten: true});
  await send('Runtime.enable', {}, sessionId);
  const page = {
    events,
    send: (method, params) => send(method, params, sessionId),
    async evaluate(expression) {
      const r = await send('Runtime.evaluate', {expression, awaitPromise: true, returnByValue: true}, sessionId);
      if (r.exceptionDetails) {
        const d = r.exceptionDetails;
        throw new Error(`in chromium: ${d.exception ? d.exception.description : d.text}`);
      }
      return r.result.value;
    },
  };
  const close = async () => {
    try { conn.close(); } catch { /* already closed */ }
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    // Chromium's helper processes can still be writing into the profile
    // after the main process exited (ENOTEMPTY on a loaded machine): retry,
    // and leave a temporary directory behind rather than fail the suite.
    try {
      fs.rmSync(profile, {recursive: true, force: true, maxRetries: 20, retryDelay: 100});
    } catch (err) {
      console.warn(`chromium: profile ${profile} not removed: ${err.message}`);
    }
  };
  return {page, close};
}
