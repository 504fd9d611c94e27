package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults.
const (
	// DefaultExpiry is the token lifetime used when neither the payload nor
	// SignOptions.ExpiresIn sets one (the reference's authDefaultExpiry).
	DefaultExpiry = 86400 * time.Second
	// DefaultMaxTokenSize is the longest token, in bytes, that Verify
	// decodes and Sign produces unless Options.MaxTokenSize says otherwise.
	// Typical tokens are a few hundred bytes; 64 KiB leaves room for large
	// permission lists while keeping a hostile handshake cheap.
	DefaultMaxTokenSize = 64 << 10
)

// Options configure [New]. The zero value is valid: a random HMAC key,
// HS256, a one-day default expiry.
type Options struct {
	// Key is the HMAC secret (the reference's authKey). If Key,
	// PrivateKeyPEM and PublicKeyPEM are all empty, New makes a random key
	// of 64 hex characters (32 random bytes), as the reference does; tokens
	// then do not survive a restart or work across servers. Ignored when a
	// key pair is given.
	Key []byte
	// PrivateKeyPEM signs and PublicKeyPEM verifies (authPrivateKey and
	// authPublicKey). Give both or neither. RSA or EC (P-256, P-384, P-521)
	// keys, PEM-encoded as PKCS #1, SEC 1 or PKCS #8 (private) and PKIX,
	// PKCS #1 or an X.509 certificate (public); a private key given as the
	// public key stands for its public half. Encrypted keys are not
	// supported.
	PrivateKeyPEM, PublicKeyPEM []byte
	// Algorithm signs tokens (authAlgorithm): HS256, HS384, HS512, RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384 or ES512. Empty means
	// HS256, which fails to sign with a key pair (as on the reference:
	// `secretOrPrivateKey must be a symmetric key when using HS256`).
	Algorithm string
	// VerifyAlgorithms are the algorithms accepted on verification
	// (authVerifyAlgorithms). Empty means Algorithm if set, else by key: a
	// secret accepts HS256/384/512, an RSA key RS256/384/512 and
	// PS256/384/512, an EC key ES256/384/512. "none" is not accepted.
	VerifyAlgorithms []string
	// DefaultExpiry is the lifetime of tokens whose payload has no exp and
	// whose SignOptions have no ExpiresIn (authDefaultExpiry). Zero means
	// [DefaultExpiry] (86400 s); negative means such tokens get no exp.
	DefaultExpiry time.Duration
	// MaxTokenSize is the longest token in bytes that Verify decodes (longer
	// ones fail with AuthTokenInvalidError "jwt too large") and that Sign
	// produces. Zero means [DefaultMaxTokenSize]; negative means no limit.
	MaxTokenSize int
	// Now is the clock Sign reads for iat (and Verify when given the zero
	// time). nil means time.Now.
	Now func() time.Time
}

// JWT is the default [Engine]: JSON Web Tokens as made and checked by the
// reference server (ag-auth over jsonwebtoken). Create it with [New]; it is
// safe for concurrent use.
type JWT struct {
	secret     []byte            // HMAC key, or nil with a key pair
	private    crypto.PrivateKey // *rsa.PrivateKey or *ecdsa.PrivateKey
	public     crypto.PublicKey  // *rsa.PublicKey or *ecdsa.PublicKey
	alg        string            // signing algorithm
	verifyAlgs []string
	expiry     time.Duration // < 0: none
	maxSize    int           // < 0: no limit
	now        func() time.Time
}

// New returns an engine for o. It fails with an [*OptionsError] when only
// one half of a key pair is given, a key cannot be parsed, or an algorithm
// name is unknown or "none".
func New(o Options) (*JWT, error) {
	j := &JWT{alg: o.Algorithm, expiry: o.DefaultExpiry, maxSize: o.MaxTokenSize, now: time.Now}
	if o.Now != nil {
		j.now = o.Now
	}
	if j.alg == "" {
		j.alg = "HS256"
	}
	if j.expiry == 0 {
		j.expiry = DefaultExpiry
	}
	if j.maxSize == 0 {
		j.maxSize = DefaultMaxTokenSize
	}
	if err := checkAlg("Algorithm", j.alg); err != nil {
		return nil, err
	}
	for _, a := range o.VerifyAlgorithms {
		if err := checkAlg("VerifyAlgorithms", a); err != nil {
			return nil, err
		}
	}

	hasPriv, hasPub := len(o.PrivateKeyPEM) > 0, len(o.PublicKeyPEM) > 0
	switch {
	case hasPriv && !hasPub:
		return nil, &OptionsError{Message: "The authPublicKey option must be specified if authPrivateKey is specified"}
	case hasPub && !hasPriv:
		return nil, &OptionsError{Message: "The authPrivateKey option must be specified if authPublicKey is specified"}
	case hasPriv:
		priv, err := parsePrivateKey(o.PrivateKeyPEM)
		if err != nil {
			return nil, &OptionsError{Message: "auth: invalid authPrivateKey: " + err.Error(), Err: err}
		}
		pub, err := parsePublicKey(o.PublicKeyPEM)
		if err != nil {
			return nil, &OptionsError{Message: "auth: invalid authPublicKey: " + err.Error(), Err: err}
		}
		j.private, j.public = priv, pub
	case len(o.Key) > 0:
		j.secret = slices.Clone(o.Key)
	default:
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("auth: generating a random key: %w", err)
		}
		j.secret = []byte(hex.EncodeToString(b[:]))
	}

	switch {
	case len(o.VerifyAlgorithms) > 0:
		j.verifyAlgs = slices.Clone(o.VerifyAlgorithms)
	case o.Algorithm != "":
		j.verifyAlgs = []string{o.Algorithm}
	case j.secret != nil:
		j.verifyAlgs = []string{"HS256", "HS384", "HS512"}
	default:
		switch j.public.(type) {
		case *rsa.PublicKey:
			j.verifyAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		case *ecdsa.PublicKey:
			j.verifyAlgs = []string{"ES256", "ES384", "ES512"}
		}
	}
	return j, nil
}

// Algorithm returns the signing algorithm.
func (j *JWT) Algorithm() string { return j.alg }

// VerifyAlgorithms returns the algorithms accepted by Verify.
func (j *JWT) VerifyAlgorithms() []string { return slices.Clone(j.verifyAlgs) }

// Key returns a copy of the HMAC secret (the generated one if none was
// given), or nil when the engine uses a key pair.
func (j *JWT) Key() []byte { return slices.Clone(j.secret) }

func checkAlg(field, a string) error {
	if a == "none" {
		return &OptionsError{Message: fmt.Sprintf("auth: %s: unsigned tokens (alg \"none\") are not supported", field)}
	}
	if algs[a] == nil {
		return &OptionsError{Message: fmt.Sprintf("auth: %s: unknown algorithm %q", field, a)}
	}
	return nil
}

// algorithm describes one JWS algorithm.
type algorithm struct {
	family byte // 'H' HMAC, 'R' RSA PKCS#1 v1.5, 'P' RSA-PSS, 'E' ECDSA
	method jwt.SigningMethod
	curve  string // ES: the OpenSSL name of the curve it needs
	size   int    // ES: bytes of r and of s
}

// RSA-PSS as jwa does it: salt length = hash length, also when verifying
// (golang-jwt's own PS methods accept any salt length on verification).
func pss(m *jwt.SigningMethodRSAPSS) *jwt.SigningMethodRSAPSS {
	return &jwt.SigningMethodRSAPSS{
		SigningMethodRSA: m.SigningMethodRSA,
		Options:          &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash},
		VerifyOptions:    &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash},
	}
}

var algs = map[string]*algorithm{
	"HS256": {family: 'H', method: jwt.SigningMethodHS256},
	"HS384": {family: 'H', method: jwt.SigningMethodHS384},
	"HS512": {family: 'H', method: jwt.SigningMethodHS512},
	"RS256": {family: 'R', method: jwt.SigningMethodRS256},
	"RS384": {family: 'R', method: jwt.SigningMethodRS384},
	"RS512": {family: 'R', method: jwt.SigningMethodRS512},
	"PS256": {family: 'P', method: pss(jwt.SigningMethodPS256)},
	"PS384": {family: 'P', method: pss(jwt.SigningMethodPS384)},
	"PS512": {family: 'P', method: pss(jwt.SigningMethodPS512)},
	"ES256": {family: 'E', method: jwt.SigningMethodES256, curve: "prime256v1", size: 32},
	"ES384": {family: 'E', method: jwt.SigningMethodES384, curve: "secp384r1", size: 48},
	"ES512": {family: 'E', method: jwt.SigningMethodES512, curve: "secp521r1", size: 66},
}

// checkKeyForAlg is jsonwebtoken's validateAsymmetricKey: the algorithm
// must suit the key type and, for EC keys, the curve. Its failures are plain
// Errors on the reference (so AuthTokenError when verifying).
func checkKeyForAlg(alg string, key any) string {
	var ec *ecdsa.PublicKey
	switch k := key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		if a := algs[alg]; a == nil || (a.family != 'R' && a.family != 'P') {
			return `"alg" parameter for "rsa" key type must be one of: RS256, PS256, RS384, PS384, RS512, PS512.`
		}
		return ""
	case *ecdsa.PublicKey:
		ec = k
	case *ecdsa.PrivateKey:
		ec = &k.PublicKey
	default:
		return ""
	}
	a := algs[alg]
	if a == nil || a.family != 'E' {
		return `"alg" parameter for "ec" key type must be one of: ES256, ES384, ES512.`
	}
	if curveName(ec.Curve) != a.curve {
		return fmt.Sprintf(`"alg" parameter %q requires curve %q.`, alg, a.curve)
	}
	return ""
}

func curveName(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return "prime256v1"
	case elliptic.P384():
		return "secp384r1"
	case elliptic.P521():
		return "secp521r1"
	case elliptic.P224():
		return "secp224r1"
	}
	return c.Params().Name
}

// parsePrivateKey reads the first RSA or EC private key in PEM data.
func parsePrivateKey(data []byte) (crypto.PrivateKey, error) {
	var firstErr error
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		key, err := privateKeyFromBlock(block)
		if key != nil {
			return key, nil
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("no PEM private key found")
}

// privateKeyFromBlock returns (nil, nil) for blocks that hold no private key.
func privateKeyFromBlock(block *pem.Block) (crypto.PrivateKey, error) {
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("encrypted private keys are not supported")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return key, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T (RSA or EC keys only)", key)
}

// parsePublicKey reads the first RSA or EC public key (or private key, or
// certificate, standing for its public key) in PEM data.
func parsePublicKey(data []byte) (crypto.PublicKey, error) {
	var firstErr error
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			var priv crypto.PrivateKey
			priv, err = privateKeyFromBlock(block)
			if priv != nil {
				key = priv.(crypto.Signer).Public()
			}
		}
		if err == nil && key != nil {
			switch key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
				return key, nil
			}
			err = fmt.Errorf("unsupported public key type %T (RSA or EC keys only)", key)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("no PEM public key found")
}
