package jwt_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
)

var b64 = base64.RawURLEncoding

func verifier(t testing.TB, jwks ...jwt.JWK) *jwt.Verifier {
	t.Helper()
	keys := make([]*jwt.Key, 0, len(jwks))
	for _, j := range jwks {
		k, err := jwt.ParseKey(j)
		if err != nil {
			t.Fatalf("ParseKey(%+v): %v", j, err)
		}
		keys = append(keys, k)
	}
	return jwt.NewVerifier(keys)
}

// withoutKid returns j with its kid removed.
func withoutKid(j jwt.JWK) jwt.JWK { j.Kid = ""; return j }

func TestVerify(t *testing.T) {
	keys, other := jwttest.Shared(t)
	exp := float64(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	claims := map[string]any{"iss": "https://issuer.test", "sub": "alice", "aud": "api", "exp": exp}
	all := verifier(t, keys.JWKs()...)
	noKids := verifier(t, withoutKid(keys.HSJWK()), withoutKid(keys.RSJWK()), withoutKid(keys.ESJWK()))
	twoRSA := verifier(t, withoutKid(keys.RSJWK()), withoutKid(other.RSJWK()))
	rsaOnly := verifier(t, keys.RSJWK())

	hs := keys.Token(t, jwt.HS256, claims)
	rs := keys.Token(t, jwt.RS256, claims)
	es := keys.Token(t, jwt.ES256, claims)
	payload := strings.Split(hs, ".")[1]

	// Algorithm confusion: the RSA public key's bytes (as the modulus, and
	// as the JWK JSON an attacker can fetch) used as an HMAC secret.
	rsJWK, _ := json.Marshal(keys.RSJWK())
	confused := func(kid string, secret []byte) string {
		h := `{"alg":"HS256"` + kid + `}`
		input := jwttest.SigningInput(h, `{"sub":"mallory","exp":1893456000}`)
		return input + "." + b64.EncodeToString(jwttest.HMACWith(secret, []byte(input)))
	}
	resign := func(k *jwttest.Keys, header string, signWith jwt.Alg) string {
		input := b64.EncodeToString([]byte(header)) + "." + payload
		return input + "." + b64.EncodeToString(k.Signature(t, signWith, []byte(input)))
	}
	truncate := func(tok string, n int) string {
		parts := strings.Split(tok, ".")
		sig, _ := b64.DecodeString(parts[2])
		return parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig[:len(sig)-n])
	}

	tests := []struct {
		name     string
		verifier *jwt.Verifier
		token    string
		want     error
		wantSub  string
	}{
		{name: "HS256 valid", verifier: all, token: hs, wantSub: "alice"},
		{name: "RS256 valid", verifier: all, token: rs, wantSub: "alice"},
		{name: "ES256 valid", verifier: all, token: es, wantSub: "alice"},
		{name: "no kid, one key fits alg", verifier: noKids, token: keys.Sign(t, jwttest.Header{Alg: "RS256"}, jwt.RS256, claims), wantSub: "alice"},
		{name: "no kid, two keys fit alg", verifier: twoRSA, token: keys.Sign(t, jwttest.Header{Alg: "RS256"}, jwt.RS256, claims), want: jwt.ErrUnknownKey},
		{name: "no kid, no key fits alg", verifier: rsaOnly, token: keys.Sign(t, jwttest.Header{Alg: "ES256"}, jwt.ES256, claims), want: jwt.ErrUnknownKey},
		{name: "unknown kid", verifier: all, token: keys.Sign(t, jwttest.Header{Alg: "RS256", Kid: "rs-2"}, jwt.RS256, claims), want: jwt.ErrUnknownKey},
		{name: "kid names a key of another alg", verifier: all, token: keys.Sign(t, jwttest.Header{Alg: "RS256", Kid: jwttest.KidES}, jwt.RS256, claims), want: jwt.ErrAlgMismatch},
		{name: "alg none", verifier: all, token: jwttest.Segments(`{"alg":"none"}`, `{"sub":"x","exp":1893456000}`, nil), want: jwt.ErrAlgNone},
		{name: "alg None (case)", verifier: all, token: jwttest.Segments(`{"alg":"None","kid":"hs-1"}`, `{"exp":1893456000}`, nil), want: jwt.ErrAlgNone},
		{name: "alg HS512 unsupported", verifier: all, token: resign(keys, `{"alg":"HS512","kid":"hs-1"}`, jwt.HS256), want: jwt.ErrAlgUnsupported},
		{name: "alg PS256 unsupported", verifier: all, token: resign(keys, `{"alg":"PS256","kid":"rs-1"}`, jwt.RS256), want: jwt.ErrAlgUnsupported},
		{name: "alg missing", verifier: all, token: resign(keys, `{"kid":"hs-1"}`, jwt.HS256), want: jwt.ErrMalformed},
		{name: "confusion: HS256 with RSA kid, modulus as secret", verifier: all, token: confused(`,"kid":"rs-1"`, keys.RSA.N.Bytes()), want: jwt.ErrAlgMismatch},
		{name: "confusion: HS256 with RSA kid, JWK JSON as secret", verifier: all, token: confused(`,"kid":"rs-1"`, rsJWK), want: jwt.ErrAlgMismatch},
		{name: "confusion: HS256 without kid, RSA-only verifier", verifier: rsaOnly, token: confused("", keys.RSA.N.Bytes()), want: jwt.ErrUnknownKey},
		{name: "confusion: HS256 without kid, HMAC key present", verifier: noKids, token: confused("", keys.RSA.N.Bytes()), want: jwt.ErrSignature},
		{name: "forged HS256 (other secret, same kid)", verifier: all, token: other.Token(t, jwt.HS256, claims), want: jwt.ErrSignature},
		{name: "forged RS256 (other key, same kid)", verifier: all, token: other.Token(t, jwt.RS256, claims), want: jwt.ErrSignature},
		{name: "forged ES256 (other key, same kid)", verifier: all, token: other.Token(t, jwt.ES256, claims), want: jwt.ErrSignature},
		{name: "payload swapped after signing", verifier: all, token: strings.Replace(rs, payload, b64.EncodeToString([]byte(`{"sub":"root","exp":1893456000}`)), 1), want: jwt.ErrSignature},
		{name: "RS256 signature one byte short", verifier: all, token: truncate(rs, 1), want: jwt.ErrSignature},
		{name: "ES256 signature one byte short", verifier: all, token: truncate(es, 1), want: jwt.ErrSignature},
		{name: "HS256 signature truncated to 16 bytes", verifier: all, token: truncate(hs, 16), want: jwt.ErrSignature},
		{name: "ES256 signature empty", verifier: all, token: truncate(es, 64), want: jwt.ErrSignature},
		{name: "empty token", verifier: all, token: "", want: jwt.ErrMalformed},
		{name: "two segments", verifier: all, token: hs[:strings.LastIndexByte(hs, '.')], want: jwt.ErrMalformed},
		{name: "four segments", verifier: all, token: hs + ".x", want: jwt.ErrMalformed},
		{name: "header not base64url", verifier: all, token: "e30*." + payload + ".AAAA", want: jwt.ErrMalformed},
		{name: "header with padding", verifier: all, token: b64.EncodeToString([]byte(`{"alg":"HS256"}`)) + "=." + payload + ".AAAA", want: jwt.ErrMalformed},
		{name: "header with newline", verifier: all, token: "eyJhbGciOiJIUzI1NiJ9\n." + payload + ".AAAA", want: jwt.ErrMalformed},
		{name: "header not JSON", verifier: all, token: b64.EncodeToString([]byte("alg=HS256")) + "." + payload + ".AAAA", want: jwt.ErrMalformed},
		{name: "header is an array", verifier: all, token: b64.EncodeToString([]byte(`["HS256"]`)) + "." + payload + ".AAAA", want: jwt.ErrMalformed},
		{name: "alg is a number", verifier: all, token: b64.EncodeToString([]byte(`{"alg":256}`)) + "." + payload + ".AAAA", want: jwt.ErrMalformed},
		{name: "crit extension", verifier: all, token: resign(keys, `{"alg":"HS256","kid":"hs-1","crit":["exp"],"exp":1}`, jwt.HS256), want: jwt.ErrMalformed},
		{name: "b64 false", verifier: all, token: resign(keys, `{"alg":"HS256","kid":"hs-1","b64":false}`, jwt.HS256), want: jwt.ErrMalformed},
		{name: "signature not base64url", verifier: all, token: hs[:strings.LastIndexByte(hs, '.')] + ".!!!!", want: jwt.ErrMalformed},
		{name: "payload not JSON (signed)", verifier: all, token: signedPayload(t, keys, "not json"), want: jwt.ErrMalformed},
		{name: "payload is a JSON array (signed)", verifier: all, token: signedPayload(t, keys, `[1,2]`), want: jwt.ErrMalformed},
		{name: "payload null (signed)", verifier: all, token: signedPayload(t, keys, `null`), want: jwt.ErrMalformed},
		{name: "iss is a number (signed)", verifier: all, token: signedPayload(t, keys, `{"iss":1,"exp":1893456000}`), want: jwt.ErrMalformed},
		{name: "aud is an object (signed)", verifier: all, token: signedPayload(t, keys, `{"aud":{"a":1},"exp":1893456000}`), want: jwt.ErrMalformed},
		{name: "aud array holds a number (signed)", verifier: all, token: signedPayload(t, keys, `{"aud":["a",1],"exp":1893456000}`), want: jwt.ErrMalformed},
		{name: "exp is a string (signed)", verifier: all, token: signedPayload(t, keys, `{"exp":"tomorrow"}`), want: jwt.ErrMalformed},
		{name: "exp negative (signed)", verifier: all, token: signedPayload(t, keys, `{"exp":-5}`), want: jwt.ErrMalformed},
		{name: "duplicate claim (signed)", verifier: all, token: signedPayload(t, keys, `{"sub":"alice","sub":"root","exp":1893456000}`), want: jwt.ErrMalformed},
		{name: "duplicate alg in header", verifier: all, token: resign(keys, `{"alg":"HS256","kid":"hs-1","alg":"none"}`, jwt.HS256), want: jwt.ErrMalformed},
		{name: "kid is a number", verifier: all, token: resign(keys, `{"alg":"HS256","kid":1}`, jwt.HS256), want: jwt.ErrMalformed},
		{name: "nbf null (signed)", verifier: all, token: signedPayload(t, keys, `{"exp":1893456000,"nbf":null}`), want: jwt.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.verifier.Verify(tt.token)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify: err = %v, want %v", err, tt.want)
				}
				if c != nil {
					t.Fatalf("Verify returned claims with error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != tt.wantSub {
				t.Fatalf("sub = %q, want %q", c.Subject, tt.wantSub)
			}
		})
	}
}

// signedPayload signs an arbitrary payload with the HS256 key, so that what
// is tested is the payload's decoding, not the signature.
func signedPayload(t testing.TB, keys *jwttest.Keys, payload string) string {
	input := jwttest.SigningInput(`{"alg":"HS256","kid":"hs-1"}`, payload)
	return input + "." + b64.EncodeToString(keys.Signature(t, jwt.HS256, []byte(input)))
}

func TestClaimsDecoding(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	v := verifier(t, keys.HSJWK())
	tests := []struct {
		name    string
		payload string
		want    jwt.Claims
	}{
		{
			name:    "aud string",
			payload: `{"iss":"i","sub":"s","aud":"a","exp":1700000000,"nbf":1600000000}`,
			want:    jwt.Claims{Issuer: "i", Subject: "s", Audience: []string{"a"}, Expiry: 1700000000e9, NotBefore: 1600000000e9},
		},
		{
			name:    "aud array, fractional exp",
			payload: `{"aud":["a","b"],"exp":1700000000.5}`,
			want:    jwt.Claims{Audience: []string{"a", "b"}, Expiry: 1700000000.5e9},
		},
		{
			name:    "exp far in the future is clamped, not wrapped",
			payload: `{"exp":1e300}`,
			want:    jwt.Claims{Expiry: 9e18},
		},
		{
			name:    "exp beyond float64 is clamped",
			payload: `{"exp":1e400}`,
			want:    jwt.Claims{Expiry: 9e18},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(signedPayload(t, keys, tt.payload))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Issuer != tt.want.Issuer || c.Subject != tt.want.Subject || strings.Join(c.Audience, ",") != strings.Join(tt.want.Audience, ",") ||
				c.Expiry != tt.want.Expiry || c.NotBefore != tt.want.NotBefore {
				t.Fatalf("claims = %+v, want %+v", *c, tt.want)
			}
			if len(c.All.Members) == 0 {
				t.Fatal("All has no members")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
	at := func(d time.Duration) int64 { return now + int64(d) }
	tests := []struct {
		name   string
		claims jwt.Claims
		expect jwt.Expect
		want   error
	}{
		{name: "valid", claims: jwt.Claims{Expiry: at(time.Hour)}},
		{name: "no exp", claims: jwt.Claims{}, want: jwt.ErrNoExpiry},
		{name: "expired", claims: jwt.Claims{Expiry: at(-time.Hour)}, want: jwt.ErrExpired},
		{name: "exp is now: expired", claims: jwt.Claims{Expiry: now}, want: jwt.ErrExpired},
		{name: "expired 30s ago, 60s skew", claims: jwt.Claims{Expiry: at(-30 * time.Second)}, expect: jwt.Expect{Skew: int64(time.Minute)}},
		{name: "expired 61s ago, 60s skew", claims: jwt.Claims{Expiry: at(-61 * time.Second)}, expect: jwt.Expect{Skew: int64(time.Minute)}, want: jwt.ErrExpired},
		{name: "nbf in the future", claims: jwt.Claims{Expiry: at(time.Hour), NotBefore: at(time.Second)}, want: jwt.ErrNotYetValid},
		{name: "nbf now", claims: jwt.Claims{Expiry: at(time.Hour), NotBefore: now}},
		{name: "nbf in 30s, 60s skew", claims: jwt.Claims{Expiry: at(time.Hour), NotBefore: at(30 * time.Second)}, expect: jwt.Expect{Skew: int64(time.Minute)}},
		{name: "nbf in 61s, 60s skew", claims: jwt.Claims{Expiry: at(time.Hour), NotBefore: at(61 * time.Second)}, expect: jwt.Expect{Skew: int64(time.Minute)}, want: jwt.ErrNotYetValid},
		{name: "issuer accepted", claims: jwt.Claims{Expiry: at(time.Hour), Issuer: "b"}, expect: jwt.Expect{Issuers: []string{"a", "b"}}},
		{name: "issuer refused", claims: jwt.Claims{Expiry: at(time.Hour), Issuer: "c"}, expect: jwt.Expect{Issuers: []string{"a", "b"}}, want: jwt.ErrIssuer},
		{name: "issuer missing", claims: jwt.Claims{Expiry: at(time.Hour)}, expect: jwt.Expect{Issuers: []string{"a"}}, want: jwt.ErrIssuer},
		{name: "audience in array", claims: jwt.Claims{Expiry: at(time.Hour), Audience: []string{"x", "api"}}, expect: jwt.Expect{Audiences: []string{"api"}}},
		{name: "audience refused", claims: jwt.Claims{Expiry: at(time.Hour), Audience: []string{"x", "y"}}, expect: jwt.Expect{Audiences: []string{"api"}}, want: jwt.ErrAudience},
		{name: "audience missing", claims: jwt.Claims{Expiry: at(time.Hour)}, expect: jwt.Expect{Audiences: []string{"api"}}, want: jwt.ErrAudience},
		{name: "any audience when none required", claims: jwt.Claims{Expiry: at(time.Hour), Audience: []string{"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.claims.Validate(now, tt.expect)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

// sentinels are every error Verify may wrap.
var sentinels = []error{
	jwt.ErrMalformed, jwt.ErrAlgNone, jwt.ErrAlgUnsupported, jwt.ErrUnknownKey,
	jwt.ErrAlgMismatch, jwt.ErrSignature,
}

// FuzzVerify feeds arbitrary tokens to Verify: it must not panic, every
// error must be one of the sentinels, and nothing but the seed tokens the
// keys really signed may verify.
func FuzzVerify(f *testing.F) {
	keys, other := jwttest.Shared(f)
	v := verifier(f, keys.JWKs()...)
	claims := map[string]any{"sub": "alice", "exp": 1893456000, "aud": []string{"a"}}
	genuine := map[string]bool{}
	for _, alg := range []jwt.Alg{jwt.HS256, jwt.RS256, jwt.ES256} {
		tok := keys.Token(f, alg, claims)
		genuine[tok] = true
		f.Add(tok)
		f.Add(other.Token(f, alg, claims))
	}
	f.Add(jwttest.Segments(`{"alg":"none"}`, `{}`, nil))
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err == nil {
			if c == nil {
				t.Fatal("nil claims without error")
			}
			if !genuine[token] {
				t.Fatalf("a token nobody signed verified: %q", token)
			}
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v wraps no sentinel", err)
	})
}
