package controller

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// harness runs a controller over real stages. The xDS peer is simulated by
// feeding the fleet registry what the xDS server's callbacks would: that is
// the boundary under the controller, and it lets a test say exactly which
// node ACKs or NACKs which version.
type harness struct {
	t       *testing.T
	ctrl    *Controller
	metrics *metrics.Metrics
	reg     *prometheus.Registry
	store   store.Store
	dataDir string
	cache   cache.SnapshotCache
	fleet   fleet.Registry
	events  chan types.Event
	nonce   atomic.Int64
	stream  map[string]fleet.Stream
	// modules are the modules dropped, by digest, to recognise them inline.
	modules map[types.Digest][]byte
	// stop stops the controller and returns once Start has; more calls
	// return at once.
	stop func()
}

// newHarness starts a controller on cfg; fc configures its fleet registry
// (the harness sets the logger).
func newHarness(t *testing.T, cfg config.Config, fc fleet.Config) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, fc, nil)
}

// newHarnessWith is newHarness with edit applied to the controller's Config.
func newHarnessWith(t *testing.T, cfg config.Config, fc fleet.Config, edit func(*Config)) *harness {
	t.Helper()
	log := zaptest.NewLogger(t)
	fc.Log = log
	dataDir := t.TempDir()
	st, err := store.Open(dataDir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	h := &harness{
		t:       t,
		reg:     reg,
		store:   st,
		dataDir: dataDir,
		metrics: metrics.New(reg),
		cache:   cache.NewSnapshotCache(true, cache.IDHash{}, nil),
		fleet:   fleet.New(fc),
		events:  make(chan types.Event),
		stream:  map[string]fleet.Stream{},
		modules: map[types.Digest][]byte{},
	}
	cc := Config{
		// A generous trial timeout: under -race on a busy 2-core machine a
		// first compile can take longer than the default, and the tests
		// are about what follows admission.
		Config: cfg, Store: st, Admitter: admission.New(admission.Config{Log: log, TrialTimeout: time.Minute}), Builder: snapshot.NewBuilder(),
		Cache: h.cache, Fleet: h.fleet, Events: h.events, Metrics: h.metrics, Log: log,
	}
	if edit != nil {
		edit(&cc)
	}
	h.ctrl, err = New(cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.ctrl.Start(ctx); close(done) }()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
	return h
}

func (h *harness) connect(node string) { h.reconnect(node, "") }

// reconnect opens a new stream for node, which reports running ECDS
// version running ("" for none), as Envoy does on its first requests: a
// fresh Envoy asks for listeners from nothing, a reconnecting one reports
// the listeners, routes and filter configs it has.
func (h *harness) reconnect(node, running string) {
	s := fleet.Stream{ID: h.nonce.Add(1)} // any number not used before will do
	h.stream[node] = s
	h.fleet.StreamOpened(s)
	var lds, rds string
	if running != "" {
		lds = "listeners-it-had"
		if snap, err := h.cache.GetSnapshot(node); err == nil {
			rds = snap.GetVersion(resourcev3.RouteType)
		}
	}
	for _, r := range []fleet.Request{
		{TypeURL: resourcev3.ListenerType, Version: lds},
		{TypeURL: resourcev3.RouteType, Version: rds},
		{TypeURL: resourcev3.ExtensionConfigType, Version: running},
	} {
		h.fleet.Requested(s, fleet.Identity{ID: node}, r)
	}
}

func (h *harness) disconnect(node string) { h.fleet.StreamClosed(h.stream[node]) }

// drop sends a module event as the directory source would.
func (h *harness) drop(filter string, module []byte) types.Digest {
	d := types.DigestOf(module)
	h.modules[d] = module
	h.events <- types.Event{Kind: types.ModuleChanged, Filter: filter, Module: module, Digest: d,
		Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/" + filter + ".wasm"}}
	return d
}

// respond makes node answer the ECDS version it was last given, once that
// version runs digest d for filter; nack is the error detail, empty for an
// ACK. It returns the version answered.
func (h *harness) respond(node, filter string, d types.Digest, nack string) string {
	h.t.Helper()
	var version string
	h.wait(fmt.Sprintf("%s to be sent %s %s", node, filter, d.Short()), func() bool {
		snap, err := h.cache.GetSnapshot(node)
		if err != nil {
			return false
		}
		version = snap.GetVersion(resourcev3.ExtensionConfigType)
		return h.planned(node, d)
	})
	nonce := fmt.Sprint(h.nonce.Add(1))
	s := h.stream[node]
	h.fleet.Sent(s, resourcev3.ExtensionConfigType, version, nonce)
	h.fleet.Requested(s, fleet.Identity{ID: node}, fleet.Request{
		TypeURL: resourcev3.ExtensionConfigType, Version: version, Nonce: nonce, NACK: nack != "", Reason: nack,
	})
	return version
}

func (h *harness) status(filter string) FilterStatus {
	for _, f := range h.ctrl.Status() {
		if f.Name == filter {
			return f
		}
	}
	return FilterStatus{}
}

func (h *harness) wait(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// planned reports whether node's last snapshot runs digest d: its bytes
// inline (the default), or its sha256 for remote code.
func (h *harness) planned(node string, d types.Digest) bool {
	snap, err := h.cache.GetSnapshot(node)
	if err != nil {
		return false
	}
	inline := `"` + base64.StdEncoding.EncodeToString(h.modules[d]) + `"`
	for _, r := range snap.GetResources(resourcev3.ExtensionConfigType) {
		js, err := protojson.Marshal(r)
		if err == nil && (strings.Contains(string(js), string(d)) || strings.Contains(string(js), inline)) {
			return true
		}
	}
	return false
}

// variant returns module with a custom section appended: a new digest, the
// same behaviour.
func variant(module []byte, n uint32) []byte {
	name := "wasmfleet.test"
	payload := binary.AppendUvarint(nil, uint64(len(name)))
	payload = append(payload, name...)
	payload = binary.BigEndian.AppendUint32(payload, n)
	out := append([]byte{}, module...)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

func TestDefaultRolloutConfirmsThenRollsBackOnNACK(t *testing.T) {
	h := newHarness(t, config.Default(), fleet.Config{})
	h.connect("n1")
	h.connect("n2")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")

	// A first version reaches every node as the candidate and becomes stable
	// only when both have ACKed it.
	v1 := h.drop("hello", hello)
	h.respond("n1", "hello", v1, "")
	if st := h.status("hello"); st.Candidate != v1 || st.Stable != "" {
		t.Fatalf("after one of two ACKs: %+v, want v1 still the candidate", st)
	}
	h.respond("n2", "hello", v1, "")
	h.wait("v1 to be promoted", func() bool { st := h.status("hello"); return st.Stable == v1 && st.Candidate == "" })

	// A second version is NACKed by one node: it is rolled back, marked bad
	// with the node and reason, and every node returns to v1.
	v2 := h.drop("hello", variant(hello, 2))
	h.respond("n1", "hello", v2, "")
	h.respond("n2", "hello", v2, "wasm: proxy_on_vm_start failed")
	h.wait("v2 to be rolled back", func() bool { st := h.status("hello"); return st.Candidate == "" && len(st.Bad) == 1 })
	st := h.status("hello")
	if st.Stable != v1 || st.Bad[0].Digest != v2 || st.Bad[0].Node != "n2" || !strings.Contains(st.Bad[0].Reason, "proxy_on_vm_start") {
		t.Fatalf("after the NACK: %+v", st)
	}
	for _, n := range []string{"n1", "n2"} {
		h.wait(n+" back on v1", func() bool { return h.planned(n, v1) && !h.planned(n, v2) })
	}

	// The bad version is refused when it shows up again.
	h.drop("hello", variant(hello, 2))
	h.wait("the bad version to be refused", func() bool { return strings.Contains(h.status("hello").LastError, "marked bad") })
	if h.status("hello").Candidate != "" {
		t.Fatal("a version marked bad became the candidate again")
	}
}

func TestRejectedModuleChangesNothing(t *testing.T) {
	h := newHarness(t, config.Default(), fleet.Config{})
	h.connect("n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	h.respond("n1", "hello", v1, "")
	h.wait("v1 stable", func() bool { return h.status("hello").Stable == v1 })
	before, err := h.cache.GetSnapshot("n1")
	if err != nil {
		t.Fatal(err)
	}

	h.drop("hello", hello[:len(hello)/2])
	h.wait("the truncated module to be refused", func() bool {
		return strings.Contains(h.status("hello").LastError, "filters.d/hello.wasm")
	})
	after, err := h.cache.GetSnapshot("n1")
	if err != nil {
		t.Fatal(err)
	}
	if before != after || h.status("hello").Candidate != "" {
		t.Fatal("a rejected module changed what the node is sent")
	}
}

// TestCandidateConfirmedAcrossLongReconnect: a node that ACKed the candidate
// and comes back after the fleet forgot its assignments (the retention
// passed) still counts toward promoting it, once the controller assigns it
// again: the version it reports is resolved then.
func TestCandidateConfirmedAcrossLongReconnect(t *testing.T) {
	const retention = time.Minute
	var clock atomic.Int64 // nanoseconds since the epoch; moved by the test only
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return epoch.Add(time.Duration(clock.Load())) }
	h := newHarness(t, config.Default(), fleet.Config{Now: now, Retention: retention})
	h.connect("n1")
	h.connect("n2")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	h.respond("n1", "hello", v1, "")
	h.respond("n2", "hello", v1, "")
	h.wait("v1 to be promoted", func() bool { st := h.status("hello"); return st.Stable == v1 && st.Candidate == "" })

	v2 := h.drop("hello", variant(hello, 2))
	running := h.respond("n1", "hello", v2, "")
	h.disconnect("n1")
	h.wait("n1 to leave", func() bool { _, ok := h.fleet.Node("n1"); return !ok })
	clock.Add(int64(2 * retention))
	// Another node coming and going makes the registry expire what is due.
	h.connect("n3")
	h.disconnect("n3")
	h.reconnect("n1", running)
	h.wait("n1 to be resolved as running v2", func() bool {
		st, _ := h.fleet.Node("n1")
		return len(st.Filters) == 1 && st.Filters[0].Acked.Stable == v2
	})
	if h.status("hello").Candidate != v2 {
		t.Fatalf("v2 no longer the candidate: %+v", h.status("hello"))
	}
	h.respond("n2", "hello", v2, "")
	h.wait("v2 to be promoted with both nodes counted", func() bool {
		st := h.status("hello")
		return st.Stable == v2 && st.Candidate == ""
	})
}

// TestToleratedNACKKeepsTheNodeOnStable: with max_failed_nodes 1, a node
// that NACKs the candidate goes back to the stable version and stops holding
// up promotion, and the ACK Envoy sends when go-control-plane re-sends the
// config it just rejected (Envoy skips a config equal to the last one it
// received) does not count as the node running the candidate.
func TestToleratedNACKKeepsTheNodeOnStable(t *testing.T) {
	cfg := config.Default()
	cfg.Filters = []config.Filter{{Name: "hello", Rollout: config.Rollout{MaxFailedNodes: 1}}}
	h := newHarness(t, cfg, fleet.Config{})
	for _, n := range []string{"n1", "n2", "n3"} {
		h.connect(n)
	}
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	for _, n := range []string{"n1", "n2", "n3"} {
		h.respond(n, "hello", v1, "")
	}
	h.wait("v1 to be promoted", func() bool { st := h.status("hello"); return st.Stable == v1 && st.Candidate == "" })

	v2 := h.drop("hello", variant(hello, 2))
	rejected := h.respond("n3", "hello", v2, "wasm: proxy_on_configure failed")
	nonce := fmt.Sprint(h.nonce.Add(1)) // the re-send, and Envoy's ACK of it
	h.fleet.Sent(h.stream["n3"], resourcev3.ExtensionConfigType, rejected, nonce)
	h.fleet.Requested(h.stream["n3"], fleet.Identity{ID: "n3"}, fleet.Request{
		TypeURL: resourcev3.ExtensionConfigType, Version: rejected, Nonce: nonce})
	h.wait("n3 back on v1", func() bool { return h.planned("n3", v1) && !h.planned("n3", v2) })

	h.respond("n1", "hello", v2, "")
	// Once the controller has counted n1's ACK (three for v1, then n1's: the
	// registry keeps the re-send's ACK from it), a command round trip on its
	// loop makes sure its handling is over.
	h.wait("the controller to see n1's ACK", func() bool { return testutil.ToFloat64(h.metrics.Acks.WithLabelValues("ecds")) >= 4 })
	if _, err := h.ctrl.DryRun(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if st := h.status("hello"); st.Candidate != v2 || st.Stable != v1 {
		t.Fatalf("promoted before n2 answered (the re-send's ACK must not count): %+v", st)
	}
	h.respond("n2", "hello", v2, "")
	h.wait("v2 promoted with n3's failure tolerated", func() bool {
		st := h.status("hello")
		return st.Stable == v2 && st.Candidate == "" && len(st.Bad) == 0
	})
}

// TestNoPromotionWithoutAnACK: failures within max_failed_nodes settle their
// nodes, but a candidate that no node loaded is not promoted.
func TestNoPromotionWithoutAnACK(t *testing.T) {
	cfg := config.Default()
	cfg.Filters = []config.Filter{{Name: "hello", Rollout: config.Rollout{MaxFailedNodes: 1}}}
	h := newHarness(t, cfg, fleet.Config{})
	h.connect("n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	h.respond("n1", "hello", v1, "")
	h.wait("v1 to be promoted", func() bool { st := h.status("hello"); return st.Stable == v1 && st.Candidate == "" })

	v2 := h.drop("hello", variant(hello, 2))
	h.respond("n1", "hello", v2, "wasm: proxy_on_configure failed")
	h.wait("the controller to see the NACK", func() bool { return testutil.ToFloat64(h.metrics.Nacks.WithLabelValues("ecds")) >= 1 })
	if _, err := h.ctrl.DryRun(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if st := h.status("hello"); st.Stable != v1 || st.Candidate != v2 {
		t.Fatalf("after the only node failed v2: %+v, want v1 stable and v2 still the candidate", st)
	}
	h.wait("n1 kept on v1", func() bool { return h.planned("n1", v1) && !h.planned("n1", v2) })
}

// TestReloadKeepsRestartOnlyFields: fields that only a restart can apply
// keep their running values after a reload, so status and later reloads
// compare against what actually runs.
func TestReloadKeepsRestartOnlyFields(t *testing.T) {
	cfg := config.Default()
	h := newHarness(t, cfg, fleet.Config{})
	next := cfg
	next.Trust = config.Trust{Keys: []string{"cosign.pub"}, RequireSignature: true}
	next.Limits.Debounce = config.Duration(time.Second)
	next.Mode = config.ModeECDS
	if err := h.ctrl.Reconfigure(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	got := h.ctrl.cfg.Config
	if !slices.Equal(got.Trust.Keys, cfg.Trust.Keys) || got.Trust.RequireSignature || got.Limits != cfg.Limits || got.Mode != cfg.Mode {
		t.Fatalf("after the reload: trust %+v limits %+v mode %s, want the running ones", got.Trust, got.Limits, got.Mode)
	}
}

// TestRoutesWaitForTheSlotsACK: a request split's routes reach a node only
// after it ACKed the ECDS version that loads the candidate into the canary
// slot; with the sequencing switched off they go out with it (and Envoy
// applies them first).
func TestRoutesWaitForTheSlotsACK(t *testing.T) {
	for _, unsequenced := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsequenced=%v", unsequenced), func(t *testing.T) {
			cfg := config.Default()
			cfg.Filters = []config.Filter{{Name: "hello"}}
			h := newHarnessWith(t, cfg, fleet.Config{}, func(c *Config) { c.Unsequenced = unsequenced })
			h.connect("n1")
			hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
			v1 := h.drop("hello", hello)
			h.respond("n1", "hello", v1, "")
			h.wait("v1 stable", func() bool { return h.status("hello").Stable == v1 })
			cfg.Filters = []config.Filter{{Name: "hello", Rollout: config.Rollout{By: config.ByRequest, Percent: new(30)}}}
			if err := h.ctrl.Reconfigure(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}

			v2 := h.drop("hello", variant(hello, 2))
			h.wait("v2 sent to n1", func() bool { return h.planned("n1", v2) })
			if got := h.split("n1"); got != unsequenced {
				t.Fatalf("before n1 ACKed v2: routes split = %v, want %v", got, unsequenced)
			}
			h.respond("n1", "hello", v2, "")
			h.wait("the split's routes", func() bool { return h.split("n1") })
		})
	}
}

// split reports whether node's routes send a share of requests to a
// canary slot.
func (h *harness) split(node string) bool {
	snap, err := h.cache.GetSnapshot(node)
	if err != nil {
		return false
	}
	for _, r := range snap.GetResources(resourcev3.RouteType) {
		js, err := protojson.Marshal(r)
		if err == nil && strings.Contains(string(js), ".canary") && strings.Contains(string(js), "runtimeFraction") {
			return true
		}
	}
	return false
}

// TestPromotionSurvivesDroppedFleetEvents: while the controller's loop is
// held, the fleet registry's queue to it overflows and the ACK that
// completes a rollout is dropped, with nodes coming and going; once the
// loop runs again it resynchronises from the registry's state and promotes
// the candidate, instead of waiting for an event that will never come.
func TestPromotionSurvivesDroppedFleetEvents(t *testing.T) {
	var hold sync.Mutex // held by the test: the loop stops at its next look at the clock
	h := newHarnessWith(t, config.Default(), fleet.Config{MaxQueued: 4}, func(c *Config) {
		c.Now = func() time.Time { hold.Lock(); defer hold.Unlock(); return time.Now() }
	})
	h.connect("n1")
	h.connect("n2")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	h.respond("n1", "hello", v1, "")
	h.wait("n1's ACK counted and v1 sent to n2", func() bool {
		return testutil.ToFloat64(h.metrics.Acks.WithLabelValues("ecds")) >= 1 && h.planned("n2", v1)
	})

	hold.Lock()
	h.connect("n3") // the loop stops on it, planning n3
	for i := range 20 {
		node := fmt.Sprintf("flap%d", i)
		h.connect(node)
		h.disconnect(node)
	}
	h.disconnect("n3")
	h.respond("n2", "hello", v1, "")
	dropped := h.fleet.DroppedEvents()
	hold.Unlock()
	if dropped == 0 {
		t.Fatal("nothing dropped: the test did not overflow the queue")
	}
	h.wait("v1 promoted", func() bool { st := h.status("hello"); return st.Stable == v1 && st.Candidate == "" })
	if got := testutil.ToFloat64(h.metrics.ConnectedNodes); got != 2 {
		t.Fatalf("%v nodes connected after the resync, want 2", got)
	}
}

// TestOldModulesPruned: with keep_versions 1, a module that is neither the
// newest version, the stable one, the candidate nor marked bad leaves the
// store once a newer version is admitted; the history keeps its record.
func TestOldModulesPruned(t *testing.T) {
	cfg := config.Default()
	cfg.KeepVersions = 1
	h := newHarness(t, cfg, fleet.Config{})
	h.connect("n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	promote := func(d types.Digest) {
		t.Helper()
		h.respond("n1", "hello", d, "")
		h.wait(d.Short()+" promoted", func() bool { st := h.status("hello"); return st.Stable == d && st.Candidate == "" })
	}
	v1 := h.drop("hello", hello)
	promote(v1)
	v2 := h.drop("hello", variant(hello, 2))
	promote(v2)
	v3 := h.drop("hello", variant(hello, 3))
	h.respond("n1", "hello", v3, "wasm: proxy_on_vm_start failed")
	h.wait("v3 rolled back", func() bool { return len(h.status("hello").Bad) == 1 })
	v4 := h.drop("hello", variant(hello, 4))
	h.wait("v4 the candidate", func() bool { return h.status("hello").Candidate == v4 })

	for _, tt := range []struct {
		name   string
		d      types.Digest
		stored bool
	}{
		{"v1, superseded", v1, false},
		{"v2, stable", v2, true},
		{"v3, marked bad", v3, true},
		{"v4, candidate and newest", v4, true},
	} {
		if _, ok, err := h.store.Module(tt.d); ok != tt.stored || err != nil {
			t.Errorf("%s: stored = %v (err %v), want %v", tt.name, ok, err, tt.stored)
		}
	}
	if hist, err := h.store.History("hello"); err != nil || len(hist) != 4 {
		t.Fatalf("history: %d records (err %v), want 4", len(hist), err)
	}
}
