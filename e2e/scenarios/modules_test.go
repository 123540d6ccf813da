package scenarios

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// modules are the compiled filters the scenarios drop into the fleet.
type modules struct {
	// auth, logging and transform are the project's real filters.
	auth, logging, transform []byte
	// keygate is a second, different version of auth (testdata/guests).
	keygate []byte
	// hungry needs more memory to start than a small node allows.
	hungry []byte
	// noabi is valid wasm without the proxy-wasm ABI.
	noabi []byte
}

// buildModules compiles every module the scenarios use, up to GOMAXPROCS
// (at least two) at a time: on a cold build cache, compiling them one by one
// would keep the other cores idle.
func buildModules(t testing.TB) modules {
	t.Helper()
	var m modules
	const guests = "e2e/scenarios/testdata/guests/"
	builds := []struct {
		pkg string
		dst *[]byte
	}{
		{"filters/auth", &m.auth},
		{"filters/logging", &m.logging},
		{"filters/transform", &m.transform},
		{guests + "keygate", &m.keygate},
		{guests + "hungry", &m.hungry},
		{guests + "noabi", &m.noabi},
	}
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	errs := make([]string, len(builds))
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tb := &goroutineTB{TB: t}
			defer func() { errs[i] = tb.failure }()
			*b.dst = wasmtest.Module(tb, b.pkg)
		}()
	}
	wg.Wait()
	if msg := strings.TrimSpace(strings.Join(errs, "\n")); msg != "" {
		t.Fatal(msg)
	}
	return m
}

// goroutineTB lets wasmtest.Module run outside the test goroutine: a fatal
// error is recorded and ends only the goroutine, and the test goroutine
// reports it (testing forbids FailNow from other goroutines).
type goroutineTB struct {
	testing.TB
	failure string
}

func (g *goroutineTB) Helper() {}

func (g *goroutineTB) Fatalf(format string, args ...any) {
	g.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (g *goroutineTB) Fatal(args ...any) {
	g.failure = fmt.Sprint(args...)
	runtime.Goexit()
}

// API keys. Auth configurations store only their SHA-256.
const (
	// sharedKey is accepted by every auth configuration of the scenarios,
	// so requests carrying it must succeed across every swap.
	sharedKey = "k-shared-5f1c0e"
	// alphaKey is accepted by the initial configuration only.
	alphaKey = "k-alpha-93ab21"
	// betaKey is accepted from the auth.yaml change on.
	betaKey = "k-beta-44d0f7"
	// bogusKey is never accepted.
	bogusKey = "k-bogus-000000"
)

// keyNames is the name each key has in configurations; the auth filter
// tells the upstream which key matched (x-auth-key).
var keyNames = map[string]string{sharedKey: "shared", alphaKey: "alpha", betaKey: "beta"}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// authConfig is the auth filter's plugin configuration accepting keys in
// the x-api-key header, naming the matched key in x-auth-key.
func authConfig(keys ...string) json.RawMessage {
	return authKeysConfig(map[string]any{"name_header": "x-auth-key"}, keys)
}

// authKeysConfig is the auth filter's plugin configuration with api_keys
// set to opts plus the keys.
func authKeysConfig(opts map[string]any, keys []string) json.RawMessage {
	type key struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	}
	var ks []key
	for _, k := range keys {
		ks = append(ks, key{Name: keyNames[k], SHA256: sha256Hex(k)})
	}
	opts["keys"] = ks
	b, err := json.Marshal(map[string]any{"realm": "fleet", "api_keys": opts})
	if err != nil {
		panic(err)
	}
	return b
}

// loggingConfig logs every request with the header the transform filter
// sets, so a log line shows whether transform ran before logging.
var loggingConfig = json.RawMessage(`{"sample_rate": 1, "request_headers": ["x-transformed"]}`)

// transformConfig renames a legacy credential header to the one auth
// reads (so whether auth runs before or after transform is visible in the
// status), marks the request for the upstream and edits the JSON answer.
var transformConfig = json.RawMessage(`{
	"request": {"headers": {
		"rename": [{"from": "x-legacy-key", "to": "x-api-key"}],
		"set": [{"name": "x-transformed", "value": "1"}]
	}},
	"response": {"body": {"set": [{"path": "served_by", "value": "wasmfleet"}]}},
	"on_body_error": "pass"
}`)

// digests names the modules' digests for messages.
func (m modules) name(d types.Digest) string {
	for name, b := range map[string][]byte{
		"auth": m.auth, "logging": m.logging, "transform": m.transform,
		"keygate": m.keygate, "hungry": m.hungry, "noabi": m.noabi,
	} {
		if types.DigestOf(b) == d {
			return name
		}
	}
	return d.Short()
}
