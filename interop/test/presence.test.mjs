// Presence (the scserver gateway, docs/gateway.md): the official client
// watches #presence:<channel> and sees other clients join and leave, reads
// the channel's presence with the "presence" procedure, and may not publish
// fake events; the HTTP API agrees. A feature of the scserver binary
// (bin/scserver, or SC_SERVER), so it is skipped against the reference.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {projectDir, fixtureCommand, newScope, waitUntil, collect} from './lib/fixture.mjs';
import {validToken} from './lib/jwt.mjs';

const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));
const serverBinary = () => process.env.SC_SERVER || path.join(projectDir, 'bin', 'scserver');
const AUTH_KEY = 'presence-interop-key';
const API_KEY = 'presence-interop-api-key';

async function startServer(args) {
  const bin = serverBinary();
  assert.ok(fs.existsSync(bin), `${bin} is missing: go build -o bin/scserver ./cmd/scserver (or set SC_SERVER)`);
  const proc = spawn(bin, ['-addr', '127.0.0.1:0', ...args], {stdio: ['ignore', 'pipe', 'pipe']});
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { out += c; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const port = await waitUntil(() => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
    return m && Number(m[1]);
  }, {timeout: 20000, label: `scserver to listen\n${out}`});
  return {port, stop: async () => { if (proc.exitCode === null) proc.kill('SIGKILL'); await exited; }};
}

async function api(port, method, params) {
  const res = await fetch(`http://127.0.0.1:${port}/api/${method}`, {
    method: 'POST', headers: {'X-API-Key': API_KEY}, body: JSON.stringify(params),
  });
  return {status: res.status, body: await res.json()};
}

test('presence: join and leave events, the presence procedure, the API', {timeout: 60000}, async (t) => {
  if (isReference()) { t.skip('presence is a feature of the scserver binary'); return; }
  const scope = newScope(t);
  const server = await startServer(['-auth-key', AUTH_KEY, '-api-key', API_KEY, '-presence', 'room*', '-drain-delay', '0', '-demo=false']);
  scope.defer(() => server.stop());

  const watcher = await scope.connectedClient(server.port, {autoReconnect: false});
  const companion = watcher.socket.subscribe('#presence:room1');
  const events = collect(companion, 'presence events');
  await waitUntil(() => watcher.socket.isSubscribed('#presence:room1'), {label: 'subscription to #presence:room1'});

  const alice = await scope.connectedClient(server.port, {autoReconnect: false});
  await alice.socket.authenticate(validToken({sub: 'alice', info: {color: 'red'}}, 3600, {key: AUTH_KEY}));
  const room = alice.socket.subscribe('room1');
  await waitUntil(() => alice.socket.isSubscribed('room1'), {label: 'alice in room1'});

  const join = await events.next({label: 'join event'});
  assert.deepEqual(join, {type: 'join', channel: 'room1', socketId: alice.socket.id, user: 'alice', info: {color: 'red'}});

  const answer = await watcher.socket.invoke('presence', {channel: 'room1'});
  assert.equal(answer.channel, 'room1');
  assert.equal(answer.count, 1);
  assert.equal(answer.users, 1);
  assert.equal(answer.clients[0].socketId, alice.socket.id);
  assert.equal(answer.clients[0].user, 'alice');

  const viaAPI = await api(server.port, 'presence', {channel: 'room1'});
  assert.equal(viaAPI.status, 200);
  assert.equal(viaAPI.body.result.count, 1);

  // Only the server speaks on companion channels; untracked channels have none.
  await assert.rejects(watcher.socket.invokePublish('#presence:room1', {type: 'join', user: 'mallory'}), {name: 'PresenceError'});
  await assert.rejects(watcher.socket.invoke('presence', {channel: 'elsewhere'}), {name: 'PresenceError'});

  room.unsubscribe();
  const leave = await events.next({label: 'leave event'});
  assert.equal(leave.type, 'leave');
  assert.equal(leave.socketId, alice.socket.id);
  assert.equal(leave.user, 'alice');

  // Disconnecting leaves too.
  const bob = await scope.connectedClient(server.port, {autoReconnect: false});
  bob.socket.subscribe('room1');
  const bobJoin = await events.next({label: 'bob join'});
  assert.equal(bobJoin.socketId, bob.socket.id);
  bob.socket.disconnect();
  const bobLeave = await events.next({label: 'bob leave'});
  assert.deepEqual([bobLeave.type, bobLeave.socketId], ['leave', bobJoin.socketId]);
  assert.equal((await watcher.socket.invoke('presence', 'room1')).count, 0);
});
