package jwt_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
)

func TestParseKey(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(j jwt.JWK, f func(*jwt.JWK)) jwt.JWK { f(&j); return j }
	hs, rs, es := keys.HSJWK(), keys.RSJWK(), keys.ESJWK()

	tests := []struct {
		name       string
		jwk        jwt.JWK
		wantAlg    jwt.Alg
		wantMember string // empty: no error
	}{
		{name: "oct", jwk: hs, wantAlg: jwt.HS256},
		{name: "oct with alg HS256 and use sig", jwk: edit(hs, func(j *jwt.JWK) { j.Alg, j.Use = "HS256", "sig" }), wantAlg: jwt.HS256},
		{name: "RSA", jwk: rs, wantAlg: jwt.RS256},
		{name: "RSA with alg RS256", jwk: edit(rs, func(j *jwt.JWK) { j.Alg = "RS256" }), wantAlg: jwt.RS256},
		{name: "EC", jwk: es, wantAlg: jwt.ES256},
		{name: "no kty", jwk: edit(hs, func(j *jwt.JWK) { j.Kty = "" }), wantMember: "kty"},
		{name: "kty OKP", jwk: edit(hs, func(j *jwt.JWK) { j.Kty = "OKP" }), wantMember: "kty"},
		{name: "oct without k", jwk: edit(hs, func(j *jwt.JWK) { j.K = "" }), wantMember: "k"},
		{name: "oct secret of 31 bytes", jwk: edit(hs, func(j *jwt.JWK) { j.K = b64.EncodeToString(make([]byte, 31)) }), wantMember: "k"},
		{name: "oct k with padding", jwk: edit(hs, func(j *jwt.JWK) { j.K = b64.EncodeToString(make([]byte, 32)) + "=" }), wantMember: "k"},
		{name: "RSA key declared HS256", jwk: edit(rs, func(j *jwt.JWK) { j.Alg = "HS256" }), wantMember: "alg"},
		{name: "oct key declared RS256", jwk: edit(hs, func(j *jwt.JWK) { j.Alg = "RS256" }), wantMember: "alg"},
		{name: "EC key declared ES384", jwk: edit(es, func(j *jwt.JWK) { j.Alg = "ES384" }), wantMember: "alg"},
		{name: "use enc", jwk: edit(rs, func(j *jwt.JWK) { j.Use = "enc" }), wantMember: "use"},
		{name: "RSA without n", jwk: edit(rs, func(j *jwt.JWK) { j.N = "" }), wantMember: "n"},
		{name: "RSA without e", jwk: edit(rs, func(j *jwt.JWK) { j.E = "" }), wantMember: "e"},
		{name: "RSA n not base64url", jwk: edit(rs, func(j *jwt.JWK) { j.N = "a+b/" }), wantMember: "n"},
		{name: "RSA 1024 bits", jwk: edit(rs, func(j *jwt.JWK) { j.N = b64.EncodeToString(small.N.Bytes()) }), wantMember: "n"},
		{name: "RSA even exponent", jwk: edit(rs, func(j *jwt.JWK) { j.E = b64.EncodeToString([]byte{1, 0, 0}) }), wantMember: "e"},
		{name: "RSA exponent 1", jwk: edit(rs, func(j *jwt.JWK) { j.E = b64.EncodeToString([]byte{1}) }), wantMember: "e"},
		{name: "RSA exponent 2^64+1", jwk: edit(rs, func(j *jwt.JWK) {
			j.E = b64.EncodeToString(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1)).Bytes())
		}), wantMember: "e"},
		{name: "EC P-384", jwk: edit(es, func(j *jwt.JWK) { j.Crv = "P-384" }), wantMember: "crv"},
		{name: "EC x of 31 bytes", jwk: edit(es, func(j *jwt.JWK) { j.X = b64.EncodeToString(make([]byte, 31)) }), wantMember: "x"},
		{name: "EC y missing", jwk: edit(es, func(j *jwt.JWK) { j.Y = "" }), wantMember: "y"},
		{name: "EC point not on the curve", jwk: edit(es, func(j *jwt.JWK) { j.Y = j.X }), wantMember: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := jwt.ParseKey(tt.jwk)
			if tt.wantMember == "" {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if k.Alg() != tt.wantAlg || k.ID() != tt.jwk.Kid {
					t.Fatalf("key alg %s kid %q, want %s %q", k.Alg(), k.ID(), tt.wantAlg, tt.jwk.Kid)
				}
				return
			}
			var ke *jwt.KeyError
			if !errors.As(err, &ke) || !errors.Is(err, jwt.ErrBadKey) {
				t.Fatalf("ParseKey = %v, want a *KeyError wrapping ErrBadKey", err)
			}
			if ke.Member != tt.wantMember {
				t.Fatalf("ParseKey blames %q (%v), want %q", ke.Member, err, tt.wantMember)
			}
		})
	}
}

// FuzzParseKey feeds arbitrary JWK JSON (as a JWKS in the filter's
// configuration would carry it) to ParseKey: no panics, and every error is
// a *KeyError.
func FuzzParseKey(f *testing.F) {
	keys, _ := jwttest.Shared(f)
	for _, j := range keys.JWKs() {
		b, _ := json.Marshal(j)
		f.Add(b)
	}
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`{"kty":"oct","k":"===="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var j jwt.JWK
		if json.Unmarshal(data, &j) != nil {
			return
		}
		k, err := jwt.ParseKey(j)
		if err != nil {
			var ke *jwt.KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError", err)
			}
			return
		}
		switch k.Alg() {
		case jwt.HS256, jwt.RS256, jwt.ES256:
		default:
			t.Fatalf("key with alg %q", k.Alg())
		}
	})
}
