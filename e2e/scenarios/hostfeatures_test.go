package scenarios

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestHostFeaturesThroughServe deploys guests written the way proxy-wasm
// SDK users write them, each leaning on one host feature, through the whole
// path a filter takes: config file, admission's trial run, the module
// store, ECDS and routes, to a node. In one chain, in order:
//   - calloutauth asks the authz cluster twice per request
//     (proxy_http_call), pauses the request and resumes it or answers 403;
//   - ticker pauses a request carrying x-hold and resumes it from
//     proxy_on_tick;
//   - echoconfig reports the plugin and VM configuration bytes it got;
//   - router reads the route's name and metadata (xds.route_name,
//     xds.route_metadata), sets x-to: canary and clears the route cache,
//     so the request goes where the header route sends it;
//   - logging (wasmfleet's own) counts requests in a metric the node's
//     admin endpoint shows, as Envoy's /stats/prometheus does.
//
// Their configurations are strings, a form only Envoy's any-bytes plugin
// configuration allows.
func TestHostFeaturesThroughServe(t *testing.T) {
	authz := newAuthz()
	authzSrv := httptest.NewServer(authz)
	t.Cleanup(authzSrv.Close)
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-served-by", "canary")
		echo(w, r)
	}))
	t.Cleanup(canary.Close)

	f := newFleet(t, func(c *config.Config) {
		c.Managed.Clusters = append(c.Managed.Clusters,
			config.Cluster{Name: "authz", Endpoints: []string{strings.TrimPrefix(authzSrv.URL, "http://")}},
			config.Cluster{Name: "canary", Endpoints: []string{strings.TrimPrefix(canary.URL, "http://")}})
		toCanary := "canary"
		c.Managed.Listeners[0].Routes = []config.Route{
			{Prefix: "/", Headers: []config.HeaderMatcher{{Name: "x-to", Exact: &toCanary}}, Cluster: "canary",
				Metadata: map[string]map[string]any{"acme.auth": {"scope": "canary"}}},
			{Prefix: "/", Cluster: config.DefaultClusterName,
				Metadata: map[string]map[string]any{"acme.auth": {"scope": "default"}}},
		}
		c.Filters = []config.Filter{
			{Name: "calloutauth", Config: json.RawMessage(`"authz 5000 2"`)},
			{Name: "ticker", Config: json.RawMessage(`"50"`)},
			{Name: "echoconfig", Config: json.RawMessage(`{"greeting":"hi"}`), VM: config.VM{Configuration: json.RawMessage(`"warm"`)}},
			{Name: "router", Config: json.RawMessage(`"set+clear"`)},
			{Name: "logging", Config: json.RawMessage(`{"sample_rate": 1}`)},
		}
	})
	for name, pkg := range map[string]string{
		"calloutauth": "e2e/standin/testdata/guests/calloutauth",
		"ticker":      "controlplane/wasmhost/testdata/guests/ticker",
		"echoconfig":  "internal/wasmtest/testdata/echoconfig",
		"router":      "e2e/standin/testdata/guests/router",
		"logging":     "filters/logging",
	} {
		f.writeFile(name+".wasm", wasmtest.Module(t, pkg))
	}
	node := f.addNode("edge-1", nodeOptions{})
	addr := node.addr()
	good := map[string]string{"authorization": "Bearer good"}

	var a answer
	f.awaitErr("the whole chain serves edge-1", func() error {
		var err error
		if a, err = send(addr, "/hello", good); err != nil {
			return err
		}
		if a.status != http.StatusOK || a.header.Get("x-echoconfig") == "" || a.header.Get("x-route-ns") == "" {
			return fmt.Errorf("status %d, headers %v", a.status, a.header)
		}
		if _, ok := logged(node.node, "/hello"); !ok {
			return errors.New("logging has not run yet")
		}
		return nil
	})

	t.Run("callouts allow, two per request", func(t *testing.T) {
		before := authz.count()
		a := mustSend(t, addr, "/hello", good)
		if a.status != http.StatusOK {
			t.Fatalf("status %d (%s)", a.status, a.body)
		}
		if got := authz.count() - before; got != 2 {
			t.Errorf("authz saw %d checks for one request, want 2", got)
		}
		if got := authz.last(2); !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("authz saw checks %q for one request, want 1 and 2", got)
		}
	})
	t.Run("callouts deny", func(t *testing.T) {
		a := mustSend(t, addr, "/hello", map[string]string{"authorization": "Bearer mallory"})
		if a.status != http.StatusForbidden || a.saw.Path != "" {
			t.Fatalf("status %d, upstream saw %+v; want 403 and no upstream request", a.status, a.saw)
		}
	})
	t.Run("authz down fails closed", func(t *testing.T) {
		authz.fail(true)
		defer authz.fail(false)
		if a := mustSend(t, addr, "/hello", good); a.status != http.StatusForbidden {
			t.Fatalf("status %d with the authz cluster failing, want 403", a.status)
		}
	})
	t.Run("paused request resumed by a tick", func(t *testing.T) {
		hold := map[string]string{"authorization": "Bearer good", "x-hold": "1"}
		a := mustSend(t, addr, "/hello", hold)
		if a.status != http.StatusOK || !strings.Contains(a.saw.Headers["x-chain"], "tick") {
			t.Fatalf("status %d, upstream saw x-chain %q; want 200 and the tick's mark", a.status, a.saw.Headers["x-chain"])
		}
	})
	t.Run("plugin and VM configuration bytes", func(t *testing.T) {
		want := "root_id= vm=" + b64("warm") + " plugin=" + b64(`{"greeting":"hi"}`)
		if got := a.header.Get("x-echoconfig"); got != want {
			t.Errorf("echoconfig got %q, want %q", got, want)
		}
	})
	t.Run("route metadata and clear_route_cache", func(t *testing.T) {
		for h, want := range map[string]string{
			"x-route-scope":       "default", // read before the route was cleared
			"x-route-at-request":  "ingress.1",
			"x-route-at-response": "ingress.0",
			"x-served-by":         "canary", // re-routed by the header it set
		} {
			if got := a.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	})
	t.Run("the filters' metrics at the node's admin endpoint", func(t *testing.T) {
		before := requestsTotal(t, node.node.AdminAddr())
		mustSend(t, addr, "/hello", good)
		if got := requestsTotal(t, node.node.AdminAddr()); got != before+1 {
			t.Errorf("logging_requests_total went from %d to %d for one request", before, got)
		}
	})
}

// requestsTotal reads the logging filter's request counter from a node's
// /stats/prometheus.
func requestsTotal(t *testing.T, admin string) int {
	t.Helper()
	a := mustSend(t, admin, "/stats/prometheus", nil)
	for line := range strings.Lines(a.body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "logging_requests_total{} "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("logging_requests_total %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("/stats/prometheus has no logging_requests_total:\n%s", a.body)
	return 0
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// authz answers calloutauth's checks: 200 for "Bearer good", else 403, or
// 503 to everything while failing. It records the x-check of each call.
type authz struct {
	mu      sync.Mutex
	seen    []string
	failing bool
}

func newAuthz() *authz { return &authz{} }

func (a *authz) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("x-check"))
	failing := a.failing
	a.mu.Unlock()
	switch {
	case failing:
		http.Error(w, "down", http.StatusServiceUnavailable)
	case r.Header.Get("authorization") == "Bearer good":
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "no", http.StatusForbidden)
	}
}

func (a *authz) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// last returns the x-check values of the last n checks, sorted: the
// checks of one request run concurrently.
func (a *authz) last(n int) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(slices.Values(a.seen[max(0, len(a.seen)-n):]))
}

func (a *authz) fail(on bool) {
	a.mu.Lock()
	a.failing = on
	a.mu.Unlock()
}
