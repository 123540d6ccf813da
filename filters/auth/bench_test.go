package main

import (
	"testing"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest/hostbench"
)

// benchCases are the requests the benchmarks send. "cached" repeats one
// token, so every request after the first is a cache hit; "uncached" turns
// the cache off, so every request verifies a signature.
func benchCases(b *testing.B) []sdktest.Case {
	keys, _ := jwttest.Shared(b)
	cached, uncached := config(b, 60, 1024), config(b, 60, 0)
	token := func(alg jwt.Alg) [2]string { return bearer(keys.Token(b, alg, claims(nil))) }
	cases := []sdktest.Case{
		{Name: "api_key", Config: cached, RequestHeaders: get("/orders", [2]string{"x-api-key", aliceKey})},
		{Name: "bypass", Config: cached, RequestHeaders: get("/public/logo.png")},
		{Name: "jwt_cached_RS256", Config: cached, RequestHeaders: get("/orders", token(jwt.RS256))},
		{Name: "jwt_uncached_HS256", Config: uncached, RequestHeaders: get("/orders", token(jwt.HS256))},
		{Name: "jwt_uncached_RS256", Config: uncached, RequestHeaders: get("/orders", token(jwt.RS256))},
		{Name: "jwt_uncached_ES256", Config: uncached, RequestHeaders: get("/orders", token(jwt.ES256))},
		{Name: "denied_missing", Config: cached, RequestHeaders: get("/orders"), Want: sdktest.Want{Local: &sdktest.Local{Status: 401}}},
	}
	for i := range cases {
		cases[i].Properties = requestTimeProperty(now)
	}
	return cases
}

// BenchmarkRequest measures one request (context, request headers, stream
// done) natively and compiled, both under the proxy-wasm SDK's emulator:
// the ratio of the two is the cost of running as wasm, but the emulator's
// own wasm wrapper is slow, so the compiled figure overstates what a proxy
// pays. BenchmarkRequestHost gives that figure.
func BenchmarkRequest(b *testing.B) {
	for _, c := range benchCases(b) {
		for _, mode := range sdktest.Modes {
			b.Run(c.Name+"/"+string(mode), func(b *testing.B) { sdktest.Bench(b, target, mode, c) })
		}
	}
}

// BenchmarkRequestHost measures one request through the compiled module in
// wasmfleet's own proxy-wasm host (wazero's compiler), as a proxy runs it.
func BenchmarkRequestHost(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.Name, func(b *testing.B) { hostbench.Bench(b, target.Package, c) })
	}
}

// BenchmarkStartup measures what a host pays to load the module: compile,
// instantiate, start the VM and configure the plugin (parsing the JWKS).
func BenchmarkStartup(b *testing.B) {
	sdktest.BenchStartup(b, "filters/auth", config(b, 60, 1024))
}
