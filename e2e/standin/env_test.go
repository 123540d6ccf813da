package standin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap/zaptest"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const (
	nodeID   = "node-1"
	listener = "ingress"
	slot0    = "wasmfleet.slot.0"
	slot1    = "wasmfleet.slot.1"
	upstream = "upstream"
)

func guest(t testing.TB, name string) []byte {
	return wasmtest.Module(t, "e2e/standin/testdata/guests/"+name)
}

// env is one test's world: a control plane, an upstream that echoes what
// reached it, and a module server.
type env struct {
	xds      *xdstest.Server
	upstream *httptest.Server
	modules  *moduleServer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-seen-chain", r.Header.Get("x-chain"))
		_, _ = io.WriteString(w, "upstream\n")
	}))
	t.Cleanup(up.Close)
	return &env{xds: xdstest.Start(t), upstream: up, modules: newModuleServer(t)}
}

// moduleServer serves module bytes by digest; tests can swap what a digest
// serves or take the server down.
type moduleServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	by  map[string][]byte
	// failures is how many requests to answer 503 before serving; gets
	// counts the requests.
	failures, gets int
	// held, when set, holds every request until it is closed.
	held chan struct{}
}

func newModuleServer(t testing.TB) *moduleServer {
	m := &moduleServer{by: map[string][]byte{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		b, ok := m.by[strings.TrimPrefix(r.URL.Path, "/modules/sha256/")]
		m.gets++
		fail := m.gets <= m.failures
		held := m.held
		m.mu.Unlock()
		if held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		if fail {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// serve makes digest d answer with b (which need not hash to d).
func (m *moduleServer) serve(d wftypes.Digest, b []byte) {
	m.mu.Lock()
	m.by[string(d)] = b
	m.mu.Unlock()
}

// hold holds requests until the returned func is called.
func (m *moduleServer) hold() (release func()) {
	ch := make(chan struct{})
	m.mu.Lock()
	m.held = ch
	m.mu.Unlock()
	return func() { close(ch) }
}

// failFirst makes the next n requests fail with 503.
func (m *moduleServer) failFirst(n int) {
	m.mu.Lock()
	m.failures = m.gets + n
	m.mu.Unlock()
}

func (m *moduleServer) requests() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *moduleServer) url() string { return m.srv.URL }
func (m *moduleServer) addr() string {
	return strings.TrimPrefix(m.srv.URL, "http://")
}

// config is the standard managed-mode configuration: listener ingress with
// two slots, one route "/" to upstream enabling both, the given ECDS configs.
func (e *env) config(t testing.TB, exts ...*core.TypedExtensionConfig) xdstest.Resources {
	t.Helper()
	rs := xdstest.Resources{
		xdstest.ClusterType: {
			xdstest.Cluster(t, upstream, strings.TrimPrefix(e.upstream.URL, "http://")),
			xdstest.Cluster(t, xdstest.ModulesCluster, e.modules.addr()),
		},
		xdstest.ListenerType: {xdstest.Listener(t, listener, 10000, slot0, slot1)},
		xdstest.RouteType:    {xdstest.Routes(t, listener, xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0, slot1}})},
	}
	for _, x := range exts {
		rs[xdstest.ExtensionType] = append(rs[xdstest.ExtensionType], x)
	}
	return rs
}

// startNode runs a stand-in for the test's duration and waits until its
// listener serves.
func (e *env) startNode(t testing.TB, tweak func(*Config)) dataplane.Node {
	t.Helper()
	cfg := Config{
		Config: dataplane.Config{
			NodeID: nodeID, Cluster: "test", XDSAddr: e.xds.Addr,
			ListenAddrs: map[string]string{listener: "127.0.0.1:0"},
		},
		Log:           zaptest.NewLogger(t),
		Seed:          42,
		VMsPerFilter:  2,
		FetchBackoff:  10 * time.Millisecond,
		ReconnectBase: 20 * time.Millisecond,
		ReconnectMax:  200 * time.Millisecond,
		Interpreter:   true,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return n
}

// await polls cond for up to 30 s.
func await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dataplane.Await(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func listenerAddr(t testing.TB, n dataplane.Node) string {
	t.Helper()
	var addr string
	await(t, "listener "+listener, func() bool {
		addr = n.Listeners()[listener]
		return addr != ""
	})
	return addr
}

type result struct {
	status int
	header http.Header
	body   string
}

var client = &http.Client{Timeout: 10 * time.Second}

func get(t testing.TB, addr, path string, hdr ...string) result {
	t.Helper()
	r, err := doGet(addr, path, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func doGet(addr, path string, hdr ...string) (result, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return result{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, string(b)}, err
}
