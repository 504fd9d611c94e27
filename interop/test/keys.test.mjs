// RS256 and ES256 key pairs, through the fixture's SC_AUTH_ALGORITHM,
// SC_AUTH_PRIVATE_KEY_FILE and SC_AUTH_PUBLIC_KEY_FILE (an extension of
// this project's fixture beyond docs/interop-fixture.md; the reference fixture has no
// such settings, so these tests are skipped against it).

import {test, describe} from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {newScope, waitUntil, fixtureCommand} from './lib/fixture.mjs';
import {b64url, nowSeconds, signToken} from './lib/jwt.mjs';

const T = {timeout: 20000};
const isReference = () => fixtureCommand().some((part) => part.includes('reference-fixture'));

function keyPair(kind) {
  const opts = kind === 'rsa' ? {modulusLength: 2048} : {namedCurve: 'P-256'};
  return crypto.generateKeyPairSync(kind, {
    ...opts,
    publicKeyEncoding: {type: 'spki', format: 'pem'},
    privateKeyEncoding: {type: 'pkcs8', format: 'pem'},
  });
}

function signWith(alg, privateKey, payload) {
  const head = b64url(JSON.stringify({alg, typ: 'JWT'}));
  const body = b64url(JSON.stringify(payload));
  const input = `${head}.${body}`;
  const sig = alg.startsWith('ES')
    ? crypto.sign('sha256', Buffer.from(input), {key: privateKey, dsaEncoding: 'ieee-p1363'})
    : crypto.sign('sha256', Buffer.from(input), privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

function verifyWith(alg, publicKey, token) {
  const [head, body, sig] = token.split('.');
  return crypto.verify('sha256', Buffer.from(`${head}.${body}`), alg.startsWith('ES')
    ? {key: publicKey, dsaEncoding: 'ieee-p1363'} : publicKey, Buffer.from(sig, 'base64url'));
}

for (const [alg, kind] of [['RS256', 'rsa'], ['ES256', 'ec']]) {
  describe(`${alg} key pair`, () => {
    test(`login issues an ${alg} token that verifies with the public key; tokens signed with the private key are accepted; HS256 with the public key as secret is refused`, T, async (t) => {
      if (isReference()) { t.skip('key pairs are a Go fixture extension'); return; }
      const {publicKey, privateKey} = keyPair(kind);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-keys-'));
      t.after(() => fs.rmSync(dir, {recursive: true, force: true}));
      fs.writeFileSync(path.join(dir, 'priv.pem'), privateKey);
      fs.writeFileSync(path.join(dir, 'pub.pem'), publicKey);
      const scope = newScope(t);
      const fx = await scope.fixture([], {
        SC_AUTH_ALGORITHM: alg,
        SC_AUTH_PRIVATE_KEY_FILE: path.join(dir, 'priv.pem'),
        SC_AUTH_PUBLIC_KEY_FILE: path.join(dir, 'pub.pem'),
      });

      const client = await scope.connectedClient(fx.port);
      assert.equal(await client.socket.invoke('login', {username: 'kim'}), 'ok');
      await waitUntil(() => client.socket.authState === 'authenticated', {label: 'authenticated'});
      const token = client.socket.signedAuthToken;
      const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
      assert.equal(header.alg, alg);
      assert.ok(verifyWith(alg, publicKey, token), 'the token verifies with the public key');
      assert.equal((await client.socket.invoke('whoami')).username, 'kim');

      // A token the test signs with the private key is accepted.
      const own = signWith(alg, privateKey, {username: 'lee', iat: nowSeconds(), exp: nowSeconds() + 600});
      const other = await scope.connectedClient(fx.port);
      const status = await other.socket.authenticate(own);
      assert.equal(status.isAuthenticated, true);
      assert.equal((await other.socket.invoke('whoami')).username, 'lee');

      // Algorithm confusion: an HS256 token keyed with the public key PEM.
      const forged = signToken({username: 'mallory', iat: nowSeconds(), exp: nowSeconds() + 600}, {key: publicKey});
      const third = await scope.connectedClient(fx.port);
      await assert.rejects(third.socket.authenticate(forged), (err) => err.name === 'AuthTokenInvalidError');
      assert.equal(await third.socket.invoke('whoami'), null);
    });
  });
}
