// Authentication: the login/logout/whoami procedures, tokens presented in the
// handshake and with #authenticate, bad tokens, expiry, and the auth key.

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {newScope, startFixture, sleep} from './lib/fixture.mjs';
import {
  AUTH_KEY, signToken, validToken, tamper, decodePayload, verifySignature, nowSeconds,
} from './lib/jwt.mjs';

const T = {timeout: 15000};
const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
const iso = (seconds) => new Date(seconds * 1000).toISOString();

let main;
before(async () => { main = await startFixture([]); });
after(async () => { if (main) await main.stop(); });

// An official client whose token store already holds `token` when it
// connects (as after a page reload).
async function clientWithStoredToken(scope, port, token, options = {}) {
  const client = scope.client(port, {autoConnect: false, ...options});
  await client.socket.auth.saveToken(client.socket.authTokenName, token, {});
  client.socket.connect();
  return client;
}

async function rawClient(scope, port = main.port) {
  const raw = scope.raw(port);
  await raw.handshake();
  return raw;
}

// The tokens the fixture must refuse, with the authError the reference gives.
function badTokens() {
  const now = nowSeconds();
  const expiredExp = now - 10;
  return [
    {label: 'tampered payload', token: tamper(validToken({username: 'bob'}), {username: 'admin'}),
      authError: {message: 'invalid signature', name: 'AuthTokenInvalidError', isBadToken: true}},
    {label: 'expired', token: signToken({username: 'bob', iat: now - 100, exp: expiredExp}),
      authError: {message: 'jwt expired', name: 'AuthTokenExpiredError', expiry: iso(expiredExp), isBadToken: true}},
    {label: 'signed with another key', token: validToken({username: 'bob'}, 3600, {key: 'not-the-key'}),
      authError: {message: 'invalid signature', name: 'AuthTokenInvalidError', isBadToken: true}},
    {label: 'malformed', token: 'garbage',
      authError: {message: 'jwt malformed', name: 'AuthTokenInvalidError', isBadToken: true}},
    {label: 'two parts only', token: 'abc.def',
      authError: {message: 'jwt malformed', name: 'AuthTokenInvalidError', isBadToken: true}},
    {label: 'alg none', token: signToken({username: 'bob', iat: now}, {alg: 'none'}),
      authError: {message: 'jwt signature is required', name: 'AuthTokenInvalidError', isBadToken: true}},
    {label: 'HS512 (only HS256 is accepted)', token: validToken({username: 'bob'}, 3600, {alg: 'HS512'}),
      authError: {message: 'invalid algorithm', name: 'AuthTokenInvalidError', isBadToken: true}},
    {label: 'not a string (number)', token: 12345,
      authError: {message: 'Invalid token format - Token must be a string', name: 'AuthTokenError', isBadToken: true}},
    {label: 'not a string (object)', token: {username: 'bob'},
      authError: {message: 'Invalid token format - Token must be a string', name: 'AuthTokenError', isBadToken: true}},
  ];
}

// ---------------------------------------------------------------------------

describe('login, whoami, logout', () => {
  test('login sets an HS256 token {username, iat, exp=iat+86400} signed with the auth key', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const before = nowSeconds();
    assert.equal(await client.socket.invoke('login', {username: 'alice'}), 'ok');
    const event = await client.waitEvent('authenticate');
    assert.equal(client.socket.authState, 'authenticated');
    const signed = event.signedAuthToken;
    assert.equal(typeof signed, 'string');
    assert.deepEqual(JSON.parse(Buffer.from(signed.split('.')[0], 'base64url')), {alg: 'HS256', typ: 'JWT'});
    assert.ok(verifySignature(signed, AUTH_KEY), 'token not signed with the auth key');
    const payload = decodePayload(signed);
    assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'username']);
    assert.equal(payload.username, 'alice');
    assert.ok(payload.iat >= before - 1 && payload.iat <= nowSeconds() + 1, `iat ${payload.iat}`);
    assert.equal(payload.exp - payload.iat, 86400);
    assert.deepEqual(client.socket.authToken, payload);
    assert.deepEqual(await client.socket.invoke('whoami'), payload);
  });

  test('login copies data.extra fields into the token; username comes from data.username', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await client.socket.invoke('login', {username: 'carol', extra: {role: 'admin', n: 1, nested: {a: [1]}, username: 'mallory'}});
    await client.waitEvent('authenticate');
    const me = await client.socket.invoke('whoami');
    assert.equal(me.username, 'carol');
    assert.equal(me.role, 'admin');
    assert.equal(me.n, 1);
    assert.deepEqual(me.nested, {a: [1]});
    assert.deepEqual(client.socket.authToken, me);
  });

  test('login without a non-empty string username fails with LoginError', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    for (const data of [undefined, null, 'alice', {}, {username: ''}, {username: 5}, {name: 'alice'}]) {
      await assert.rejects(client.socket.invoke('login', data), {name: 'LoginError'}, JSON.stringify(data));
    }
    assert.equal(client.socket.authState, 'unauthenticated');
    assert.equal(await client.socket.invoke('whoami'), null);
  });

  test('raw: login answers "ok" and sends {"event":"#setAuthToken","data":{"token"}} without cid', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    raw.send({event: 'login', data: {username: 'dave'}, cid: 2});
    assert.deepEqual(await raw.response(2), {rid: 2, data: 'ok'});
    const set = await raw.nextPacket((p) => p.event === '#setAuthToken');
    assert.deepEqual(Object.keys(set).sort(), ['data', 'event']);
    assert.deepEqual(Object.keys(set.data), ['token']);
    assert.equal(decodePayload(set.data.token).username, 'dave');
    const me = await raw.invoke('whoami', undefined, {cid: 3});
    assert.deepEqual(me.data, decodePayload(set.data.token));
  });

  test('logout: "ok", the client gets #removeAuthToken and whoami is null again', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await client.socket.invoke('login', {username: 'erin'});
    await client.waitEvent('authenticate');
    assert.equal(await client.socket.invoke('logout'), 'ok');
    await client.waitEvent('removeAuthToken');
    await client.waitEvent('deauthenticate');
    assert.equal(client.socket.authState, 'unauthenticated');
    assert.equal(client.socket.authToken, null);
    assert.equal(await client.socket.auth.loadToken(client.socket.authTokenName), null);
    assert.equal(await client.socket.invoke('whoami'), null);
  });

  test('raw: logout sends {"event":"#removeAuthToken"} (even when not logged in)', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    await raw.invoke('login', {username: 'frank'});
    await raw.nextPacket((p) => p.event === '#setAuthToken');
    assert.deepEqual((await raw.invoke('logout')).data, 'ok');
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#removeAuthToken'), {event: '#removeAuthToken'});
    assert.equal((await raw.invoke('whoami')).data, null);
    assert.deepEqual((await raw.invoke('logout')).data, 'ok');
    assert.deepEqual(await raw.nextPacket((p) => p.event === '#removeAuthToken'), {event: '#removeAuthToken'});
  });

  test('client deauthenticate() drops the token on the server too, with no answer', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await client.socket.invoke('login', {username: 'gina'});
    await client.waitEvent('authenticate');
    await client.socket.deauthenticate();
    assert.ok(client.sentPackets().some((p) => p.event === '#removeAuthToken' && !('cid' in p)));
    assert.equal(await client.socket.invoke('whoami'), null);
  });

  test('the token survives a reconnect: the new handshake is authenticated', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await client.socket.invoke('login', {username: 'hank'});
    const {signedAuthToken} = await client.waitEvent('authenticate');
    await client.socket.invoke('disconnectMe', {code: 4000});
    await client.waitEvent('disconnect');
    const status = await client.waitEvent('connect');
    assert.equal(status.isAuthenticated, true);
    assert.equal(status.authError, undefined);
    const handshakes = client.sentPackets().filter((p) => p.event === '#handshake');
    assert.equal(handshakes.length, 2);
    assert.deepEqual(handshakes[1].data, {authToken: signedAuthToken});
    assert.equal((await client.socket.invoke('whoami')).username, 'hank');
  });
});

// ---------------------------------------------------------------------------

describe('tokens in the handshake', () => {
  test('a token signed by the test with the auth key is accepted', T, async (t) => {
    const scope = newScope(t);
    const token = validToken({username: 'ivy', custom: {x: 1}});
    const client = await clientWithStoredToken(scope, main.port, token);
    const status = await client.waitEvent('connect');
    assert.equal(status.isAuthenticated, true);
    assert.equal(status.authError, undefined);
    assert.equal(client.socket.authState, 'authenticated');
    assert.deepEqual(await client.socket.invoke('whoami'), decodePayload(token));
  });

  test('raw: {"isAuthenticated":true} and no authError for a good token (also without exp)', T, async (t) => {
    const scope = newScope(t);
    for (const token of [validToken({username: 'jay'}), signToken({username: 'kim'})]) {
      const raw = scope.raw(main.port);
      const status = await raw.handshake(token);
      assert.deepEqual(Object.keys(status).sort(), ['id', 'isAuthenticated', 'pingTimeout']);
      assert.equal(status.isAuthenticated, true);
      assert.deepEqual((await raw.invoke('whoami')).data, decodePayload(token));
      await sleep(50);
      assert.equal(raw.packets().filter((p) => p.event === '#removeAuthToken').length, 0);
    }
  });

  test('raw: an empty-string token counts as no token (no authError)', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    const status = await raw.handshake('');
    assert.equal(status.isAuthenticated, false);
    assert.equal(hasOwn(status, 'authError'), false);
  });

  for (const bad of badTokens()) {
    test(`raw: ${bad.label} token → authError, isAuthenticated false, then #removeAuthToken`, T, async (t) => {
      const scope = newScope(t);
      const raw = scope.raw(main.port);
      await raw.open();
      raw.send({event: '#handshake', data: {authToken: bad.token}, cid: 1});
      const response = await raw.response(1);
      assert.equal(response.error, undefined);
      assert.equal(response.data.isAuthenticated, false);
      assert.deepEqual(response.data.authError, bad.authError);
      assert.deepEqual(await raw.nextPacket((p) => p.event === '#removeAuthToken'), {event: '#removeAuthToken'});
      assert.equal((await raw.invoke('whoami', undefined, {cid: 2})).data, null);
      assert.ok(raw.isOpen());
    });
  }

  test('raw: a not-yet-valid token (nbf) → AuthTokenNotBeforeError, isBadToken false, no #removeAuthToken', T, async (t) => {
    const scope = newScope(t);
    const nbf = nowSeconds() + 100;
    const raw = scope.raw(main.port);
    const status = await raw.handshake(signToken({username: 'lee', iat: nowSeconds(), nbf}));
    assert.equal(status.isAuthenticated, false);
    assert.deepEqual(status.authError, {message: 'jwt not active', name: 'AuthTokenNotBeforeError', date: iso(nbf), isBadToken: false});
    assert.equal((await raw.invoke('whoami')).data, null);
    await sleep(100);
    assert.equal(raw.packets().filter((p) => p.event === '#removeAuthToken').length, 0);
  });

  test('official client with a bad stored token: authError in connect, token removed from its store', T, async (t) => {
    const scope = newScope(t);
    const token = tamper(validToken({username: 'mo'}), {username: 'root'});
    const client = await clientWithStoredToken(scope, main.port, token);
    const status = await client.waitEvent('connect');
    assert.equal(status.isAuthenticated, false);
    assert.ok(status.authError instanceof Error);
    assert.equal(status.authError.name, 'AuthTokenInvalidError');
    assert.equal(status.authError.isBadToken, true);
    const removed = await client.waitEvent('removeAuthToken');
    assert.equal(removed.oldAuthToken, token);
    assert.equal(await client.socket.auth.loadToken(client.socket.authTokenName), null);
    assert.equal(client.socket.authState, 'unauthenticated');
  });

  test('official client with an expired stored token reconnects anonymously', T, async (t) => {
    const scope = newScope(t);
    const token = signToken({username: 'ned', iat: nowSeconds() - 100, exp: nowSeconds() - 50});
    const client = await clientWithStoredToken(scope, main.port, token);
    const status = await client.waitEvent('connect');
    assert.equal(status.authError.name, 'AuthTokenExpiredError');
    await client.waitEvent('removeAuthToken');
    assert.equal(await client.socket.invoke('whoami'), null);
  });
});

// ---------------------------------------------------------------------------

describe('#authenticate mid-session', () => {
  test('official client authenticate(good token) → {isAuthenticated:true, authError:null}', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const token = validToken({username: 'olga'});
    const status = await client.socket.authenticate(token);
    assert.equal(status.isAuthenticated, true);
    assert.equal(status.authError, null);
    assert.equal(client.socket.authState, 'authenticated');
    assert.deepEqual(await client.socket.invoke('whoami'), decodePayload(token));
  });

  test('raw: good token → {"rid":N,"data":{"isAuthenticated":true,"authError":null}}', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    const token = validToken({username: 'pia'});
    assert.deepEqual(await raw.invoke('#authenticate', token, {cid: 5}), {rid: 5, data: {isAuthenticated: true, authError: null}});
    assert.deepEqual((await raw.invoke('whoami')).data, decodePayload(token));
    // A second, different good token replaces the first.
    const other = validToken({username: 'pia2'});
    assert.deepEqual((await raw.invoke('#authenticate', other)).data, {isAuthenticated: true, authError: null});
    assert.equal((await raw.invoke('whoami')).data.username, 'pia2');
  });

  for (const bad of badTokens()) {
    test(`raw: ${bad.label} token → error response, #removeAuthToken, socket deauthenticated`, T, async (t) => {
      const scope = newScope(t);
      const good = validToken({username: 'quinn'});
      const raw = scope.raw(main.port);
      assert.equal((await raw.handshake(good)).isAuthenticated, true);
      const response = await raw.invoke('#authenticate', bad.token, {cid: 8});
      assert.equal(hasOwn(response, 'data'), false);
      assert.deepEqual(response.error, bad.authError);
      assert.deepEqual(await raw.nextPacket((p) => p.event === '#removeAuthToken'), {event: '#removeAuthToken'});
      assert.equal((await raw.invoke('whoami', undefined, {cid: 9})).data, null);
    });
  }

  test('raw: #authenticate with null or no data → AuthTokenInvalidError "jwt must be provided"', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    for (const data of [null, undefined]) {
      const response = await raw.invoke('#authenticate', data);
      assert.deepEqual(response.error, {message: 'jwt must be provided', name: 'AuthTokenInvalidError', isBadToken: true});
      await raw.nextPacket((p) => p.event === '#removeAuthToken');
    }
  });

  test('raw: a not-yet-valid token → data {isAuthenticated:false, authError}, no #removeAuthToken', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    const nbf = nowSeconds() + 100;
    const response = await raw.invoke('#authenticate', signToken({username: 'rex', iat: nowSeconds(), nbf}));
    assert.deepEqual(response.data, {
      isAuthenticated: false,
      authError: {message: 'jwt not active', name: 'AuthTokenNotBeforeError', date: iso(nbf), isBadToken: false},
    });
    await sleep(100);
    assert.equal(raw.packets().filter((p) => p.event === '#removeAuthToken').length, 0);
  });

  test('official client authenticate(bad token) rejects with the error and becomes unauthenticated', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await client.socket.authenticate(validToken({username: 'sam'}));
    await assert.rejects(client.socket.authenticate('not.a.jwt'), {name: 'AuthTokenInvalidError'});
    assert.equal(client.socket.authState, 'unauthenticated');
    assert.equal(await client.socket.invoke('whoami'), null);
  });

  test('raw: #authenticate without a cid → close 4008', T, async (t) => {
    const scope = newScope(t);
    const raw = await rawClient(scope);
    raw.send({event: '#authenticate', data: validToken({username: 'tom'})});
    const closed = await raw.waitClose();
    assert.equal(closed.code, 4008);
    assert.equal(closed.reason, '');
  });

  test('raw: #removeAuthToken from the client drops the token and is not answered', T, async (t) => {
    const scope = newScope(t);
    const raw = scope.raw(main.port);
    await raw.handshake(validToken({username: 'uma'}));
    raw.send({event: '#removeAuthToken', cid: 40});
    assert.equal((await raw.invoke('whoami', undefined, {cid: 41})).data, null);
    await sleep(100);
    assert.equal(raw.packets().filter((p) => p.rid === 40).length, 0);
  });
});

// ---------------------------------------------------------------------------

describe('expiry mid-session', () => {
  // A token that expires 1–2 s from now (JWT times are whole seconds).
  const shortToken = (username) => {
    const iat = nowSeconds();
    return {token: signToken({username, iat, exp: iat + 2}), expiresAt: (iat + 2) * 1000};
  };

  test('an expired token is dropped at the next message: #removeAuthToken, whoami null', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    const {token, expiresAt} = shortToken('val');
    assert.equal((await client.socket.authenticate(token)).isAuthenticated, true);
    assert.equal((await client.socket.invoke('whoami')).username, 'val');
    await sleep(expiresAt - Date.now() + 300);
    // The event that notices the expiry is still processed, unauthenticated.
    assert.equal(await client.socket.invoke('whoami'), null);
    await client.waitEvent('removeAuthToken');
    assert.equal(client.socket.authState, 'unauthenticated');
    assert.equal(client.socket.state, 'open');
  });

  test('an idle socket with an expired token is dropped at the next pong', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture(['-ping-interval', '200', '-ping-timeout', '2000']);
    const {token, expiresAt} = shortToken('wes');
    const client = await clientWithStoredToken(scope, fx.port, token);
    assert.equal((await client.waitEvent('connect')).isAuthenticated, true);
    const removed = await client.waitEvent('removeAuthToken');
    assert.equal(removed.oldAuthToken, token);
    assert.ok(Date.now() >= expiresAt, 'token dropped before it expired');
    assert.equal(client.socket.authState, 'unauthenticated');
    assert.equal(await client.socket.invoke('whoami'), null);
  });
});

// ---------------------------------------------------------------------------

describe('the auth key', () => {
  test('-auth-key changes the signing and verification key', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture(['-auth-key', 'flag-key']);
    const raw = scope.raw(fx.port);
    assert.equal((await raw.handshake(validToken({username: 'x'}, 3600, {key: 'flag-key'}))).isAuthenticated, true);
    const refused = scope.raw(fx.port);
    const status = await refused.handshake(validToken({username: 'x'}, 3600, {key: AUTH_KEY}));
    assert.equal(status.authError.message, 'invalid signature');
    const client = await scope.connectedClient(fx.port);
    await client.socket.invoke('login', {username: 'y'});
    const {signedAuthToken} = await client.waitEvent('authenticate');
    assert.ok(verifySignature(signedAuthToken, 'flag-key'));
  });

  test('SC_AUTH_KEY sets the key when no flag is given', T, async (t) => {
    const scope = newScope(t);
    const fx = await scope.fixture([], {SC_AUTH_KEY: 'env-key'});
    const raw = scope.raw(fx.port);
    assert.equal((await raw.handshake(validToken({username: 'x'}, 3600, {key: 'env-key'}))).isAuthenticated, true);
    const client = await scope.connectedClient(fx.port);
    await client.socket.invoke('login', {username: 'z'});
    const {signedAuthToken} = await client.waitEvent('authenticate');
    assert.ok(verifySignature(signedAuthToken, 'env-key'));
  });

  test('tokens issued by one fixture are accepted by another with the same key', T, async (t) => {
    const scope = newScope(t);
    const client = await scope.connectedClient(main.port);
    await client.socket.invoke('login', {username: 'shared'});
    const {signedAuthToken} = await client.waitEvent('authenticate');
    const fx = await scope.fixture([]);
    const raw = scope.raw(fx.port);
    assert.equal((await raw.handshake(signedAuthToken)).isAuthenticated, true);
    assert.equal((await raw.invoke('whoami')).data.username, 'shared');
  });
});

