package standin

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// authzServer is the callout target of the calloutauth guest: 200 for
// "Bearer good", and for "Bearer first-only" on the first check of a
// request only; no answer at all for "Bearer slow" until the caller gives
// up; 401 for anything else. It counts the checks it got.
func authzServer(t *testing.T) (addr string, checks *atomic.Int64) {
	t.Helper()
	release := make(chan struct{})
	checks = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		switch auth := r.Header.Get("authorization"); {
		case auth == "Bearer good", auth == "Bearer first-only" && r.Header.Get("x-check") == "1":
			w.WriteHeader(http.StatusOK)
		case auth == "Bearer slow":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: no handler outlives the test
	return strings.TrimPrefix(srv.URL, "http://"), checks
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestCalloutAuthFailsClosed runs an auth filter built on proxy_http_call
// through the stand-in: the request waits for the callout, goes on when the
// check allows it, and is denied when the check denies, times out or
// cannot connect, as on Envoy (where the async client's router turns a
// timeout into a 504 and a failed connection into a 503 response). A
// stand-in whose callouts fail at dispatch lets every request through.
func TestCalloutAuthFailsClosed(t *testing.T) {
	tests := []struct {
		name       string
		config     string // calloutauth's: cluster, timeout in ms, checks per request
		auth       string
		wantStatus int
		wantBody   string
		wantChecks int64 // that reached the authz server
	}{
		{name: "allowed", config: "authz 5000", auth: "Bearer good", wantStatus: 200, wantBody: "upstream\n", wantChecks: 1},
		{name: "denied", config: "authz 5000", auth: "Bearer bad", wantStatus: 403, wantBody: "denied: check answered 401\n", wantChecks: 1},
		{name: "check times out", config: "authz 200", auth: "Bearer slow", wantStatus: 403, wantBody: "denied: check answered 504\n", wantChecks: 1},
		{name: "check cannot connect", config: "authz-down 5000", auth: "Bearer good", wantStatus: 403, wantBody: "denied: check answered 503\n"},
		{name: "two checks, both allow", config: "authz 5000 2", auth: "Bearer good", wantStatus: 200, wantBody: "upstream\n", wantChecks: 2},
		{name: "two checks, the second denies", config: "authz 5000 2", auth: "Bearer first-only", wantStatus: 403, wantBody: "denied: check answered 401\n", wantChecks: 2},
		// Envoy refuses a call to a cluster it does not know at dispatch
		// (BadArgument); what happens then is the filter's choice, and this
		// one, like the SDK's examples, lets the request through.
		{name: "unknown cluster fails the dispatch", config: "nowhere 5000", auth: "Bearer bad", wantStatus: 200, wantBody: "upstream\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			authz, checks := authzServer(t)
			rs := e.config(t, xdstest.Wasm(t, slot0, xdstest.Filter{Name: "calloutauth", Config: tt.config, Inline: guest(t, "calloutauth")}),
				xdstest.Noop(t, slot1))
			rs[xdstest.ClusterType] = append(rs[xdstest.ClusterType],
				xdstest.Cluster(t, "authz", authz), xdstest.Cluster(t, "authz-down", closedAddr(t)))
			e.xds.Set(t, nodeID, rs)
			n := e.startNode(t, nil)
			r := get(t, listenerAddr(t, n), "/private", "authorization", tt.auth)
			if r.status != tt.wantStatus || r.body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", r.status, r.body, tt.wantStatus, tt.wantBody)
			}
			if got := checks.Load(); got != tt.wantChecks {
				t.Errorf("authz got %d checks, want %d", got, tt.wantChecks)
			}
		})
	}
}

// TestTicksResumeHeldRequests: each VM of a filter gets proxy_on_tick at
// the period its guest set, and a request the guest holds is answered once
// a tick resumes it (with the header the tick added).
func TestTicksResumeHeldRequests(t *testing.T) {
	e := newEnv(t)
	ticker := wasmtest.Module(t, "controlplane/wasmhost/testdata/guests/ticker")
	e.xds.Set(t, nodeID, e.config(t, xdstest.Wasm(t, slot0, xdstest.Filter{Name: "ticker", Config: "20", Inline: ticker}), xdstest.Noop(t, slot1)))
	n := e.startNode(t, nil) // two VMs per filter
	addr := listenerAddr(t, n)
	tests := []struct {
		name      string
		hdr       []string
		wantChain string
	}{
		{name: "held, then resumed by a tick", hdr: []string{"x-hold", "1"}, wantChain: "tick"},
		{name: "not held", wantChain: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 4 { // round robin: both VMs hold one
				r := get(t, addr, "/", tt.hdr...)
				if r.status != 200 || r.header.Get("x-seen-chain") != tt.wantChain {
					t.Errorf("got %d, upstream saw x-chain %q; want 200, %q", r.status, r.header.Get("x-seen-chain"), tt.wantChain)
				}
			}
		})
	}
	await(t, "a first tick on each of the 2 VMs", func() bool { return countLogs(n, "ticker: first tick") == 2 })
}
