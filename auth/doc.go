// Package auth is the default JSON Web Token engine of a SocketCluster
// server, and the seam ([Engine]) through which an application can replace
// it.
//
// [JWT] reproduces what the reference server does with `ag-auth` 2.1.1 over
// `jsonwebtoken` 9.0.3, because the official JavaScript client and existing
// applications depend on it:
//
//   - Keys: an HMAC secret ([Options.Key]; a random 64-hex-character one
//     when none is given, so tokens then do not survive a restart), or an
//     RSA or EC key pair in PEM ([Options.PrivateKeyPEM] and
//     [Options.PublicKeyPEM], both or neither).
//   - Signing uses [Options.Algorithm], or HS256 when it is empty — even
//     with a key pair, which then fails to sign exactly as the reference
//     does, so key pairs need an explicit algorithm.
//   - Verification accepts [Options.VerifyAlgorithms]; if that is empty,
//     [Options.Algorithm]; if that is empty too, the algorithms of the key:
//     HS256/384/512 for a secret, RS256/384/512 and PS256/384/512 for an
//     RSA key, ES256/384/512 for an EC key. Unsigned tokens (`alg: none`)
//     are always refused, and an HMAC token is never checked against a
//     public key (no algorithm confusion).
//   - Checks run in the order of `jsonwebtoken`, so a token that is wrong in
//     several ways fails with the same error as on the reference: type and
//     emptiness, shape (`jwt malformed`, `invalid token`), a payload that is
//     not JSON although the header says `typ: JWT`, the signature's
//     presence, the algorithm list, key/algorithm compatibility, the
//     signature, then `nbf` (refused while nbf > now) and `exp` (refused
//     once now ≥ exp), with times in whole seconds and no clock tolerance.
//     Audience, issuer and subject are not checked (the reference does not
//     check them either).
//   - Every verification failure is a [*TokenError] whose Name, Message and
//     extra fields are those the reference puts on the wire
//     (AuthTokenExpiredError, AuthTokenInvalidError, AuthTokenNotBeforeError,
//     AuthTokenError); [TokenError.MarshalJSON] writes them in the
//     reference's key order.
//   - [JWT.Sign] applies the rules of `socket.setAuthToken`: the payload is
//     deep-copied, `iat` is added (now, in seconds) unless present, `exp` is
//     iat + ExpiresIn (or [Options.DefaultExpiry], 86400 s by default) unless
//     the payload has its own `exp`, which wins. Conflicts such as a payload
//     `iss` plus [SignOptions.Issuer] fail with `jsonwebtoken`'s messages as
//     a [*SignError].
//
// # Deliberate differences from the reference
//
//   - Size limit: tokens longer than [Options.MaxTokenSize] bytes
//     ([DefaultMaxTokenSize], 64 KiB, unless configured) are refused before
//     any decoding with AuthTokenInvalidError `jwt too large`, so a client
//     cannot make the server decode and hash megabytes per handshake. Sign
//     refuses to produce a token this engine would refuse to verify. The
//     reference has no limit of its own (only the WebSocket message limit).
//   - A validly signed token whose payload is not a JSON object (an array, a
//     string, a number...) is refused with AuthTokenError `jwt payload is not
//     a JSON object`; the reference would accept it and store a non-object
//     auth token. Likewise a payload with a number outside the float64 range
//     (which JavaScript reads as Infinity) is refused with AuthTokenError
//     `jwt payload has a number out of range`. Neither can be produced by
//     [JWT.Sign].
//   - The message of the AuthTokenError raised for a `typ: JWT` token whose
//     payload is not valid JSON imitates V8's JSON.parse messages (Node 20);
//     its exact text varies across Node versions on the reference as well.
//   - Sign refuses `alg: none` and unknown algorithms named in
//     [SignOptions.Header]; the zero values of [SignOptions] mean "not set"
//     (so `notBefore: 0` or an empty issuer cannot be expressed); the
//     payload's keys are written in sorted order followed by the claims Sign
//     adds (iat, nbf, exp, aud, iss, sub, jti), where JavaScript keeps
//     insertion order; and the header is written as UTF-8 (jws writes it as
//     Latin-1, which only matters for non-Latin-1 header values).
//
// The engine is safe for concurrent use. The context arguments are for
// engines that call out to other services; [JWT] does not block and ignores
// them.
package auth
