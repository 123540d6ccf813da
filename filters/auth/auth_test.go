package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
)

var target = sdktest.Target{Package: "filters/auth", Native: filter.VMContext()}

// now is the request time every case runs at, given to the filter as the
// "request.time" property (Unix nanoseconds, little-endian, as Envoy sends it).
var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func requestTimeProperty(t time.Time) map[string][]byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(t.UnixNano()))
	return map[string][]byte{"request.time": b}
}

const (
	aliceKey = "k-alice-0123456789"
	issuer   = "https://issuer.test"
)

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// config is the filter configuration most cases use, with skew seconds of
// clock skew tolerated.
func config(t testing.TB, skew int, cacheEntries int) string {
	t.Helper()
	keys, _ := jwttest.Shared(t)
	jwks, err := json.Marshal(jwt.JWKS{Keys: keys.JWKs()})
	if err != nil {
		t.Fatal(err)
	}
	return `{
		"realm": "api",
		"bypass": {"path_prefixes": ["/public/", "/healthz"], "methods": ["OPTIONS"]},
		"api_keys": {"query_param": "api_key", "name_header": "x-auth-key", "keys": [{"name": "alice", "sha256": "` + hashHex(aliceKey) + `"}]},
		"jwt": {
			"issuers": ["` + issuer + `"], "audiences": ["api"],
			"clock_skew_seconds": ` + strconv.Itoa(skew) + `, "cache_entries": ` + strconv.Itoa(cacheEntries) + `,
			"jwks": ` + string(jwks) + `,
			"forward_claims": [{"claim": "sub", "header": "x-auth-sub"}, {"claim": "email", "header": "x-auth-email"}]
		}
	}`
}

func get(path string, more ...[2]string) [][2]string {
	return append([][2]string{{":method", "GET"}, {":path", path}, {":authority", "api.test"}, {":scheme", "https"}}, more...)
}

func bearer(token string) [2]string { return [2]string{"authorization", "Bearer " + token} }

// claims are valid at now unless a case overrides them.
func claims(over map[string]any) map[string]any {
	c := map[string]any{"iss": issuer, "aud": "api", "sub": "alice", "email": "alice@example.test",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func denied(reason, code string, challenges ...string) sdktest.Want {
	headers := [][2]string{{"content-type", "application/json"}}
	for _, ch := range challenges {
		headers = append(headers, [2]string{"www-authenticate", ch})
	}
	return sdktest.Want{
		Local:   &sdktest.Local{Status: 401, Body: `{"error":"` + code + `","detail":"` + reason + `"}`, Headers: headers},
		Metrics: map[string]uint64{"auth_denied_" + reason: 1, "auth_allowed_jwt": 0, "auth_allowed_api_key": 0, "auth_allowed_bypass": 0},
	}
}

func invalidToken(reason string) sdktest.Want {
	return denied(reason, "invalid_token", `Bearer realm="api", error="invalid_token", error_description="`+reason+`"`)
}

var bareChallenges = []string{`ApiKey realm="api"`, `Bearer realm="api"`}

func allowedJWT() sdktest.Want {
	return sdktest.Want{
		RequestHeaders:   [][2]string{{"x-auth-sub", "alice"}, {"x-auth-email", "alice@example.test"}},
		NoRequestHeaders: []string{"x-auth-key"},
		Metrics:          map[string]uint64{"auth_allowed_jwt": 1, "auth_denied_expired": 0},
	}
}

// headerCount checks that name appears exactly once in the forwarded
// request, with value: a forged copy must not survive beside the real one.
func headerCount(name, value string) func(testing.TB, *sdktest.Result) {
	return func(t testing.TB, r *sdktest.Result) {
		var got []string
		for _, h := range r.RequestHeaders {
			if strings.EqualFold(h[0], name) {
				got = append(got, h[1])
			}
		}
		if len(got) != 1 || got[0] != value {
			t.Errorf("forwarded %s = %q, want exactly [%q]", name, got, value)
		}
	}
}

// warnLogged checks that the denial was logged as one JSON line with its
// reason, and that nothing in want is missing and nothing in never appears.
func warnLogged(reason string, never ...string) func(testing.TB, *sdktest.Result) {
	return func(t testing.TB, r *sdktest.Result) {
		if len(r.WarnLogs) != 1 {
			t.Fatalf("want one warn log line, got %q", r.WarnLogs)
		}
		line := r.WarnLogs[0]
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if fields["reason"] != reason || fields["filter"] != "auth" || fields["msg"] != "request denied" {
			t.Errorf("log line %q, want reason %q", line, reason)
		}
		for _, s := range never {
			if strings.Contains(line, s) {
				t.Errorf("log line %q contains %q", line, s)
			}
		}
	}
}

func TestFilter(t *testing.T) {
	keys, other := jwttest.Shared(t)
	cfg := config(t, 60, 16)
	strict := config(t, 0, 16)
	tok := func(alg jwt.Alg, over map[string]any) string { return keys.Token(t, alg, claims(over)) }
	valid := tok(jwt.RS256, nil)
	rsJWK, _ := json.Marshal(keys.RSJWK())
	confusedInput := jwttest.SigningInput(`{"alg":"HS256","kid":"`+jwttest.KidRS+`"}`, string(mustJSON(t, claims(nil))))
	confused := confusedInput + "." + b64(jwttest.HMACWith(rsJWK, []byte(confusedInput)))
	huge := strings.Repeat("A", 1<<20)

	cases := []sdktest.Case{
		// API keys.
		{Name: "api key in header", Config: cfg, RequestHeaders: get("/orders", [2]string{"x-api-key", aliceKey}),
			Want: sdktest.Want{RequestHeaders: [][2]string{{"x-auth-key", "alice"}}, Metrics: map[string]uint64{"auth_allowed_api_key": 1}}},
		{Name: "api key in query, removed before the upstream", Config: cfg, RequestHeaders: get("/orders?page=2&api_key=" + aliceKey),
			Want: sdktest.Want{RequestHeaders: [][2]string{{"x-auth-key", "alice"}, {":path", "/orders?page=2"}}, Metrics: map[string]uint64{"auth_allowed_api_key": 1}}},
		{Name: "api key query parameter removed on a bypassed path too", Config: cfg, RequestHeaders: get("/public/logo.png?api_key=" + aliceKey),
			Want: sdktest.Want{RequestHeaders: [][2]string{{":path", "/public/logo.png"}}, Metrics: map[string]uint64{"auth_allowed_bypass": 1}}},
		{Name: "wrong api key", Config: cfg, RequestHeaders: get("/orders", [2]string{"x-api-key", "k-mallory"}),
			Want: denied("invalid_api_key", "invalid_api_key", bareChallenges...), Check: warnLogged("invalid_api_key")},
		{Name: "wrong api key in query is not logged", Config: cfg, RequestHeaders: get("/orders?api_key=k-secret-guess"),
			Want: denied("invalid_api_key", "invalid_api_key", bareChallenges...), Check: warnLogged("invalid_api_key", "k-secret-guess")},
		{Name: "missing credentials", Config: cfg, RequestHeaders: get("/orders"),
			Want: denied("missing_credentials", "missing_credentials", bareChallenges...), Check: warnLogged("missing_credentials")},
		{Name: "huge api key", Config: cfg, RequestHeaders: get("/orders", [2]string{"x-api-key", huge}),
			Want: denied("invalid_api_key", "invalid_api_key", bareChallenges...)},

		// JWT: algorithms.
		{Name: "valid HS256", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.HS256, nil))), Want: allowedJWT()},
		{Name: "valid RS256", Config: cfg, RequestHeaders: get("/orders", bearer(valid)), Want: allowedJWT()},
		{Name: "valid ES256", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.ES256, nil))), Want: allowedJWT()},
		{Name: "forged signature", Config: cfg, RequestHeaders: get("/orders", bearer(other.Token(t, jwt.ES256, claims(nil)))),
			Want: invalidToken("bad_signature"), Check: warnLogged("bad_signature")},
		{Name: "wrong kid", Config: cfg, RequestHeaders: get("/orders", bearer(keys.Sign(t, jwttest.Header{Alg: "RS256", Kid: "rs-9"}, jwt.RS256, claims(nil)))),
			Want: invalidToken("unknown_key")},
		{Name: "unknown alg", Config: cfg, RequestHeaders: get("/orders", bearer(keys.Sign(t, jwttest.Header{Alg: "HS384", Kid: jwttest.KidHS}, jwt.HS256, claims(nil)))),
			Want: invalidToken("alg_unsupported")},
		{Name: "alg none", Config: cfg, RequestHeaders: get("/orders", bearer(jwttest.Segments(`{"alg":"none"}`, string(mustJSON(t, claims(nil))), nil))),
			Want: invalidToken("alg_none")},
		{Name: "HS256 signed with the RS256 public key", Config: cfg, RequestHeaders: get("/orders", bearer(confused)),
			Want: invalidToken("alg_mismatch")},
		{Name: "malformed token", Config: cfg, RequestHeaders: get("/orders", bearer("not-a-jwt")), Want: invalidToken("malformed_token")},
		{Name: "huge token", Config: cfg, RequestHeaders: get("/orders", bearer(huge)), Want: invalidToken("token_too_large")},

		// JWT: time, issuer, audience.
		{Name: "expired", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.RS256, map[string]any{"exp": now.Add(-time.Hour).Unix()}))),
			Want: invalidToken("expired"), Check: warnLogged("expired")},
		{Name: "expired 30s ago, within 60s skew", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.RS256, map[string]any{"exp": now.Add(-30 * time.Second).Unix()}))),
			Want: allowedJWT()},
		{Name: "expired 30s ago, no skew", Config: strict, RequestHeaders: get("/orders", bearer(tok(jwt.RS256, map[string]any{"exp": now.Add(-30 * time.Second).Unix()}))),
			Want: invalidToken("expired")},
		{Name: "not yet valid", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.HS256, map[string]any{"nbf": now.Add(time.Hour).Unix()}))),
			Want: invalidToken("not_yet_valid")},
		{Name: "nbf in 30s, within 60s skew", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.HS256, map[string]any{"nbf": now.Add(30 * time.Second).Unix()}))),
			Want: allowedJWT()},
		{Name: "nbf in 30s, no skew", Config: strict, RequestHeaders: get("/orders", bearer(tok(jwt.HS256, map[string]any{"nbf": now.Add(30 * time.Second).Unix()}))),
			Want: invalidToken("not_yet_valid")},
		{Name: "no exp", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.HS256, map[string]any{"exp": nil}))), Want: invalidToken("missing_exp")},
		{Name: "wrong issuer", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.ES256, map[string]any{"iss": "https://evil.test"}))),
			Want: invalidToken("wrong_issuer")},
		{Name: "wrong audience", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.ES256, map[string]any{"aud": "billing"}))),
			Want: invalidToken("wrong_audience")},
		{Name: "audience array", Config: cfg, RequestHeaders: get("/orders", bearer(tok(jwt.ES256, map[string]any{"aud": []string{"billing", "api"}}))),
			Want: allowedJWT()},

		// A repeated credential header is refused: one copy would be checked
		// and every copy forwarded.
		{Name: "authorization repeated: valid token, then a forged one", Config: cfg,
			RequestHeaders: get("/orders", bearer(valid), bearer(other.Token(t, jwt.RS256, claims(map[string]any{"sub": "root"})))),
			Want:           invalidToken("duplicate_credentials"), Check: warnLogged("duplicate_credentials")},
		{Name: "authorization repeated: valid token twice", Config: cfg, RequestHeaders: get("/orders", bearer(valid), bearer(valid)),
			Want: invalidToken("duplicate_credentials")},
		{Name: "api key header repeated: valid key, then a forged one", Config: cfg,
			RequestHeaders: get("/orders", [2]string{"x-api-key", aliceKey}, [2]string{"x-api-key", "k-root"}),
			Want:           denied("duplicate_credentials", "invalid_api_key", bareChallenges...), Check: warnLogged("duplicate_credentials", aliceKey, "k-root")},
		{Name: "api key header repeated with a valid token", Config: cfg,
			RequestHeaders: get("/orders", bearer(valid), [2]string{"X-Api-Key", "k-root"}, [2]string{"x-api-key", aliceKey}),
			Want:           denied("duplicate_credentials", "invalid_api_key", bareChallenges...)},

		// Forwarded headers cannot be forged.
		{Name: "spoofed claim headers replaced", Config: cfg,
			RequestHeaders: get("/orders", [2]string{"x-auth-sub", "root"}, bearer(valid), [2]string{"X-Auth-Sub", "admin"}, [2]string{"x-auth-key", "root-key"}),
			Want:           allowedJWT(), Check: headerCount("x-auth-sub", "alice")},
		{Name: "spoofed headers stripped on a bypass path", Config: cfg,
			RequestHeaders: get("/public/logo.png", [2]string{"x-auth-sub", "root"}, [2]string{"x-auth-key", "root-key"}),
			Want:           sdktest.Want{NoRequestHeaders: []string{"x-auth-sub", "x-auth-key", "x-auth-email"}, Metrics: map[string]uint64{"auth_allowed_bypass": 1}}},
		{Name: "claim absent from the token is not forwarded", Config: cfg,
			RequestHeaders: get("/orders", bearer(tok(jwt.HS256, map[string]any{"email": nil})), [2]string{"x-auth-email", "forged@example.test"}),
			Want:           sdktest.Want{RequestHeaders: [][2]string{{"x-auth-sub", "alice"}}, NoRequestHeaders: []string{"x-auth-email"}}},

		// Bypass.
		{Name: "bypass prefix", Config: cfg, RequestHeaders: get("/public/logo.png"), Want: sdktest.Want{Metrics: map[string]uint64{"auth_allowed_bypass": 1}}},
		{Name: "bypass exact path", Config: cfg, RequestHeaders: get("/healthz"), Want: sdktest.Want{Metrics: map[string]uint64{"auth_allowed_bypass": 1}}},
		{Name: "publicity is not public", Config: cfg, RequestHeaders: get("/publicity"), Want: denied("missing_credentials", "missing_credentials", bareChallenges...)},
		{Name: "healthzz is not healthz", Config: cfg, RequestHeaders: get("/healthzz"), Want: denied("missing_credentials", "missing_credentials", bareChallenges...)},
		{Name: "dot-dot out of a bypass prefix", Config: cfg, RequestHeaders: get("/public/../admin"), Want: denied("missing_credentials", "missing_credentials", bareChallenges...)},
		{Name: "encoded dot-dot out of a bypass prefix", Config: cfg, RequestHeaders: get("/public/%2E%2E/admin"), Want: denied("missing_credentials", "missing_credentials", bareChallenges...)},
		{Name: "OPTIONS bypasses", Config: cfg, RequestHeaders: [][2]string{{":method", "OPTIONS"}, {":path", "/orders"}, {":authority", "api.test"}},
			Want: sdktest.Want{Metrics: map[string]uint64{"auth_allowed_bypass": 1}}},

		// Huge headers: many of them, and a huge one that is not a credential.
		{Name: "huge unrelated header with a valid key", Config: cfg, RequestHeaders: get("/orders", [2]string{"x-junk", huge}, [2]string{"x-api-key", aliceKey}),
			Want: sdktest.Want{RequestHeaders: [][2]string{{"x-auth-key", "alice"}}}},
		{Name: "thousands of headers without credentials", Config: cfg, RequestHeaders: get("/orders", manyHeaders(4000)...),
			Want: denied("missing_credentials", "missing_credentials", bareChallenges...)},
	}
	for i := range cases {
		cases[i].Properties = requestTimeProperty(now)
	}
	sdktest.Run(t, target, cases)
}

func TestBadConfig(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	rs := keys.RSJWK()
	rs.Alg = "HS256"
	confused, _ := json.Marshal(jwt.JWKS{Keys: []jwt.JWK{rs}})
	cases := []sdktest.Case{
		{Name: "no configuration", Want: sdktest.Want{StartFails: true, Fields: []string{"api_keys.keys"}}},
		{Name: "not JSON", Config: `api_keys: []`, Want: sdktest.Want{StartFails: true, Fields: []string{"(root)"}}},
		{Name: "unknown field", Config: `{"apikeys":{}}`, Want: sdktest.Want{StartFails: true, Fields: []string{"apikeys"}}},
		{Name: "plain api key instead of its hash", Config: `{"api_keys":{"keys":[{"name":"a","sha256":"` + aliceKey + `"}]}}`,
			Want: sdktest.Want{StartFails: true, Fields: []string{"api_keys.keys[0].sha256"}}},
		{Name: "RSA key declared HS256", Config: `{"jwt":{"jwks":` + string(confused) + `}}`,
			Want: sdktest.Want{StartFails: true, Fields: []string{"jwt.jwks.keys[0].alg"}}},
		{Name: "every problem named", Config: `{"realm":"","jwt":{"clock_skew_seconds":99999,"jwks":{"keys":[{"kty":"EC","crv":"P-521"}]},"forward_claims":[{"claim":"sub","header":"authorization"}]}}`,
			Want: sdktest.Want{StartFails: true, Fields: []string{"realm", "jwt.clock_skew_seconds", "jwt.jwks.keys[0].crv", "jwt.forward_claims[0].header"}}},
		{Name: "wrong type", Config: `{"jwt":{"cache_entries":"many"}}`, Want: sdktest.Want{StartFails: true, Fields: []string{"jwt.cache_entries"}}},
	}
	sdktest.Run(t, target, cases)
}

func manyHeaders(n int) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{"x-h-" + strconv.Itoa(i), strings.Repeat("v", 64)}
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return jwttest.Segments("", "", b)[2:] }
