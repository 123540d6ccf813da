package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"sigs.k8s.io/yaml"

	"github.com/wasmfleet/wasmfleet/controlplane"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/envoyproc"
	"github.com/wasmfleet/wasmfleet/e2e/standin"
)

// listenerName is the managed listener every node serves.
const listenerName = config.DefaultListenerName

// awaitTimeout bounds every wait that has no deadline of its own: long
// enough for a slow machine under -race, short enough to fail a hung test.
const awaitTimeout = 60 * time.Second

// errUnsupported is a driver's answer to a node option it cannot honour;
// scenarios that need the option skip on it.
var errUnsupported = errors.New("not supported by this data-plane driver")

// nodeOptions are per-node knobs a scenario may need.
type nodeOptions struct {
	// memoryLimitMiB caps each Wasm VM's memory on this node; 0 is the
	// driver's default.
	memoryLimitMiB int
}

// driver starts data-plane nodes. Both implementations satisfy
// dataplane.Node; the harness never looks behind that interface.
type driver struct {
	name string
	// listenAddrs is what dataplane.Config.ListenAddrs must hold: the
	// stand-in binds a free loopback port per node; a real Envoy binds what
	// LDS says, so it gets nil and the control plane gets a real port.
	listenAddrs func() map[string]string
	newNode     func(t testing.TB, cfg dataplane.Config, opts nodeOptions, log *zap.Logger) (dataplane.Node, error)
}

// pickDriver returns envoyproc when an envoy binary is present, else the
// stand-in.
//
// With real Envoys every node binds the one listener address LDS names.
// Envoy listeners set SO_REUSEPORT by default (enable_reuse_port), so three
// Envoys on one machine share that port and the kernel spreads connections
// among them: "every node answers X" then holds for the fleet as a whole
// rather than node by node. Per-node knobs (nodeOptions) are stand-in only;
// the scenario that needs one skips.
func pickDriver() driver {
	if _, err := envoyproc.Binary(); err == nil {
		return driver{
			name:        "envoy",
			listenAddrs: func() map[string]string { return nil },
			newNode: func(t testing.TB, cfg dataplane.Config, opts nodeOptions, log *zap.Logger) (dataplane.Node, error) {
				if opts != (nodeOptions{}) {
					return nil, fmt.Errorf("node options %+v: %w", opts, errUnsupported)
				}
				return envoyproc.New(envoyproc.Config{Config: cfg, Dir: t.TempDir(), Log: log})
			},
		}
	}
	return driver{
		name:        "standin",
		listenAddrs: func() map[string]string { return map[string]string{listenerName: "127.0.0.1:0"} },
		newNode: func(_ testing.TB, cfg dataplane.Config, opts nodeOptions, log *zap.Logger) (dataplane.Node, error) {
			return standin.New(standin.Config{
				Config:         cfg,
				Log:            log,
				Seed:           uint64(len(cfg.NodeID)) + uint64(cfg.NodeID[len(cfg.NodeID)-1]),
				VMsPerFilter:   1,
				FetchBackoff:   10 * time.Millisecond,
				ReconnectBase:  10 * time.Millisecond,
				ReconnectMax:   100 * time.Millisecond,
				Interpreter:    true,
				MemoryLimitMiB: opts.memoryLimitMiB,
				AdminAddr:      "127.0.0.1:0", // the filters' metrics, as Envoy's admin serves them
			})
		},
	}
}

// freePort returns a loopback address nobody listens on right now, for a
// real Envoy's listener (it must be in LDS, so it must be known up front).
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// member is one running node of the fleet.
type member struct {
	id     string
	node   dataplane.Node
	cancel context.CancelFunc
	done   chan error
}

// runningCP is one run of the control plane.
type runningCP struct {
	addrs  controlplane.Addrs
	cancel context.CancelFunc
	done   chan error
}

// testFleet is a control plane, its nodes and the upstream they proxy to.
// Its methods are called from the test goroutine only, except where noted.
type testFleet struct {
	t      testing.TB
	log    *zap.Logger
	driver driver
	// delta makes the nodes started from now on speak delta xDS.
	delta bool
	cfg   config.Config
	// configPath is the file the control plane is started from and
	// watches; writeConfig changes the running configuration through it.
	configPath string
	upstream   *httptest.Server
	cp         *runningCP

	mu    sync.Mutex
	nodes []*member // in start order
	// seen records every Wasm digest each node's ECDS slots ever held, as
	// sampled by watchDigests; safe for concurrent use under mu.
	seen map[string]map[types.Digest]bool
}

// newFleet starts an upstream and a control plane configured by edit (over
// a loopback-only test default). Nodes are added with addNode.
func newFleet(t testing.TB, edit func(*config.Config)) *testFleet {
	t.Helper()
	f := &testFleet{
		t:      t,
		log:    zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)),
		driver: pickDriver(),
		seen:   map[string]map[types.Digest]bool{},
	}
	f.upstream = httptest.NewServer(http.HandlerFunc(echo))
	t.Cleanup(f.upstream.Close)

	cfg := config.Default()
	cfg.Listen = config.Listen{XDS: "127.0.0.1:0", Modules: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	cfg.WatchDir = t.TempDir()
	cfg.DataDir = t.TempDir()
	cfg.Limits.Debounce = config.Duration(20 * time.Millisecond)
	cfg.Limits.TrialTimeout = config.Duration(trialTimeout)
	cfg.Managed.Clusters = []config.Cluster{{Name: config.DefaultClusterName, Endpoints: []string{strings.TrimPrefix(f.upstream.URL, "http://")}}}
	if f.driver.name == "envoy" {
		cfg.Managed.Listeners[0].Address = freePort(t)
	}
	if edit != nil {
		edit(&cfg)
	}
	f.cfg = cfg
	f.configPath = filepath.Join(t.TempDir(), "wasmfleet.yaml")
	f.startControlPlane()
	// The restarted control plane binds what the first one bound.
	f.cfg.Listen = config.Listen{XDS: f.cp.addrs.XDS, Modules: f.cp.addrs.Modules, Admin: f.cp.addrs.Admin}

	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		f.watchDigests(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-watched
		f.mu.Lock()
		nodes := slices.Clone(f.nodes)
		f.mu.Unlock()
		for _, m := range nodes {
			f.stopNode(m)
		}
		if f.cp != nil {
			f.stopControlPlane()
		}
	})
	return f
}

// echo is the upstream: it answers 200 with a JSON description of the
// request it received, so tests can see what the filters changed.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	hdr := map[string]string{}
	for k, v := range r.Header {
		hdr[strings.ToLower(k)] = strings.Join(v, ",")
	}
	w.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(w).Encode(upstreamSaw{Path: r.URL.Path, Headers: hdr, Body: string(body)})
}

// upstreamSaw is the upstream's answer body.
type upstreamSaw struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// ServedBy is not set by the upstream; the transform filter adds it.
	ServedBy string `json:"served_by,omitempty"`
}

// startControlPlane runs a control plane from f.cfg written to its config
// file, loaded back from it, as `wasmfleet serve --config` does. (Loading
// also means the control plane shares no memory with f.cfg.)
func (f *testFleet) startControlPlane() {
	f.t.Helper()
	f.writeConfig()
	cfg, err := config.Load(f.configPath)
	if err != nil {
		f.t.Fatal(err)
	}
	cp, err := controlplane.New(controlplane.Options{Config: cfg, ConfigPath: f.configPath, Log: f.log.Named("cp"), Unsequenced: unsequenced()})
	if err != nil {
		f.t.Fatalf("control plane: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Start(ctx) }()
	f.cp = &runningCP{addrs: cp.Addrs(), cancel: cancel, done: done}
}

// stopControlPlane ends the control plane and fails the test if it
// returned an error.
func (f *testFleet) stopControlPlane() {
	f.t.Helper()
	f.cp.cancel()
	if err := <-f.cp.done; err != nil {
		f.t.Errorf("control plane: %v", err)
	}
	f.cp = nil
}

// addNode starts a node and waits until its listener serves.
func (f *testFleet) addNode(id string, opts nodeOptions) *member {
	f.t.Helper()
	m := f.startNode(id, nil, opts)
	f.await("node "+id+" serves "+listenerName, func() bool { return m.addr() != "" })
	return m
}

// startNode starts a node, with a client certificate when tls is set, and
// adds it to the fleet without waiting for it to serve.
func (f *testFleet) startNode(id string, tls *dataplane.TLSFiles, opts nodeOptions) *member {
	f.t.Helper()
	n, err := f.driver.newNode(f.t, dataplane.Config{
		NodeID: id, Cluster: "scenarios", XDSAddr: f.cfg.Listen.XDS, ListenAddrs: f.driver.listenAddrs(), TLS: tls,
		Delta: f.delta,
	}, opts, f.log)
	if errors.Is(err, errUnsupported) {
		f.t.Skipf("%s: %v", f.driver.name, err)
	}
	if err != nil {
		f.t.Fatalf("node %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{id: id, node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- n.Start(ctx) }()
	f.mu.Lock()
	f.nodes = append(f.nodes, m)
	f.seen[id] = map[types.Digest]bool{}
	f.mu.Unlock()
	return m
}

// stopNode ends a node and forgets it.
func (f *testFleet) stopNode(m *member) {
	f.t.Helper()
	m.cancel()
	if err := <-m.done; err != nil {
		f.t.Errorf("node %s: %v", m.id, err)
	}
	f.mu.Lock()
	f.nodes = slices.DeleteFunc(f.nodes, func(o *member) bool { return o == m })
	f.mu.Unlock()
}

// members returns the running nodes in start order.
func (f *testFleet) members() []*member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nodes)
}

// addr is the node's listener address, empty until it serves.
func (m *member) addr() string { return m.node.Listeners()[listenerName] }

// runs reports whether the node has code d loaded in slot.
func (m *member) runs(slot string, d types.Digest) bool {
	st := m.node.Status().Extensions[slot]
	return st.Digest == string(d) && st.Code == dataplane.CodeReady
}

// slotDigests maps each slot that holds Wasm code to the code's digest.
func (m *member) slotDigests() map[string]types.Digest {
	out := map[string]types.Digest{}
	for slot, st := range m.node.Status().Extensions {
		if st.Digest != "" {
			out[slot] = types.Digest(st.Digest)
		}
	}
	return out
}

// watchDigests samples every node's ECDS slots until ctx ends and records
// each digest seen, so a scenario can tell that a module never reached a
// node (as far as sampling every 10 ms can; the module server and the store
// cover the rest).
func (f *testFleet) watchDigests(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		for _, m := range f.members() {
			for _, st := range m.node.Status().Extensions {
				if st.Digest == "" {
					continue
				}
				f.mu.Lock()
				f.seen[m.id][types.Digest(st.Digest)] = true
				f.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// everSeen reports the nodes that ever held digest d.
func (f *testFleet) everSeen(d types.Digest) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, ds := range f.seen {
		if ds[d] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// await polls cond until it holds or awaitTimeout passes.
func (f *testFleet) await(what string, cond func() bool) {
	f.t.Helper()
	f.awaitErr(what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// awaitErr polls check until it returns nil or awaitTimeout passes, then
// fails the test with check's last error and what the fleet holds.
func (f *testFleet) awaitErr(what string, check func() error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	if err := dataplane.AwaitNil(ctx, check); err != nil {
		f.dump()
		f.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// dump logs what the control plane and every node hold, for a failure.
func (f *testFleet) dump() {
	f.t.Helper()
	if f.cp != nil {
		if b, err := json.MarshalIndent(f.status(), "", "  "); err == nil {
			f.t.Logf("control plane status:\n%s", b)
		}
	}
	for _, m := range f.members() {
		st := m.node.Status()
		f.t.Logf("node %s: streams %d, drains %d", m.id, st.Streams, m.node.Drains())
		for typ, ts := range st.Types {
			f.t.Logf("  %s: %+v", typ, ts)
		}
		for slot, es := range st.Extensions {
			f.t.Logf("  %s: %+v", slot, es)
		}
	}
}

// step is one scenario of a suite that shares a fleet.
type step struct {
	name string
	run  func(t *testing.T)
}

// runSteps runs steps in order as subtests on f, stopping at the first
// failure: each step starts from the state the previous one left.
func runSteps(t *testing.T, f *testFleet, steps []step) {
	t.Helper()
	top := f.t
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			f.t = t
			defer func() { f.t = top }()
			st.run(t)
		})
		if !ok {
			t.Fatalf("step %q failed; the steps after it build on it", st.name)
		}
	}
}

// writeFile writes a file into the watched directory the way an editor or
// a deploy script would: to a temporary name, then renamed into place, so
// the control plane never reads half a file.
func (f *testFleet) writeFile(name string, b []byte) {
	f.t.Helper()
	tmp := filepath.Join(f.cfg.WatchDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.cfg.WatchDir, name)); err != nil {
		f.t.Fatal(err)
	}
}

// writeConfig writes f.cfg to the control plane's config file (temporary
// file, then rename, as an editor does); a running control plane reloads it.
func (f *testFleet) writeConfig() {
	f.t.Helper()
	b, err := yaml.Marshal(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	tmp := f.configPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.configPath); err != nil {
		f.t.Fatal(err)
	}
}

var adminClient = &http.Client{Timeout: 30 * time.Second}

// status reads GET /api/v1/status from the running control plane.
func (f *testFleet) status() api.Status {
	f.t.Helper()
	var st api.Status
	f.getJSON("/api/v1/status", &st)
	return st
}

// history reads a filter's versions from the admin API.
func (f *testFleet) history(filter string) []api.Version {
	f.t.Helper()
	var h api.History
	f.getJSON("/api/v1/filters/"+filter+"/history", &h)
	return h.Versions
}

func (f *testFleet) getJSON(path string, v any) {
	f.t.Helper()
	resp, err := adminClient.Get("http://" + f.cp.addrs.Admin + path)
	if err != nil {
		f.t.Fatalf("admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		f.t.Fatalf("admin %s: %s: %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		f.t.Fatalf("admin %s: %v", path, err)
	}
}

// metric returns the value of one sample in the admin API's /metrics text
// ("name{labels}" as Prometheus writes it), and whether it is there.
func (f *testFleet) metric(sample string) (float64, bool) {
	f.t.Helper()
	resp, err := adminClient.Get("http://" + f.cp.addrs.Admin + "/metrics")
	if err != nil {
		f.t.Fatalf("admin /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("admin /metrics: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			x, err := strconv.ParseFloat(v, 64)
			return x, err == nil
		}
	}
	return 0, false
}

// moduleStatus returns the HTTP status the module server answers for d.
func (f *testFleet) moduleStatus(d types.Digest) int {
	f.t.Helper()
	resp, err := adminClient.Get("http://" + f.cp.addrs.Modules + "/modules/sha256/" + string(d))
	if err != nil {
		f.t.Fatalf("module server: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// filterStatus returns the control plane's status of one filter.
func filterStatus(st api.Status, name string) (api.Filter, bool) {
	for _, fs := range st.Filters {
		if fs.Name == name {
			return fs, true
		}
	}
	return api.Filter{}, false
}

// nodeStatus returns the control plane's view of one node.
func nodeStatus(st api.Status, id string) (api.Node, bool) {
	for _, n := range st.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return api.Node{}, false
}
