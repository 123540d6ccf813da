package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"testing"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
)

// Key ids of the keys in Keys.JWKS.
const (
	KidHS = "hs-1"
	KidRS = "rs-1"
	KidES = "es-1"
)

// Keys is one set of signing keys and the JWK Set that verifies them.
type Keys struct {
	HMAC []byte
	RSA  *rsa.PrivateKey
	EC   *ecdsa.PrivateKey
}

var (
	once   sync.Once
	shared [2]*Keys
	genErr error
)

// Shared returns the test binary's keys, generated on first use: the set the
// filter is configured with, and a second, unrelated set for forgeries.
// RSA key generation takes a while, so every test shares them.
func Shared(tb testing.TB) (trusted, other *Keys) {
	tb.Helper()
	once.Do(func() {
		for i := range shared {
			if shared[i], genErr = generate(); genErr != nil {
				return
			}
		}
	})
	if genErr != nil {
		tb.Fatalf("jwttest: generating keys: %v", genErr)
	}
	return shared[0], shared[1]
}

func generate() (*Keys, error) {
	k := &Keys{HMAC: make([]byte, 32)}
	if _, err := rand.Read(k.HMAC); err != nil {
		return nil, err
	}
	var err error
	if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	return k, nil
}

var b64 = base64.RawURLEncoding

// JWKs returns the public JWKs of k with kids KidHS, KidRS and KidES and
// no "alg" member (ParseKey derives it from kty).
func (k *Keys) JWKs() []jwt.JWK {
	return []jwt.JWK{k.HSJWK(), k.RSJWK(), k.ESJWK()}
}

// HSJWK is the HMAC secret as an "oct" JWK.
func (k *Keys) HSJWK() jwt.JWK {
	return jwt.JWK{Kty: "oct", Kid: KidHS, K: b64.EncodeToString(k.HMAC)}
}

// RSJWK is the RSA public key as a JWK.
func (k *Keys) RSJWK() jwt.JWK {
	pub := k.RSA.PublicKey
	return jwt.JWK{Kty: "RSA", Kid: KidRS, N: b64.EncodeToString(pub.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

// ESJWK is the P-256 public key as a JWK.
func (k *Keys) ESJWK() jwt.JWK {
	point, err := k.EC.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic("jwttest: " + err.Error())
	}
	return jwt.JWK{Kty: "EC", Kid: KidES, Crv: "P-256", X: b64.EncodeToString(point[1:33]), Y: b64.EncodeToString(point[33:])}
}

// Header is a JOSE header to sign with; Kid is omitted when empty.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// Sign returns a compact JWS of claims under header, signed with k's key for
// signWith (HS256, RS256 or ES256) whatever header.Alg says, so that tests
// can claim one algorithm and sign with another.
func (k *Keys) Sign(tb testing.TB, header Header, signWith jwt.Alg, claims map[string]any) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return input + "." + b64.EncodeToString(k.Signature(tb, signWith, []byte(input)))
}

// Token signs claims with alg and the key of that alg, naming its kid.
func (k *Keys) Token(tb testing.TB, alg jwt.Alg, claims map[string]any) string {
	tb.Helper()
	kid := map[jwt.Alg]string{jwt.HS256: KidHS, jwt.RS256: KidRS, jwt.ES256: KidES}[alg]
	return k.Sign(tb, Header{Alg: string(alg), Kid: kid, Typ: "JWT"}, alg, claims)
}

// Signature signs input with k's key for alg.
func (k *Keys) Signature(tb testing.TB, alg jwt.Alg, input []byte) []byte {
	tb.Helper()
	digest := sha256.Sum256(input)
	switch alg {
	case jwt.HS256:
		mac := hmac.New(sha256.New, k.HMAC)
		mac.Write(input)
		return mac.Sum(nil)
	case jwt.RS256:
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.RSA, crypto.SHA256, digest[:])
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	case jwt.ES256:
		r, s, err := ecdsa.Sign(rand.Reader, k.EC, digest[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
	tb.Fatalf("jwttest: cannot sign with %q", alg)
	return nil
}

// HMACWith signs input with HS256 using secret: the algorithm confusion
// attack uses an RSA public key's bytes as the secret.
func HMACWith(secret, input []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(input)
	return mac.Sum(nil)
}

// Segments joins raw header and payload JSON and a signature into a compact
// token, for tokens a real signer would never produce.
func Segments(header, payload string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(sig)
}

// SigningInput is the first two segments of token.
func SigningInput(header, payload string) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
}
