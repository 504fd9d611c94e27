// Test harness: starts the processes of an SCC cluster (ours from ../bin,
// Node's from node_modules), waits for them, and stops them.
import {spawn} from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import socketClusterClient from 'socketcluster-client';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..');
export const bin = process.env.SCC_BIN || path.resolve(root, '..', 'bin');
export const AUTH_KEY = 'interop-secret';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// freePort finds a port nobody listens on. It is taken below the kernel's
// range of ephemeral ports (32768-60999 on Linux) so that no outgoing
// connection is given it before our process binds it; another program
// may still take it meanwhile, so start() tries again on a new port when
// a process exits before it is up.
export async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, () => s.close(() => resolve(true))); // every address, as the brokers bind
    });
    if (ok) return port;
  }
}

// waitFor polls fn until it returns a truthy value (generous bound: CI is
// a busy machine; nothing asserts speed).
export async function waitFor(what, fn, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await sleep(100);
  }
}

async function get(port, urlPath) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return {status: res.status, text: await res.text()};
}

const procs = new Set();
// every process started since the last stopAll, stopped or not (for
// diagnostics)
const started = [];

// Proc is a started process; stop() ends it (SIGTERM, then SIGKILL).
class Proc {
  constructor(name, cmd, args, env) {
    this.name = name;
    this.output = '';
    this.child = spawn(cmd, args, {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']});
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
    for (const s of [this.child.stdout, this.child.stderr]) {
      s.on('data', (d) => {
        this.output += d;
        if (this.output.length > 200000) this.output = this.output.slice(-100000);
      });
    }
    procs.add(this);
    started.push(this);
  }

  async stop() {
    procs.delete(this);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }

  // kill ends the process at once, as a crash.
  async kill() {
    procs.delete(this);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export async function stopAll() {
  await Promise.all([...procs].map((p) => p.stop()));
  started.length = 0;
}

// start starts a process on a free port (make(port) spawns it) and waits
// until it answers 200 on urlPath. A process that exits first (another
// program took the port meanwhile) is started again on another port, at
// most three times.
async function start(make, urlPath) {
  const failures = [];
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const p = make(port);
    p.port = port;
    let died = false;
    const exited = p.exited.then(() => {
      died = true;
      throw new Error(`${p.name} on port ${port} exited (${p.child.exitCode ?? p.child.signalCode}) before it was up: ${p.output}`);
    });
    exited.catch(() => {}); // a later exit is the test's business
    try {
      await Promise.race([exited, waitFor(`${p.name} on port ${port}`, async () => died || (await get(port, urlPath)).status === 200)]);
      return p;
    } catch (err) {
      const retry = died && attempt < 3; // not when it hung
      await p.kill();
      failures.push(err.message);
      if (!retry) throw new Error(failures.join('\n'));
    }
  }
}

export const delays = {startup: 300, scaleOut: 300, scaleBack: 300, retry: 500};

// goState starts our scc-state; its port is .port, as for every process.
export async function goState(opts = {}) {
  return start((port) => new Proc('scc-state (Go)', path.join(bin, 'scc-state'), [
    '-host', '127.0.0.1', '-port', String(port), '-auth-key', opts.authKey ?? AUTH_KEY,
    '-startup-delay', String(delays.startup), '-scale-out-delay', String(delays.scaleOut),
    '-scale-back-delay', String(delays.scaleBack), '-retry-delay', String(delays.retry), '-log-level', '2',
  ]), '/health-check');
}

export async function goBroker(statePort) {
  return start((port) => new Proc('scc-broker (Go)', path.join(bin, 'scc-broker'), [
    '-port', String(port), '-state-host', '127.0.0.1', '-state-port', String(statePort),
    '-auth-key', AUTH_KEY, '-retry-delay', String(delays.retry), '-log-level', '2',
  ]), '/health-check');
}

export async function nodeBroker(statePort) {
  return start((port) => new Proc('scc-broker (Node)', process.execPath, [path.join(root, 'node_modules', 'scc-broker', 'server.js')], {
    SCC_STATE_SERVER_HOST: '127.0.0.1', SCC_STATE_SERVER_PORT: String(statePort), SCC_BROKER_SERVER_PORT: String(port),
    SCC_AUTH_KEY: AUTH_KEY, SCC_BROKER_SERVER_RETRY_DELAY: String(delays.retry), SCC_BROKER_SERVER_LOG_LEVEL: '1',
  }), '/health-check');
}

// A worker's status: {brokers: n, unconfirmed: n, joined: bool}.
export async function nodeWorker(statePort, env = {}) {
  const p = await start((port) => new Proc('worker (Node)', process.execPath, [path.join(root, 'lib', 'node-worker.cjs')], {
    SOCKETCLUSTER_PORT: String(port), SCC_STATE_SERVER_HOST: '127.0.0.1', SCC_STATE_SERVER_PORT: String(statePort),
    SCC_AUTH_KEY: AUTH_KEY, SCC_BROKER_RETRY_DELAY: String(delays.retry), ...env,
  }), '/scc-status');
  p.kind = 'node';
  p.status = async () => {
    const s = JSON.parse((await get(p.port, '/scc-status')).text);
    return {brokers: s.brokers.length, uris: s.brokers, unconfirmed: s.unconfirmed, joined: s.ready};
  };
  return p;
}

export async function goWorker(statePort, query = '') {
  const p = await start((port) => new Proc('worker (Go)', path.join(bin, 'scserver'), [
    '-addr', `127.0.0.1:${port}`, '-log-level', 'warn', '-auth-key', 'jwt-secret-of-the-workers', '-demo=false',
    '-broker', `scc://127.0.0.1:${statePort}?authKey=${AUTH_KEY}&retryDelay=${delays.retry}${query}`,
  ]), '/healthz');
  p.kind = 'go';
  p.status = async () => {
    const text = (await get(p.port, '/metrics')).text;
    const metric = (name) => {
      const m = text.match(new RegExp(`^socketcluster_scc_${name} (\\S+)$`, 'm'));
      return m ? Number(m[1]) : NaN;
    };
    return {brokers: metric('brokers'), unconfirmed: metric('unconfirmed_channels'), joined: metric('joined') === 1};
  };
  return p;
}

// settled waits until every worker knows the brokers and has every
// channel confirmed.
export async function settled(workers, brokers) {
  for (const w of workers) {
    await waitFor(`${w.name}:${w.port} with ${brokers} brokers and every channel confirmed`, async () => {
      const s = await w.status();
      return s.joined && s.brokers === brokers && s.unconfirmed === 0;
    });
  }
}

// connect opens an official client on a worker.
export async function connect(port) {
  const socket = socketClusterClient.create({hostname: '127.0.0.1', port, autoReconnect: false, ackTimeout: 20000});
  await waitFor(`client connected to ${port}`, () => socket.state === socket.OPEN, 30000);
  return socket;
}

// subscriber subscribes to channels and records, per channel, every
// message {p, i} received (got) and when (at, Date.now()). worker, when
// given, names the subscriber's worker in failure messages.
export async function subscriber(port, channels, worker) {
  const socket = await connect(port);
  const got = new Map(channels.map((c) => [c, []]));
  const at = new Map(channels.map((c) => [c, []]));
  await Promise.all(channels.map(async (name) => {
    const ch = socket.subscribe(name);
    (async () => {
      for await (const data of ch) {
        got.get(name).push(data);
        at.get(name).push(Date.now());
      }
    })();
    await ch.listener('subscribe').once();
  }));
  const name = worker ? `${worker.name}:${port}` : `worker :${port}`;
  return {socket, got, at, port, name, count: () => [...got.values()].reduce((n, l) => n + l.length, 0)};
}

// ranges writes a sequence of numbers compactly, in received order:
// 0-11,13,12,14-24.
export function ranges(seq) {
  const out = [];
  for (let k = 0; k < seq.length;) {
    let j = k;
    while (j + 1 < seq.length && seq[j + 1] === seq[j] + 1) j++;
    out.push(j === k ? String(seq[k]) : `${seq[k]}-${seq[j]}`);
    k = j + 1;
  }
  return out.join(',');
}

// Timeline records what a test did and when, so that a failure can say
// in which phase a message arrived.
export class Timeline {
  constructor() {
    this.start = Date.now();
    this.marks = [];
  }

  mark(what) {
    this.marks.push([Date.now(), what]);
  }

  // phase names the last mark at or before t.
  phase(t) {
    let last = 'start';
    for (const [when, what] of this.marks) if (when <= t) last = what;
    return `+${t - this.start} ms, after "${last}"`;
  }

  toString() {
    return this.marks.map(([when, what]) => `  +${when - this.start} ms ${what}`).join('\n');
  }
}

// diagnostics gathers, for a failure message, every process's state:
// each Go worker's socketcluster_scc_ metrics, each Node worker's
// /scc-status, and the tail of every process's output.
export async function diagnostics() {
  const lines = [];
  for (const p of started) {
    lines.push(`--- ${p.name} port ${p.port ?? '?'} pid ${p.child.pid} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'})`);
    try {
      if (p.kind === 'go') {
        const text = (await get(p.port, '/metrics')).text;
        lines.push(...text.split('\n').filter((l) => /^socketcluster_(scc_|broker)/.test(l)));
      } else if (p.kind === 'node') {
        lines.push((await get(p.port, '/scc-status')).text);
      }
    } catch (err) {
      lines.push(`(status unavailable: ${err.message})`);
    }
    if (p.output) lines.push(p.output.slice(-3000));
  }
  return lines.join('\n');
}
