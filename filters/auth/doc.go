// Command auth is wasmfleet's authentication filter, a proxy-wasm module for
// Envoy's HTTP Wasm filter. It lets a request through when it carries a
// valid API key or JWT (or matches a bypass rule) and answers 401 otherwise,
// so upstreams behind it never see an unauthenticated request:
//
//	request headers ──► strip headers the filter owns (forwarded claims, key name)
//	                │
//	                ├─ bypass (path prefix by segment, method) ─────────────► continue
//	                ├─ API key or token header repeated ─────────────────────► 401
//	                ├─ API key: header or query, SHA-256, constant-time ─┐
//	                ├─ JWT: cache of verified tokens, else               ├─► continue + claim headers
//	                │        HS256/RS256/ES256 signature, exp/nbf/iss/aud┘
//	                └─ anything missing or invalid ─► 401, WWW-Authenticate, {"error":...}
//
// The decision is made by package internal/authn, which has no proxy-wasm
// dependency; this package reads the request from the host, asks authn and
// carries the answer out, counting every outcome ("auth_allowed_<reason>",
// "auth_denied_<reason>") and logging every denial. A request that repeats
// the API key header or the token header (Authorization) is refused
// ("duplicate_credentials") whatever the copies hold: the filter could check
// only one, and every copy would reach the upstream. Configuration is the
// plugin configuration JSON described by authn.Config; a bad one makes
// OnPluginStart fail with each problem's field logged, so Envoy refuses it.
//
// A configuration with every member (defaults noted; api_keys.keys or
// jwt.jwks.keys must not be empty):
//
//	{
//	  "realm": "api",                                   // default "wasmfleet"
//	  "bypass": {"path_prefixes": ["/public/", "/healthz"], "methods": ["OPTIONS"]},
//	  "api_keys": {
//	    "header": "x-api-key",                          // default
//	    "query_param": "api_key",                       // default: none; stripped before the upstream
//	    "name_header": "x-auth-key",                    // default: none
//	    "keys": [{"name": "ci", "sha256": "<hex SHA-256 of the key>"}]
//	  },
//	  "jwt": {
//	    "header": "authorization", "prefix": "Bearer ", // defaults
//	    "issuers": ["https://issuer.example"], "audiences": ["api"],
//	    "clock_skew_seconds": 60,                       // default, 0..3600
//	    "cache_entries": 1024,                          // default, 0 turns the cache off
//	    "jwks": {"keys": [{"kty": "RSA", "kid": "k1", "n": "...", "e": "AQAB"}]},
//	    "forward_claims": [{"claim": "sub", "header": "x-auth-sub"}]
//	  }
//	}
//
// RSA keys must be 2048 to 8192 bits, EC keys P-256, HMAC secrets at least
// 32 bytes. Signatures are checked by the filter's own SHA-256, HMAC, RSA
// and P-256 code (packages digest and pubkey), which keeps the module
// 2 MB smaller than the standard library's crypto would; it handles only
// public values, so it is variable-time by design. It passes all 1,696
// Wycheproof vectors for those algorithms, natively and compiled to wasip1
// (their tests, under go test ./...).
//
// Time comes from the host: the "request.time" property, which Envoy serves
// as Unix nanoseconds, falling back to the module's clock. Tests set that
// property to control time in native and compiled runs alike.
package main
