// The admin page in headless Chromium (Debian's chromium, driven by
// playwright-core): log in, watch the figures move while a client
// publishes, find that client's socket and disconnect it.
//
//   cd internal/admin/testdata/browser && npm ci && npm test
//
// It builds scserver with `go build`. CHROMIUM names the browser (default
// /usr/bin/chromium); without it the test skips, or fails when
// SC_REQUIRE_TOOLS=1 (as .ci/run sets).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, execFileSync} from 'node:child_process';
import {existsSync, mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {createInterface} from 'node:readline';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const PASSWORD = 'browser-test admin password';
const WAIT = 30000;

const until = async (what, cond, timeout = WAIT) => {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
};

// Starts scserver and resolves with its public and admin addresses.
const startServer = (bin, t) => new Promise((resolve, reject) => {
  const proc = spawn(bin, ['-addr', '127.0.0.1:0', '-admin-addr', '127.0.0.1:0', '-log-level', 'warn'], {
    env: {...process.env, SC_ADMIN_PASSWORD: PASSWORD},
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => proc.kill('SIGTERM'));
  const found = {};
  createInterface({input: proc.stdout}).on('line', (line) => {
    const m = /^(listening|admin) on (\S+)$/.exec(line);
    if (m) found[m[1]] = m[2];
    if (found.listening && found.admin) resolve(found);
  });
  proc.on('exit', (code) => reject(new Error('scserver exited with ' + code)));
});

// A raw SocketCluster client: handshake, subscribe, then publish every
// 50 ms until closed. Resolves with its socket id and its close code.
const startClient = (addr) => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://${addr}/socketcluster/`);
  let cid = 0;
  const send = (event, data) => ws.send(JSON.stringify({event, data, cid: ++cid}));
  const closed = new Promise((r) => ws.on('close', (code) => r(code)));
  let timer;
  ws.on('message', (buf) => {
    const text = buf.toString();
    if (text === '') return ws.send(''); // ping → pong
    const p = JSON.parse(text);
    if (p.rid === 1) {
      send('#subscribe', {channel: 'news'});
      timer = setInterval(() => send('#publish', {channel: 'news', data: 'hello'}), 50);
      resolve({id: p.data.id, closed, stop: () => { clearInterval(timer); ws.close(); }});
    }
  });
  ws.on('close', () => clearInterval(timer));
  ws.on('open', () => send('#handshake', {authToken: null}));
  ws.on('error', reject);
});

test('admin page: log in, figures move, disconnect a socket', async (t) => {
  if (!existsSync(browserPath)) {
    const msg = `Chromium not found at ${browserPath} (bash .ci/run installs Debian's chromium)`;
    if (process.env.SC_REQUIRE_TOOLS === '1') assert.fail(msg + '; SC_REQUIRE_TOOLS=1');
    t.skip('SKIPPED: ' + msg);
    return;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'sc-admin-browser-'));
  t.after(() => rmSync(dir, {recursive: true, force: true}));
  const bin = path.join(dir, 'scserver');
  execFileSync('go', ['build', '-o', bin, './cmd/scserver'], {cwd: root, stdio: 'inherit'});
  const addrs = await startServer(bin, t);

  const browser = await chromium.launch({
    executablePath: browserPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'], // playwright gives it a fresh profile
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const external = [];
  page.on('request', (req) => { if (!req.url().startsWith(`http://${addrs.admin}/`)) external.push(req.url()); });
  await page.goto(`http://${addrs.admin}/`);

  // Log in: a wrong password first.
  await page.waitForSelector('#login-form', {state: 'visible', timeout: WAIT});
  await page.fill('#password', 'not the password');
  await page.click('#login-button');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('Wrong password'), null, {timeout: WAIT});
  await page.fill('#password', PASSWORD);
  await page.click('#login-button');
  await page.waitForSelector('#main', {state: 'visible', timeout: WAIT});
  assert.equal(await page.isVisible('#login'), false);

  // Figures move while a client publishes.
  const client = await startClient(addrs.listening);
  t.after(() => client.stop());
  await page.waitForFunction(() => document.getElementById('v-clients').textContent === '1', null, {timeout: WAIT});
  const rate = async (key) => Number((await page.textContent('#v-' + key)).replace(/[^0-9.]/g, '')) || 0;
  await until('publishes per second above zero', async () => (await rate('publishes')) > 0);
  await until('deliveries per second above zero', async () => (await rate('deliveries')) > 0);
  const handshakes = await page.textContent('#v-handshakes');
  assert.notEqual(handshakes, '–');
  await page.waitForFunction(() => document.getElementById('channels').textContent.includes('news'), null, {timeout: WAIT});
  await page.waitForFunction(() => document.getElementById('cluster').textContent.includes('(this one)'), null, {timeout: WAIT});
  await page.screenshot({path: path.join(process.env.SC_ADMIN_SCREENSHOT_DIR || dir, 'admin.png'), fullPage: true});

  // Find the socket by id and disconnect it: the client is closed with
  // 4500 and the socket is gone from the page.
  await page.fill('#lookup', client.id);
  await page.click('#lookup-form button');
  await page.waitForSelector(`#sockets tr[data-id="${client.id}"]`, {timeout: WAIT});
  await page.click(`#sockets tr[data-id="${client.id}"] button.disconnect`);
  assert.equal(await client.closed, 4500);
  await page.waitForFunction((id) => document.getElementById('lookup-status').textContent === 'No socket found for ' + id, client.id, {timeout: WAIT});
  assert.equal(await page.$(`#sockets tr[data-id="${client.id}"]`), null);
  await page.waitForFunction(() => document.getElementById('v-clients').textContent === '0', null, {timeout: WAIT});

  // Log out: back to the log-in form.
  await page.click('#logout');
  await page.waitForSelector('#login-form', {state: 'visible', timeout: WAIT});
  assert.deepEqual(external, [], 'the page loaded something from elsewhere');
});
