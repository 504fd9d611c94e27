// Minimal JSON Web Token helpers built on node:crypto, so that tests can make
// tokens the fixture must accept or refuse without depending on the server's
// own signing.

import crypto from 'node:crypto';

// The fixture's default -auth-key.
export const AUTH_KEY = 'interop-secret';

const HMAC = {HS256: 'sha256', HS384: 'sha384', HS512: 'sha512'};

export const b64url = (input) => Buffer.from(input).toString('base64url');

export const nowSeconds = () => Math.floor(Date.now() / 1000);

// Signs `payload` with an HMAC algorithm. `iat` and `exp` are not added:
// pass them in the payload. `header` entries are merged into the header.
export function signToken(payload, {key = AUTH_KEY, alg = 'HS256', header = {}} = {}) {
  const head = b64url(JSON.stringify({alg, typ: 'JWT', ...header}));
  const body = b64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const input = `${head}.${body}`;
  if (alg === 'none') return `${input}.`;
  const signature = crypto.createHmac(HMAC[alg], key).update(input).digest('base64url');
  return `${input}.${signature}`;
}

// A token valid for `seconds` from now, with iat.
export function validToken(payload, seconds = 3600, options) {
  const iat = nowSeconds();
  return signToken({...payload, iat, exp: iat + seconds}, options);
}

// Decodes the payload of a token without verifying it.
export function decodePayload(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

// Verifies an HS256 signature with `key`.
export function verifySignature(token, key = AUTH_KEY) {
  const [head, body, signature] = token.split('.');
  const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
  const expected = crypto.createHmac(HMAC[header.alg], key).update(`${head}.${body}`).digest('base64url');
  return signature === expected;
}

// Replaces the payload but keeps the original header and signature.
export function tamper(token, payload) {
  const [head, , signature] = token.split('.');
  return `${head}.${b64url(JSON.stringify(payload))}.${signature}`;
}
