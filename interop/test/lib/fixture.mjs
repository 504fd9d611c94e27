// Test harness for the interop suite: starts the interop fixture server,
// creates official clients and raw WebSocket clients, and waits for things
// with timeouts. Everything a test starts is registered with a scope so that
// it is torn down even when the test fails.

import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {createRequire} from 'node:module';

const require = createRequire(import.meta.url);
const scClient = require('socketcluster-client');
const WebSocket = require('ws');

export {scClient, WebSocket};

const here = path.dirname(fileURLToPath(import.meta.url));

// interop/ (the package root) and the project root.
export const interopDir = path.resolve(here, '..', '..');
export const projectDir = path.resolve(interopDir, '..');

export const DEFAULT_FIXTURE = path.join(projectDir, 'bin', 'interop-fixture');

// Environment variables the fixture reads as option defaults. They are
// removed from the inherited environment so that a developer's shell cannot
// change what the tests see; pass them in `env` to set them on purpose.
const FIXTURE_ENV_OPTIONS = [
  'SC_AUTH_KEY', 'SC_ACK_TIMEOUT', 'SC_PING_INTERVAL', 'SC_PING_TIMEOUT',
  'SC_HANDSHAKE_TIMEOUT', 'SC_CHANNEL_LIMIT', 'SC_ALLOW_CLIENT_PUBLISH', 'SC_PROTOCOL_VERSION',
];

// ---------------------------------------------------------------------------
// Small utilities

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Default limit for every wait in the harness. Waits end as soon as what they
// wait for happens, so a generous limit only matters on a very busy machine.
export const WAIT = 8000;

// Resolves or rejects like `promise`, or rejects with a labelled error after
// `ms` milliseconds.
export function withTimeout(promise, ms, label = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Polls `fn` until it returns a truthy value (which is returned) or the
// deadline passes.
export async function waitUntil(fn, {timeout = WAIT, interval = 20, label = 'condition'} = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
    await sleep(interval);
  }
}

// Splits a shell-style command line into words: whitespace separates words,
// single quotes keep everything literally, double quotes and backslashes work
// as in sh (without expansions).
export function splitCommand(text) {
  const words = [];
  let word = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in ${JSON.stringify(text)}`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word = word ?? '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) i++;
        word += text[i];
      }
      if (i >= text.length) throw new Error(`unterminated " in ${JSON.stringify(text)}`);
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

export function fixtureCommand() {
  const configured = process.env.SC_FIXTURE;
  const words = configured && configured.trim() ? splitCommand(configured) : [DEFAULT_FIXTURE];
  if (!words.length) throw new Error('SC_FIXTURE is empty');
  return words;
}

// ---------------------------------------------------------------------------
// Fixture processes

const running = new Set();

// Last resort: never leave a fixture behind when the test process exits.
process.on('exit', () => {
  for (const proc of running) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// Starts the fixture with `-addr 127.0.0.1:0` plus `extraArgs`, waits for its
// `READY <port>` line, and returns {port, url, proc, stop(), exited, output()}.
// `stop()` sends SIGTERM, waits for the exit (SIGKILL after `killAfter` ms)
// and resolves with {code, signal}.
export async function startFixture(extraArgs = [], env = {}, {readyTimeout = 20000, killAfter = 4000} = {}) {
  const [cmd, ...prefixArgs] = fixtureCommand();
  const childEnv = {...process.env};
  for (const name of FIXTURE_ENV_OPTIONS) delete childEnv[name];
  Object.assign(childEnv, env);

  const proc = spawn(cmd, [...prefixArgs, '-addr', '127.0.0.1:0', ...extraArgs], {
    cwd: interopDir,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);

  let stdout = '';
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => { stderr += chunk; });
  proc.stdout.setEncoding('utf8');

  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      running.delete(proc);
      resolve({code, signal});
    });
  });
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;

  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`fixture ${cmd} printed no READY line within ${readyTimeout} ms\n${output()}`));
    }, readyTimeout);
    proc.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start fixture ${JSON.stringify(cmd)} (set SC_FIXTURE?): ${error.message}`));
    });
    proc.stdout.on('data', (chunk) => {
      stdout += chunk;
      const m = /^READY (\d+)\s*$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    exited.then(({code, signal}) => {
      clearTimeout(timer);
      reject(new Error(`fixture exited (code ${code}, signal ${signal}) before READY\n${output()}`));
    });
  });

  let stopping = null;
  const stop = () => {
    if (!stopping) {
      stopping = (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          const timer = setTimeout(() => proc.kill('SIGKILL'), killAfter);
          const result = await exited;
          clearTimeout(timer);
          return result;
        }
        return exited;
      })();
    }
    return stopping;
  };

  return {port, url: `ws://127.0.0.1:${port}/socketcluster/`, proc, stop, exited, output};
}

// ---------------------------------------------------------------------------
// Scopes: everything created through a scope is cleaned up by scope.close(),
// which `newScope(t)` registers with t.after().

export function newScope(t) {
  const scope = new Scope();
  if (t) t.after(() => scope.close());
  return scope;
}

export class Scope {
  constructor() {
    this.cleanups = [];
  }

  defer(fn) {
    this.cleanups.push(fn);
  }

  async fixture(extraArgs, env, options) {
    const fx = await startFixture(extraArgs, env, options);
    this.defer(() => fx.stop());
    return fx;
  }

  client(port, options) {
    const client = createClient(port, options);
    this.defer(() => client.close());
    return client;
  }

  async connectedClient(port, options, timeout = WAIT) {
    const client = this.client(port, options);
    await client.waitEvent('connect', {timeout});
    return client;
  }

  raw(port, options) {
    const raw = new RawClient(port, options);
    this.defer(() => raw.close());
    return raw;
  }

  async close() {
    const cleanups = this.cleanups.splice(0).reverse();
    const results = await Promise.allSettled(cleanups.map((fn) => fn()));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) throw failed[0].reason;
  }
}

// ---------------------------------------------------------------------------
// Event recording

// Records items pushed to it and lets tests wait for an item that matches a
// filter. Each wait consumes the item it returns: a later wait with the same
// filter gets the next matching item, while items that did not match stay
// available to other waits.
export class Recorder {
  constructor(label = 'items') {
    this.label = label;
    this.items = [];
    this.consumed = new Set();
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const waiter of [...this.waiters]) waiter();
  }

  // The first unconsumed item that matches `filter`, consumed.
  next({timeout = WAIT, filter = () => true, label} = {}) {
    const find = () => {
      for (let i = 0; i < this.items.length; i++) {
        if (!this.consumed.has(i) && filter(this.items[i])) {
          this.consumed.add(i);
          return {found: true, value: this.items[i]};
        }
      }
      return {found: false};
    };
    const first = find();
    if (first.found) return Promise.resolve(first.value);
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const r = find();
        if (r.found) {
          this.waiters.delete(waiter);
          clearTimeout(timer);
          resolve(r.value);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeout} ms waiting for ${label || this.label}`));
      }, timeout);
      this.waiters.add(waiter);
    });
  }

  // Waits until at least `n` items were recorded in total.
  async count(n, {timeout = WAIT, label} = {}) {
    await waitUntil(() => this.items.length >= n, {
      timeout, label: label || `${n} ${this.label} (have ${this.items.length})`,
    });
    return this.items.slice(0, n);
  }
}

// Consumes a consumable stream (receiver, procedure, channel, listener) from
// now on and records every item.
export function collect(stream, label = 'stream items') {
  const recorder = new Recorder(label);
  const consumer = stream.createConsumer();
  recorder.stop = () => consumer.return();
  (async () => {
    for (;;) {
      const {value, done} = await consumer.next();
      if (done) break;
      recorder.push(value);
    }
  })();
  return recorder;
}

// ---------------------------------------------------------------------------
// Official client

const CLIENT_EVENTS = [
  'connecting', 'connect', 'connectAbort', 'disconnect', 'close', 'error',
  'kickOut', 'subscribe', 'subscribeFail', 'subscribeRequest', 'unsubscribe',
  'authenticate', 'deauthenticate', 'authStateChange', 'removeAuthToken', 'raw',
];

export const FAST_RECONNECT = {initialDelay: 100, randomness: 50, multiplier: 1, maxDelay: 300};

// Creates an official client for 127.0.0.1:port that records its events.
// Returns a wrapper: `socket` is the AGClientSocket; `events` records
// {name, data, time} for the events above; `sent` records the frames the
// client writes; `waitEvent(name, opts)` waits for an event of a name;
// `close()` disconnects and releases everything.
export function createClient(port, options = {}) {
  const socket = scClient.create({
    hostname: '127.0.0.1',
    port,
    autoReconnect: true,
    autoReconnectOptions: {...FAST_RECONNECT},
    ...options,
  });
  const events = new Recorder('client events');
  // Every frame the client writes, as {text, time}: the transport of each
  // connection attempt is wrapped as soon as it exists (before it opens).
  const sent = new Recorder('sent frames');
  const hookTransport = () => {
    const transport = socket.transport;
    if (!transport || transport.__interopHooked) return;
    transport.__interopHooked = true;
    const send = transport.send.bind(transport);
    transport.send = (data) => {
      sent.push({text: typeof data === 'string' ? data : null, data, time: Date.now()});
      return send(data);
    };
  };
  hookTransport();
  for (const name of CLIENT_EVENTS) {
    const consumer = socket.listener(name).createConsumer();
    (async () => {
      for (;;) {
        const {value, done} = await consumer.next();
        if (done) break;
        if (name === 'connecting') hookTransport();
        events.push({name, data: value, time: Date.now()});
      }
    })();
  }

  const client = {
    socket,
    events,
    sent,
    // Parsed JSON packets the client sent (array frames are flattened).
    sentPackets() {
      const packets = [];
      for (const {text} of sent.items) {
        if (!text || !/^\s*[{[]/.test(text)) continue;
        let value;
        try { value = JSON.parse(text); } catch { continue; }
        packets.push(...(Array.isArray(value) ? value : [value]));
      }
      return packets;
    },
    all: (name) => events.items.filter((e) => e.name === name).map((e) => e.data),
    // Waits for the first event `name` whose data matches `filter` and that
    // no earlier wait returned.
    async waitEvent(name, {timeout = WAIT, filter = () => true} = {}) {
      const event = await events.next({
        timeout, filter: (e) => e.name === name && filter(e.data), label: `client event ${name}`,
      });
      return event.data;
    },
    async close() {
      socket.disconnect();
      socket.killAllListeners();
      socket.killAllReceivers();
      socket.killAllProcedures();
      socket.killAllChannels();
      const ws = socket.transport && socket.transport.socket;
      if (ws && ws.readyState !== WebSocket.CLOSED) {
        const done = new Promise((resolve) => ws.once('close', resolve));
        await Promise.race([done, sleep(1000)]);
        if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
      }
    },
  };
  return client;
}

// ---------------------------------------------------------------------------
// Raw WebSocket client

// A `ws` client that records every frame it receives ({type: 'text' |
// 'binary', text, json, time}) and how the connection closed. By default it
// answers protocol pings ("" text frames) with "" like the official client;
// pass {autoPong: false} to stay silent.
export class RawClient {
  constructor(port, {path: urlPath = '/socketcluster/', query = '', autoPong = true, wsOptions = {}} = {}) {
    this.url = `ws://127.0.0.1:${port}${urlPath}${query ? `?${query}` : ''}`;
    this.autoPong = autoPong;
    this.frames = new Recorder('frames');
    this.pings = 0;
    this.nextCid = 1;
    this.ws = new WebSocket(this.url, wsOptions);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode} instead of an upgrade`)));
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {}); // failures are seen through `closed`
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({code, reason: reason.toString(), time: Date.now()}));
    });
    this.ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (!isBinary && text === '') {
        this.pings++;
        if (this.autoPong && this.ws.readyState === WebSocket.OPEN) this.ws.send('');
      }
      let json;
      if (text !== null && /^[\s]*[{[]/.test(text)) {
        try { json = JSON.parse(text); } catch { json = undefined; }
      }
      this.frames.push({type: isBinary ? 'binary' : 'text', text, data, json, time: Date.now()});
    });
  }

  open(timeout = WAIT) {
    return withTimeout(this.opened, timeout, `WebSocket open ${this.url}`);
  }

  // Sends a string as is, or anything else as JSON text.
  send(packet) {
    this.ws.send(typeof packet === 'string' ? packet : JSON.stringify(packet));
  }

  sendBinary(buffer) {
    this.ws.send(buffer, {binary: true});
  }

  // Frames that parsed as JSON objects (not pings, not arrays).
  packets() {
    return this.frames.items.filter((f) => f.json && !Array.isArray(f.json)).map((f) => f.json);
  }

  nextFrame(filter = () => true, timeout = WAIT, label = 'frame') {
    return this.frames.next({filter, timeout, label});
  }

  // Waits for the next JSON packet for which `filter(packet)` is true.
  async nextPacket(filter = () => true, timeout = WAIT, label = 'packet') {
    const frame = await this.frames.next({
      filter: (f) => f.json && !Array.isArray(f.json) && filter(f.json), timeout, label,
    });
    return frame.json;
  }

  // The response packet with this rid.
  response(rid, timeout = WAIT) {
    return this.frames.next({
      filter: (f) => f.json && !Array.isArray(f.json) && Object.is(f.json.rid, rid) && typeof f.json.event !== 'string',
      timeout,
      label: `response rid ${rid}`,
    }).then((f) => f.json);
  }

  // Sends an invoke and resolves with the parsed response packet.
  async invoke(event, data, {cid, timeout = WAIT} = {}) {
    const id = cid ?? this.nextCid++;
    const packet = {event};
    if (data !== undefined) packet.data = data;
    packet.cid = id;
    this.send(packet);
    return this.response(id, timeout);
  }

  async handshake(authToken = null, timeout = WAIT) {
    await this.open(timeout);
    const response = await this.invoke('#handshake', {authToken}, {timeout});
    if (response.error) throw Object.assign(new Error('handshake failed'), {response});
    return response.data;
  }

  waitClose(timeout = WAIT) {
    return withTimeout(this.closed, timeout, `close of ${this.url}`);
  }

  isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  async close() {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    else this.ws.terminate();
    await Promise.race([this.closed, sleep(1000)]);
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}
