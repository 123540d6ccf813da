package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strconv"
)

// Alg is a JWS algorithm (RFC 7518 section 3.1) this package verifies.
type Alg string

// The accepted algorithms. Anything else, "none" included, is refused.
const (
	HS256 Alg = "HS256"
	RS256 Alg = "RS256"
	ES256 Alg = "ES256"
)

// Minimum key sizes. RFC 7518 requires at least 2048-bit RSA moduli
// (section 3.3) and HMAC keys at least as long as the hash output (3.2).
const (
	MinRSABits      = 2048
	MinHMACKeyBytes = 32
	es256CoordBytes = 32
	maxRSAExponent  = 1<<31 - 1
)

// JWK is one JSON Web Key (RFC 7517) as it appears in a JWK Set. Only the
// members needed to verify signatures are decoded: private members such as
// "d" are ignored, never used.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	// K is the secret of an "oct" key, base64url.
	K string `json:"k,omitempty"`
	// N and E are an "RSA" key's modulus and exponent, base64url big-endian.
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// Crv, X and Y are an "EC" key's curve and point, base64url.
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKS is a JWK Set: {"keys":[...]}.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Key is a parsed verification key, bound to exactly one algorithm: an "oct"
// key only verifies HS256, an "RSA" key only RS256, a P-256 "EC" key only
// ES256. That binding is what defeats algorithm confusion.
type Key struct {
	id     string
	alg    Alg
	secret []byte
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
}

// ID is the key's kid (may be empty).
func (k *Key) ID() string { return k.id }

// Alg is the one algorithm the key verifies.
func (k *Key) Alg() Alg { return k.alg }

// b64 is base64url without padding (RFC 7515 section 2), strict about the
// trailing bits so that one value has one encoding.
var b64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes base64url, refusing anything outside the alphabet
// (the standard decoder skips CR and LF; a token must not contain them).
func decodeSegment(s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, false
		}
	}
	b, err := b64.DecodeString(s)
	return b, err == nil
}

// ParseKey checks a JWK and turns it into a Key. The key's "alg", when
// present, must be the one its kty (and crv) implies; "use", when present,
// must be "sig". Errors are *KeyError (wrapping ErrBadKey).
func ParseKey(j JWK) (*Key, error) {
	var (
		k   = &Key{id: j.Kid}
		err error
	)
	switch j.Kty {
	case "oct":
		k.alg = HS256
		k.secret, err = parseSecret(j.K)
	case "RSA":
		k.alg = RS256
		k.rsa, err = parseRSA(j.N, j.E)
	case "EC":
		k.alg = ES256
		k.ec, err = parseEC(j.Crv, j.X, j.Y)
	case "":
		return nil, keyError("kty", "missing")
	default:
		return nil, keyError("kty", strconv.Quote(j.Kty)+` is not "oct", "RSA" or "EC"`)
	}
	if err != nil {
		return nil, err
	}
	if j.Alg != "" && Alg(j.Alg) != k.alg {
		return nil, keyError("alg", strconv.Quote(j.Alg)+" does not fit kty "+j.Kty+", which verifies only "+string(k.alg))
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, keyError("use", strconv.Quote(j.Use)+` is not "sig"`)
	}
	return k, nil
}

// KeyError is why ParseKey refused a JWK: which member, and what is wrong.
// It wraps ErrBadKey.
type KeyError struct {
	Member  string
	Problem string
}

func (e *KeyError) Error() string { return e.Member + ": " + e.Problem }
func (e *KeyError) Unwrap() error { return ErrBadKey }

func keyError(member, problem string) error { return &KeyError{Member: member, Problem: problem} }

func parseSecret(k string) ([]byte, error) {
	if k == "" {
		return nil, keyError("k", "missing")
	}
	secret, ok := decodeSegment(k)
	if !ok {
		return nil, keyError("k", "not base64url")
	}
	if len(secret) < MinHMACKeyBytes {
		return nil, keyError("k", "shorter than "+strconv.Itoa(MinHMACKeyBytes)+" bytes")
	}
	return secret, nil
}

func parseRSA(n, e string) (*rsa.PublicKey, error) {
	if n == "" {
		return nil, keyError("n", "missing")
	}
	if e == "" {
		return nil, keyError("e", "missing")
	}
	nb, ok := decodeSegment(n)
	if !ok {
		return nil, keyError("n", "not base64url")
	}
	eb, ok := decodeSegment(e)
	if !ok {
		return nil, keyError("e", "not base64url")
	}
	mod := new(big.Int).SetBytes(nb)
	if mod.BitLen() < MinRSABits {
		return nil, keyError("n", "modulus shorter than "+strconv.Itoa(MinRSABits)+" bits")
	}
	exp := new(big.Int).SetBytes(eb)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > maxRSAExponent || exp.Bit(0) == 0 {
		return nil, keyError("e", "exponent must be odd, >= 3 and < 2^31")
	}
	return &rsa.PublicKey{N: mod, E: int(exp.Int64())}, nil
}

func parseEC(crv, x, y string) (*ecdsa.PublicKey, error) {
	if crv != "P-256" {
		return nil, keyError("crv", strconv.Quote(crv)+` is not "P-256"`)
	}
	xb, ok := decodeSegment(x)
	if !ok || len(xb) != es256CoordBytes {
		return nil, keyError("x", "not 32 bytes of base64url")
	}
	yb, ok := decodeSegment(y)
	if !ok || len(yb) != es256CoordBytes {
		return nil, keyError("y", "not 32 bytes of base64url")
	}
	point := make([]byte, 0, 1+2*es256CoordBytes)
	point = append(append(append(point, 4), xb...), yb...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, keyError("x", "(x, y) is not a point on P-256")
	}
	return pub, nil
}
