package hostbench_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest/hostbench"
)

// BenchmarkFloor is issue 2's four per-request floors (<= 20 us each under
// wazero's compiler): the auth filter checking an API key, the auth filter
// accepting a JWT it verified before (cache hit), the transform filter
// rewriting headers only, and the logging filter. The filters' own
// BenchmarkRequest gives the native figures for the ratio.
func BenchmarkFloor(b *testing.B) {
	for _, bb := range floorCases(b) {
		b.Run(bb.c.Name, func(b *testing.B) { hostbench.Bench(b, bb.pkg, bb.c) })
	}
}

func floorCases(b *testing.B) []struct {
	pkg string
	c   sdktest.Case
} {
	const apiKey = "k-bench-0123456789"
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	requestTime := binary.LittleEndian.AppendUint64(nil, uint64(now.UnixNano()))
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte(apiKey))
	authConfig := `{"realm":"api",
		"api_keys":{"keys":[{"name":"bench","sha256":"` + hex.EncodeToString(sum[:]) + `"}]},
		"jwt":{"issuers":["https://issuer.test"],"audiences":["api"],"cache_entries":1024,
			"jwks":{"keys":[` + rsaJWK(b, "rs", &key.PublicKey) + `]},
			"forward_claims":[{"claim":"sub","header":"x-auth-sub"}]}}`
	token := signRS256(b, key, "rs", map[string]any{"iss": "https://issuer.test", "aud": "api", "sub": "bench",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()})
	get := func(extra [2]string) [][2]string {
		return [][2]string{{":method", "GET"}, {":path", "/orders"}, {":authority", "api.test"}, {":scheme", "https"}, extra}
	}
	props := map[string][]byte{"request.time": requestTime}
	cases := []struct {
		pkg string
		c   sdktest.Case
	}{
		{"filters/auth", sdktest.Case{Name: "auth_api_key", Config: authConfig, Properties: props,
			RequestHeaders: get([2]string{"x-api-key", apiKey})}},
		{"filters/auth", sdktest.Case{Name: "auth_jwt_cached", Config: authConfig, Properties: props,
			RequestHeaders: get([2]string{"authorization", "Bearer " + token})}},
	}
	for _, bb := range benches { // the transform and logging cases BenchmarkRequest runs
		if bb.c.Name == "transform_headers" || bb.c.Name == "logging" {
			cases = append(cases, bb)
		}
	}
	return cases
}

// rsaJWK is pub as a JSON Web Key with key id kid.
func rsaJWK(b *testing.B, kid string, pub *rsa.PublicKey) string {
	enc := base64.RawURLEncoding.EncodeToString
	out, err := json.Marshal(map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256",
		"n": enc(pub.N.Bytes()), "e": enc(big.NewInt(int64(pub.E)).Bytes())})
	if err != nil {
		b.Fatal(err)
	}
	return string(out)
}

// signRS256 is a compact JWT of claims signed with key.
func signRS256(b *testing.B, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	header, err1 := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	payload, err2 := json.Marshal(claims)
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	input := enc(header) + "." + enc(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	return input + "." + enc(sig)
}
