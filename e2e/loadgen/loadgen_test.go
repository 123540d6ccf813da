package loadgen

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

const slot = "wasmfleet.slot.0"

// resources is a managed-mode config (or ECDS only) whose filter config
// carries tag, so each tag is a distinct ECDS version.
func resources(t testing.TB, managed bool, tag string) xdstest.Resources {
	ext := xdstest.Wasm(t, slot, xdstest.Filter{Name: "f", Config: tag, Inline: []byte("\x00asm\x01\x00\x00\x00")})
	rs := xdstest.Resources{xdstest.ExtensionType: {ext}}
	if managed {
		rs[xdstest.ClusterType] = []types.Resource{xdstest.Cluster(t, "upstream", "127.0.0.1:1")}
		rs[xdstest.ListenerType] = []types.Resource{xdstest.Listener(t, "ingress", 10000, slot)}
		rs[xdstest.RouteType] = []types.Resource{xdstest.Routes(t, "ingress", xdstest.Route{Prefix: "/", Cluster: "upstream", Slots: []string{slot}})}
	}
	return rs
}

func TestFleetConverges(t *testing.T) {
	tests := []struct {
		name    string
		managed bool
		exts    []string
		delta   bool
	}{
		{name: "managed: names come from the listeners", managed: true},
		{name: "ecds only: configured names", exts: []string{slot}},
		{name: "managed over delta xDS", managed: true, delta: true},
		{name: "ecds only over delta xDS", exts: []string{slot}, delta: true},
	}
	const n = 50
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := xdstest.Start(t)
			f := startFleet(t, Config{XDSAddr: srv.Addr, N: n, Extensions: tc.exts, NodesPerConn: 16, Delta: tc.delta})
			for i, tag := range []string{"v1", "v2"} {
				rs := resources(t, tc.managed, tag)
				version := xdstest.Version(t, rs[xdstest.ExtensionType])
				set := time.Now()
				for _, id := range f.NodeIDs() {
					srv.Set(t, id, rs)
				}
				wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
				at, err := f.WaitAcked(wctx, version)
				wcancel()
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				if len(at) != n {
					t.Fatalf("round %d: %d arrivals, want %d", i, len(at), n)
				}
				for id, a := range at {
					if a.Before(set) {
						t.Errorf("round %d: %s got %s at %v, before it was set at %v", i, version, id, a, set)
					}
				}
			}
		})
	}
}

// TestECDSBytesPerChange changes one of two filter configs and checks what
// ECDSBytes counts per node: under state of the world go-control-plane's
// snapshot cache re-sends both modules, under delta only the changed one,
// with a few bytes of framing (the floor for delta is 1.05x the module).
func TestECDSBytesPerChange(t *testing.T) {
	const moduleSize = 64 << 10
	module := func(tag byte) []byte {
		b := append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, moduleSize-8)...)
		b[len(b)-1] = tag
		return b
	}
	ecds := func(tag byte) xdstest.Resources {
		return xdstest.Resources{xdstest.ExtensionType: {
			xdstest.Wasm(t, "s0", xdstest.Filter{Name: "f0", Inline: module(0)}),
			xdstest.Wasm(t, "s1", xdstest.Filter{Name: "f1", Inline: module(tag)}),
		}}
	}
	tests := []struct {
		name     string
		delta    bool
		min, max float64 // bytes per node per change, in modules
	}{
		{name: "sotw", min: 2, max: 2.1},
		{name: "delta", delta: true, min: 1, max: 1.05},
	}
	const n = 4
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := xdstest.Start(t)
			f := startFleet(t, Config{XDSAddr: srv.Addr, N: n, Extensions: []string{"s0", "s1"}, Delta: tc.delta})
			var before int64
			for i := range 2 {
				rs := ecds(byte(i + 1))
				for _, id := range f.NodeIDs() {
					srv.Set(t, id, rs)
				}
				wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := f.WaitAcked(wctx, xdstest.Version(t, rs[xdstest.ExtensionType]))
				wcancel()
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					before = f.ECDSBytes()
				}
			}
			perNode := float64(f.ECDSBytes()-before) / n / moduleSize
			if perNode < tc.min || perNode > tc.max {
				t.Errorf("ECDS bytes per node for one changed module = %.3f modules, want within [%v, %v]", perNode, tc.min, tc.max)
			}
		})
	}
}

func TestWaitAckedReportsMissing(t *testing.T) {
	srv := xdstest.Start(t)
	f := startFleet(t, Config{XDSAddr: srv.Addr, N: 3, Extensions: []string{slot}})
	ids := f.NodeIDs()
	rs := resources(t, false, "v1")
	for _, id := range ids[:2] { // the third node never gets it
		srv.Set(t, id, rs)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer wcancel()
	at, err := f.WaitAcked(wctx, xdstest.Version(t, rs[xdstest.ExtensionType]))
	if !errors.Is(err, context.DeadlineExceeded) || len(at) != 2 {
		t.Fatalf("got %d arrivals, err %v; want 2 and a deadline error", len(at), err)
	}
	if _, ok := at[ids[2]]; ok {
		t.Errorf("%s reported without the version", ids[2])
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []error
	}{
		{name: "ok", cfg: Config{XDSAddr: "127.0.0.1:1", N: 1}},
		{name: "empty", cfg: Config{}, want: []error{ErrNoXDSAddr, ErrNoNodes}},
		{name: "negative n", cfg: Config{XDSAddr: "x:1", N: -1}, want: []error{ErrNoNodes}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (len(tc.want) == 0) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Validate() = %v, want it to include %v", err, w)
				}
			}
		})
	}
}

// BenchmarkConverge measures the time from setting a new ECDS version for
// every node to the last node's ACK, per fleet size.
func BenchmarkConverge(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			srv := xdstest.Start(b)
			f := startFleet(b, Config{XDSAddr: srv.Addr, N: n, Extensions: []string{slot}})
			i := 0
			for b.Loop() {
				i++
				rs := resources(b, false, fmt.Sprint("v", i))
				for _, id := range f.NodeIDs() {
					srv.Set(b, id, rs)
				}
				if _, err := f.WaitAcked(context.Background(), xdstest.Version(b, rs[xdstest.ExtensionType])); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startFleet runs a fleet of cfg until the test ends, and fails the test
// if the fleet stops with an error.
func startFleet(t testing.TB, cfg Config) *Fleet {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return f
}
