package jwt

import (
	"errors"
	"strconv"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/digest"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/pubkey"
)

// Alg is a JWS algorithm (RFC 7518 section 3.1) this package verifies.
type Alg string

// The accepted algorithms. Anything else, "none" included, is refused.
const (
	HS256 Alg = "HS256"
	RS256 Alg = "RS256"
	ES256 Alg = "ES256"
)

// MinHMACKeyBytes is the shortest HS256 key: RFC 7518 section 3.2 wants HMAC
// keys at least as long as the hash output. RSA's limits are pubkey's.
const (
	MinHMACKeyBytes = 32
	es256CoordBytes = 32
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
	id   string
	alg  Alg
	hmac *digest.MAC
	rsa  *pubkey.RSA
	ec   *pubkey.P256
}

// ID is the key's kid (may be empty).
func (k *Key) ID() string { return k.id }

// Alg is the one algorithm the key verifies.
func (k *Key) Alg() Alg { return k.alg }

// decodeSegment decodes base64url without padding (RFC 7515 section 2),
// strictly: only the URL-safe alphabet (no padding, CR or LF) and zero
// trailing bits, so that one value has one encoding. Written here rather
// than taken from encoding/base64, which adds ~15 KB to the module.
func decodeSegment(s string) ([]byte, bool) {
	if len(s)%4 == 1 {
		return nil, false // 6 bits cannot end a byte
	}
	out := make([]byte, 0, len(s)*3/4)
	var acc uint32 // only the low bits matter
	bits := 0
	for i := 0; i < len(s); i++ {
		v, ok := base64URLValue(s[i])
		if !ok {
			return nil, false
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	return out, acc&(1<<bits-1) == 0
}

func base64URLValue(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '-':
		return 62, true
	case c == '_':
		return 63, true
	}
	return 0, false
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
		k.hmac, err = parseSecret(j.K)
	case "RSA":
		k.alg = RS256
		k.rsa, err = parseRSA(j.N, j.E)
	case "EC":
		k.alg = ES256
		k.ec, err = parseEC(j.Crv, j.X, j.Y)
	case "":
		return nil, keyError("kty", "missing")
	default:
		return nil, keyError("kty", quote(j.Kty)+` is not "oct", "RSA" or "EC"`)
	}
	if err != nil {
		return nil, err
	}
	if j.Alg != "" && Alg(j.Alg) != k.alg {
		return nil, keyError("alg", quote(j.Alg)+" does not fit kty "+j.Kty+", which verifies only "+string(k.alg))
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, keyError("use", quote(j.Use)+` is not "sig"`)
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

func parseSecret(k string) (*digest.MAC, error) {
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
	return digest.NewMAC(secret), nil
}

func parseRSA(n, e string) (*pubkey.RSA, error) {
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
	key, err := pubkey.NewRSA(nb, eb)
	switch {
	case errors.Is(err, pubkey.ErrRSAExponent):
		return nil, keyError("e", err.Error())
	case err != nil:
		return nil, keyError("n", err.Error())
	}
	return key, nil
}

func parseEC(crv, x, y string) (*pubkey.P256, error) {
	if crv != "P-256" {
		return nil, keyError("crv", quote(crv)+` is not "P-256"`)
	}
	xb, ok := decodeSegment(x)
	if !ok || len(xb) != es256CoordBytes {
		return nil, keyError("x", "not 32 bytes of base64url")
	}
	yb, ok := decodeSegment(y)
	if !ok || len(yb) != es256CoordBytes {
		return nil, keyError("y", "not 32 bytes of base64url")
	}
	key, err := pubkey.NewP256(xb, yb)
	if err != nil {
		return nil, keyError("x", err.Error())
	}
	return key, nil
}
