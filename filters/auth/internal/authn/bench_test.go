package authn_test

import (
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
)

// BenchmarkCheck measures the decision alone, without a host, so that the
// filter's own cost stands apart from the host calls around it. Compiled to
// wasip1 (go test -c), the test binary also runs under wazero given stub
// "env" imports: package sdk links the proxy-wasm hostcalls in.
func BenchmarkCheck(b *testing.B) {
	keys, _ := jwttest.Shared(b)
	jwks := jwksJSON(b, keys.JWKs()...)
	cfg := func(cache string) string {
		return `{"bypass":{"path_prefixes":["/public/"]},"api_keys":{"keys":[{"name":"alice","sha256":"` + keyHash + `"}]},` +
			`"jwt":{"cache_entries":` + cache + `,"jwks":` + jwks + `,"forward_claims":[{"claim":"sub","header":"x-user"}]}}`
	}
	claims := map[string]any{"sub": "alice", "exp": now.Add(time.Hour).Unix()}
	tok := func(alg jwt.Alg) [2]string { return bearer(keys.Token(b, alg, claims)) }
	cases := []struct {
		name    string
		config  string
		headers [][2]string
	}{
		{"bypass", cfg("1024"), request("GET", "/public/x")},
		{"api_key", cfg("1024"), request("GET", "/x", [2]string{"x-api-key", "k-alice"})},
		{"jwt_cached", cfg("1024"), request("GET", "/x", tok(jwt.RS256))},
		{"jwt_uncached_HS256", cfg("0"), request("GET", "/x", tok(jwt.HS256))},
		{"jwt_uncached_RS256", cfg("0"), request("GET", "/x", tok(jwt.RS256))},
		{"jwt_uncached_ES256", cfg("0"), request("GET", "/x", tok(jwt.ES256))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			a := newAuth(b, c.config)
			if d := a.Check(c.headers, clock(now)); !d.Allowed {
				b.Fatalf("denied: %s %v", d.Reason, d.Err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a.Check(c.headers, clock(now))
			}
		})
	}
}
