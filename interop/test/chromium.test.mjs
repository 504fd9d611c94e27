// The official client's browser build (socketcluster-client.min.js) in
// headless Chromium, whose WebSocket offers permessage-deflate on every
// connection. Needs Debian's chromium (.ci/run installs it); without it the
// tests are skipped loudly, or fail when SC_REQUIRE_CHROMIUM=1.
// SC_PER_MESSAGE_DEFLATE is a Go fixture extension: the compression test is
// skipped against the reference fixture.

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import {newScope, fixtureCommand, waitUntil} from './lib/fixture.mjs';
import {chromiumPath, launchChromium} from './lib/chromium.mjs';

const require = createRequire(import.meta.url);
const clientJS = fs.readFileSync(
  require.resolve('socketcluster-client/socketcluster-client.min.js'));
const T = {timeout: 60000};
const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

function skipWithoutChromium(t) {
  if (chromiumPath()) return false;
  const msg = 'chromium is not installed (apt-get install chromium, or set CHROMIUM)';
  if (process.env.SC_REQUIRE_CHROMIUM === '1') assert.fail(msg);
  console.error(`SKIPPED: ${msg}`);
  t.skip(msg);
  return true;
}

// The page the browser loads: served from its own origin, like an app.
function startPageServer() {
  const server = http.createServer((req, res) => {
    if (req.url === '/socketcluster-client.min.js') {
      res.writeHead(200, {'Content-Type': 'text/javascript'});
      res.end(clientJS);
      return;
    }
    res.writeHead(200, {'Content-Type': 'text/html'});
    res.end('<!doctype html><title>socketcluster-go</title>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// What the browser runs: connect with the official client, echo a large
// message, publish one to itself, and report what it saw (with stats: how
// many messages the server compressed meanwhile, a Go fixture extension).
const scenario = (port, {stats: withStats = false} = {}) => `(async () => {
  const sc = await import('/socketcluster-client.min.js');
  const socket = sc.create({hostname: '127.0.0.1', port: ${port}, autoReconnect: false});
  await socket.listener('connect').once(10000);
  const extensions = socket.transport.socket.extensions;
  const big = Array.from({length: 2000}, (_, i) => ({id: i, symbol: ['ACME', 'INIT'][i % 2], bid: 100 + (i % 17) / 4, venue: 'XNAS'}));
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const echoOk = same(await socket.invoke('echo', big), big);
  let smallOk = true;
  for (let i = 0; i < 20; i++) smallOk = smallOk && (await socket.invoke('echo', 'small ' + i)) === 'small ' + i;
  const channel = socket.subscribe('chromium/room');
  await channel.listener('subscribe').once(10000);
  const stats = async () => ${withStats} ? socket.invoke('compressionStats') : null;
  const before = await stats();
  const received = channel.once(10000);
  await socket.invokePublish('chromium/room', big);
  const publishOk = same(await received, big);
  const after = await stats();
  socket.disconnect();
  return {extensions, echoOk, smallOk, publishOk, compressions: before && after ? after.compressions - before.compressions : null};
})()`;

describe('headless Chromium', () => {
  let browser; let pageServer;
  before(async () => {
    if (!chromiumPath()) return;
    pageServer = await startPageServer();
    browser = await launchChromium();
    await browser.page.send('Page.enable');
    await browser.page.send('Page.navigate', {url: `http://127.0.0.1:${pageServer.address().port}/`});
    await waitUntil(async () => (await browser.page.evaluate('document.readyState')) === 'complete', {label: 'page loaded', timeout: 20000});
  });
  after(async () => {
    if (browser) await browser.close();
    if (pageServer) await new Promise((resolve) => pageServer.close(resolve));
  });

  test('permessage-deflate negotiated with the browser: echo, publish, compressed once', T, async (t) => {
    if (skipWithoutChromium(t)) return;
    if (isReference()) { t.skip('SC_PER_MESSAGE_DEFLATE is a Go fixture extension'); return; }
    const scope = newScope(t);
    const fx = await scope.fixture([], {SC_PER_MESSAGE_DEFLATE: 'true'});
    const r = await browser.page.evaluate(scenario(fx.port, {stats: true}));
    assert.equal(r.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
    assert.ok(r.echoOk, 'large echo');
    assert.ok(r.smallOk, 'small echoes');
    assert.ok(r.publishOk, 'large publish');
    assert.equal(r.compressions, 1, 'the publish was compressed once by the server');
  });

  test('compression off (the default): the browser offer is ignored', T, async (t) => {
    if (skipWithoutChromium(t)) return;
    const scope = newScope(t);
    const fx = await scope.fixture();
    const r = await browser.page.evaluate(scenario(fx.port));
    assert.equal(r.extensions, '');
    assert.ok(r.echoOk && r.smallOk && r.publishOk, JSON.stringify(r));
  });
});
