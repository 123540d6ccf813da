package authn_test

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/authn"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
	"github.com/wasmfleet/wasmfleet/sdk"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// newAuth builds an Authenticator from JSON as the filter would.
func newAuth(t testing.TB, config string) authn.Authenticator {
	t.Helper()
	cfg, err := sdk.DecodeConfig([]byte(config), authn.Default)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := authn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// clock is a fixed clock for Check, in Unix nanoseconds.
func clock(t time.Time) func() int64 { return func() int64 { return t.UnixNano() } }

func request(method, path string, more ...[2]string) [][2]string {
	return append([][2]string{{":method", method}, {":path", path}, {":authority", "api.test"}}, more...)
}

func bearer(token string) [2]string { return [2]string{"authorization", "Bearer " + token} }

func TestBypass(t *testing.T) {
	a := newAuth(t, `{"bypass":{"path_prefixes":["/public/","/healthz","/static"],"methods":["OPTIONS"]},`+
		`"api_keys":{"keys":[{"sha256":"`+keyHash+`"}]}}`)
	tests := []struct {
		name   string
		method string
		path   string
		want   bool
	}{
		{name: "prefix with slash, below it", method: "GET", path: "/public/index.html", want: true},
		{name: "prefix with slash, the directory itself", method: "GET", path: "/public", want: true},
		{name: "prefix with slash, directory with slash", method: "GET", path: "/public/", want: true},
		{name: "longer segment is not below the prefix", method: "GET", path: "/publicity", want: false},
		{name: "longer segment below slash-less prefix", method: "GET", path: "/healthzz", want: false},
		{name: "exact slash-less prefix", method: "GET", path: "/healthz", want: true},
		{name: "exact prefix with query", method: "GET", path: "/healthz?full=1", want: true},
		{name: "query does not count", method: "GET", path: "/private?x=/public/", want: false},
		{name: "dot-dot out of the prefix", method: "GET", path: "/public/../admin", want: false},
		{name: "dot segment", method: "GET", path: "/public/./x", want: false},
		{name: "encoded dot-dot", method: "GET", path: "/public/%2e%2e/admin", want: false},
		{name: "encoded slash", method: "GET", path: "/public%2F..%2Fadmin", want: false},
		{name: "backslash", method: "GET", path: "/public/..\\admin", want: false},
		{name: "double slash", method: "GET", path: "//public/x", want: false},
		{name: "case differs", method: "GET", path: "/Public/x", want: false},
		{name: "absolute URI is not a path", method: "GET", path: "http://x/public/", want: false},
		{name: "OPTIONS bypasses", method: "OPTIONS", path: "/private", want: true},
		{name: "lower-case options does not", method: "options", path: "/private", want: false},
		{name: "GET on private path", method: "GET", path: "/private", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Check(request(tt.method, tt.path), clock(now))
			got := d.Allowed && d.Reason == authn.AllowedBypass
			if got != tt.want {
				t.Fatalf("bypass = %v (decision %+v), want %v", got, d, tt.want)
			}
		})
	}
}

func TestCheckDecision(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	a := newAuth(t, `{"realm":"api","api_keys":{"name_header":"x-key-name","keys":[{"name":"alice","sha256":"`+keyHash+`"}]},`+
		`"jwt":{"jwks":`+jwksJSON(t, keys.JWKs()...)+`,"forward_claims":[{"claim":"admin","header":"x-admin"},{"claim":"evil","header":"x-evil"},{"claim":"groups","header":"x-groups"},{"claim":"n","header":"x-n"},{"claim":"sub","header":"x-user"}]}}`)
	good := keys.Token(t, jwt.RS256, map[string]any{"sub": "alice", "exp": now.Add(time.Hour).Unix(),
		"groups": []string{"a", "b"}, "admin": true, "n": 1.5, "evil": "a\r\nx-injected: 1"})
	expired := keys.Token(t, jwt.HS256, map[string]any{"sub": "alice", "exp": now.Add(-time.Hour).Unix()})
	owned := []string{"x-key-name", "x-admin", "x-evil", "x-groups", "x-n", "x-user"}

	tests := []struct {
		name       string
		headers    [][2]string
		allowed    bool
		reason     authn.Reason
		add        [][2]string
		code       string
		challenges []string
	}{
		{
			name: "token: claims forwarded in order, unsafe value dropped", headers: request("GET", "/", bearer(good)),
			allowed: true, reason: authn.AllowedJWT,
			add: [][2]string{{"x-admin", "true"}, {"x-groups", `["a","b"]`}, {"x-n", "1.5"}, {"x-user", "alice"}},
		},
		{
			name: "api key and token both valid", headers: request("GET", "/", bearer(good), [2]string{"x-api-key", "k-alice"}),
			allowed: true, reason: authn.AllowedJWT,
			add: [][2]string{{"x-key-name", "alice"}, {"x-admin", "true"}, {"x-groups", `["a","b"]`}, {"x-n", "1.5"}, {"x-user", "alice"}},
		},
		{
			name: "valid api key does not excuse an expired token", headers: request("GET", "/", bearer(expired), [2]string{"x-api-key", "k-alice"}),
			reason: authn.DeniedExpired, code: authn.CodeInvalidToken,
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="expired"`},
		},
		{
			name: "valid token does not excuse a wrong api key", headers: request("GET", "/", bearer(good), [2]string{"x-api-key", "k-bob"}),
			reason: authn.DeniedAPIKey, code: authn.CodeInvalidKey,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
		{
			name: "nothing presented: bare challenges", headers: request("GET", "/"),
			reason: authn.DeniedMissing, code: authn.CodeMissing,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
		{
			name: "basic auth is not a bearer token", headers: request("GET", "/", [2]string{"authorization", "Basic YTpi"}),
			reason: authn.DeniedMissing, code: authn.CodeMissing,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
		{
			name: "bearer scheme is case-insensitive", headers: request("GET", "/", [2]string{"Authorization", "bearer " + good}),
			allowed: true, reason: authn.AllowedJWT,
			add: [][2]string{{"x-admin", "true"}, {"x-groups", `["a","b"]`}, {"x-n", "1.5"}, {"x-user", "alice"}},
		},
		{
			name: "empty bearer token", headers: request("GET", "/", [2]string{"authorization", "Bearer   "}),
			reason: authn.DeniedMissing, code: authn.CodeMissing,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
		{
			name: "api key header repeated, the valid key first", headers: request("GET", "/", [2]string{"x-api-key", "k-alice"}, [2]string{"x-api-key", "k-forged"}),
			reason: authn.DeniedDuplicate, code: authn.CodeInvalidKey,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
		{
			name: "api key header repeated in another case, same key", headers: request("GET", "/", [2]string{"x-api-key", "k-alice"}, [2]string{"X-Api-Key", "k-alice"}),
			reason: authn.DeniedDuplicate, code: authn.CodeInvalidKey,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
		{
			name: "token header repeated, the valid token first", headers: request("GET", "/", bearer(good), bearer(expired)),
			reason: authn.DeniedDuplicate, code: authn.CodeInvalidToken,
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="duplicate_credentials"`},
		},
		{
			name: "token header repeated with another scheme", headers: request("GET", "/", bearer(good), [2]string{"Authorization", "Basic YTpi"}),
			reason: authn.DeniedDuplicate, code: authn.CodeInvalidToken,
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="duplicate_credentials"`},
		},
		{
			name: "copies joined into one header are no token", headers: request("GET", "/", [2]string{"authorization", "Bearer " + good + ", Bearer " + good}),
			reason: authn.DeniedMalformed, code: authn.CodeInvalidToken,
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="malformed_token"`},
		},
		{
			name: "keys joined into one header are no key", headers: request("GET", "/", [2]string{"x-api-key", "k-alice, k-alice"}),
			reason: authn.DeniedAPIKey, code: authn.CodeInvalidKey,
			challenges: []string{`ApiKey realm="api"`, `Bearer realm="api"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Check(tt.headers, clock(now))
			if d.Allowed != tt.allowed || d.Reason != tt.reason {
				t.Fatalf("decision allowed=%v reason=%s (err %v), want %v %s", d.Allowed, d.Reason, d.Err, tt.allowed, tt.reason)
			}
			if !slices.Equal(d.Add, tt.add) {
				t.Errorf("Add = %q, want %q", d.Add, tt.add)
			}
			if !slices.Equal(d.Remove, owned) {
				t.Errorf("Remove = %q, want %q", d.Remove, owned)
			}
			if d.Code != tt.code || !slices.Equal(d.Challenges, tt.challenges) {
				t.Errorf("code %q challenges %q, want %q %q", d.Code, d.Challenges, tt.code, tt.challenges)
			}
		})
	}
}

func TestTokenCache(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	jwks := jwksJSON(t, keys.JWKs()...)
	token := func(sub string, exp time.Time) string {
		return keys.Token(t, jwt.ES256, map[string]any{"sub": sub, "exp": exp.Unix()})
	}
	a, b, c := token("a", now.Add(time.Hour)), token("b", now.Add(time.Hour)), token("c", now.Add(time.Hour))
	short := token("short", now.Add(time.Minute))
	long := keys.Token(t, jwt.HS256, map[string]any{"sub": "long", "exp": now.Add(time.Hour).Unix(), "pad": strings.Repeat("p", authn.MaxCachedTokenBytes)})

	type step struct {
		token      string
		at         time.Time
		wantReason authn.Reason
		wantCached bool
	}
	tests := []struct {
		name    string
		entries int
		steps   []step
	}{
		{name: "repeat is a hit", entries: 2, steps: []step{
			{a, now, authn.AllowedJWT, false},
			{a, now, authn.AllowedJWT, true},
		}},
		{name: "hit still enforces exp", entries: 2, steps: []step{
			{short, now, authn.AllowedJWT, false},
			{short, now.Add(30 * time.Second), authn.AllowedJWT, true},
			{short, now.Add(2 * time.Minute), authn.DeniedExpired, false},
			{short, now.Add(2 * time.Minute), authn.DeniedExpired, false},
		}},
		{name: "least recently used is evicted", entries: 2, steps: []step{
			{a, now, authn.AllowedJWT, false},
			{b, now, authn.AllowedJWT, false},
			{a, now, authn.AllowedJWT, true},  // a is now the most recent
			{c, now, authn.AllowedJWT, false}, // evicts b
			{a, now, authn.AllowedJWT, true},
			{c, now, authn.AllowedJWT, true},
			{b, now, authn.AllowedJWT, false},
		}},
		{name: "size 0 turns the cache off", entries: 0, steps: []step{
			{a, now, authn.AllowedJWT, false},
			{a, now, authn.AllowedJWT, false},
		}},
		{name: "tokens over 4 KiB are not cached", entries: 2, steps: []step{
			{long, now, authn.AllowedJWT, false},
			{long, now, authn.AllowedJWT, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := newAuth(t, `{"jwt":{"clock_skew_seconds":0,"cache_entries":`+strconv.Itoa(tt.entries)+`,"jwks":`+jwks+`}}`)
			for i, s := range tt.steps {
				d := auth.Check(request("GET", "/", bearer(s.token)), clock(s.at))
				if d.Reason != s.wantReason || d.Cached != s.wantCached {
					t.Fatalf("step %d: reason %s cached %v (err %v), want %s %v", i, d.Reason, d.Cached, d.Err, s.wantReason, s.wantCached)
				}
			}
		})
	}
}

// TestConcurrentChecks hammers one Authenticator from many goroutines
// (under -race): the cache is shared state.
func TestConcurrentChecks(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	auth := newAuth(t, `{"jwt":{"cache_entries":4,"jwks":`+jwksJSON(t, keys.JWKs()...)+`}}`)
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = keys.Token(t, jwt.HS256, map[string]any{"sub": strconv.Itoa(i), "exp": now.Add(time.Hour).Unix()})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d := auth.Check(request("GET", "/", bearer(tokens[(g+i)%len(tokens)])), clock(now))
				if !d.Allowed {
					errs <- string(d.Reason)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for r := range errs {
		t.Errorf("denied: %s", r)
	}
}

// FuzzCheck sends arbitrary method, path, API key and authorization values:
// no panics, and nothing is allowed without a bypass or a real credential.
func FuzzCheck(f *testing.F) {
	keys, _ := jwttest.Shared(f)
	good := keys.Token(f, jwt.HS256, map[string]any{"sub": "a", "exp": now.Add(time.Hour).Unix()})
	auth := newAuth(f, `{"bypass":{"path_prefixes":["/public"],"methods":["OPTIONS"]},"api_keys":{"query_param":"key","keys":[{"sha256":"`+keyHash+`"}]},`+
		`"jwt":{"jwks":`+jwksJSON(f, keys.JWKs()...)+`}}`)
	f.Add("GET", "/public/x", "", "")
	f.Add("GET", "/x?key=k-alice", "", "")
	f.Add("POST", "/x", "k-alice", "")
	f.Add("GET", "/x", "", "Bearer "+good)
	f.Add("GET", "/public/../x", "k-bob", "Bearer x.y.z")
	f.Fuzz(func(t *testing.T, method, path, apiKey, authz string) {
		h := request(method, path)
		if apiKey != "" {
			h = append(h, [2]string{"x-api-key", apiKey})
		}
		if authz != "" {
			h = append(h, [2]string{"authorization", authz})
		}
		d := auth.Check(h, clock(now))
		if !d.Allowed {
			if d.Code == "" || len(d.Challenges) == 0 {
				t.Fatalf("denial without code or challenge: %+v", d)
			}
			return
		}
		switch d.Reason {
		case authn.AllowedBypass:
		case authn.AllowedAPIKey:
			q, _ := sdk.QueryParam(path, "key")
			if apiKey != "k-alice" && q != "k-alice" {
				t.Fatalf("allowed by api key %q / query %q", apiKey, q)
			}
		case authn.AllowedJWT:
			if len(authz) < len("Bearer ") || strings.TrimSpace(authz[len("Bearer "):]) != good {
				t.Fatalf("allowed by token %q", authz)
			}
		default:
			t.Fatalf("allowed with reason %s", d.Reason)
		}
	})
}

func TestAPIKeyQueryParameterRemoved(t *testing.T) {
	a := newAuth(t, `{"realm":"api","bypass":{"path_prefixes":["/public/"]},`+
		`"api_keys":{"query_param":"api_key","keys":[{"name":"alice","sha256":"`+keyHash+`"}]}}`)
	tests := []struct {
		name, path, want string
		reason           authn.Reason
	}{
		{name: "key only in the query", path: "/a?api_key=k-alice", want: "/a", reason: authn.AllowedAPIKey},
		{name: "other parameters kept", path: "/a?x=1&api_key=k-alice&y=2", want: "/a?x=1&y=2", reason: authn.AllowedAPIKey},
		{name: "bypassed path", path: "/public/x?api_key=whatever", want: "/public/x", reason: authn.AllowedBypass},
		{name: "nothing to remove", path: "/public/x?y=1", want: "", reason: authn.AllowedBypass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Check(request("GET", tt.path), clock(now))
			if !d.Allowed || d.Reason != tt.reason || d.Path != tt.want {
				t.Fatalf("decision allowed=%v reason=%s path=%q (err %v), want %s %q", d.Allowed, d.Reason, d.Path, d.Err, tt.reason, tt.want)
			}
		})
	}
	// A denied request goes nowhere, so there is no path to rewrite.
	if d := a.Check(request("GET", "/a?api_key=k-bob"), clock(now)); d.Allowed || d.Path != "" {
		t.Fatalf("wrong key: allowed=%v path=%q", d.Allowed, d.Path)
	}
}
