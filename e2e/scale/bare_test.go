package scale_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
	"github.com/wasmfleet/wasmfleet/e2e/scale"
)

// BenchmarkFleetConvergenceBare is the baseline BenchmarkFleetConvergenceRemote
// is held against: go-control-plane's own snapshot cache and ADS server,
// nothing of wasmfleet's in the path (no watcher, admission, rollout or
// sequencing), serving what wasmfleet's snapshot builder makes for the same
// three filters with remote code, to the same child-process fleet. Per
// iteration one filter's module changes (a new sha256; the nodes fetch
// nothing) and one snapshot, shared by every node, is set; converge runs
// from then until every node ACKed. Run both in one invocation to compare:
//
//	go test -run '^$' -bench 'FleetConvergence(Remote|Bare)$/^nodes=1000$' -benchtime 5x ./e2e/scale/
//
// wasmfleet's converge starts at the file write, so it also holds the
// watcher's wait (a few milliseconds once the file is closed), admission
// and the sequencing round trip that a bare server skips; its
// from-admitted starts after admission.
func BenchmarkFleetConvergenceBare(b *testing.B) {
	for _, tc := range []struct{ n, perConn int }{{1000, 1}, {10000, 10}} {
		b.Run(fmt.Sprintf("nodes=%d", tc.n), func(b *testing.B) { bareConvergence(b, tc.n, tc.perConn) })
	}
}

// fleetHash puts every node in one snapshot group, as a bare control plane
// serving one configuration to its fleet would.
type fleetHash struct{}

func (fleetHash) ID(*core.Node) string { return "fleet" }

func bareConvergence(b *testing.B, n, perConn int) {
	if _, err := scale.RaiseFDLimit(); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	in := snapshot.Input{Mode: cfg.Mode, Managed: cfg.Managed, ModuleURL: "http://" + cfg.Listen.Modules}
	assign := types.Assignment{}
	for _, name := range append([]string{filterName}, steadyFilters...) {
		in.Filters = append(in.Filters, config.Filter{Name: name, Code: config.CodeRemote}.WithDefaults())
		assign[name] = types.FilterVersions{Stable: types.DigestOf([]byte(name))}
	}
	nb, err := snapshot.NewBuilder().For(in)
	if err != nil {
		b.Fatal(err)
	}
	snaps := cache.NewSnapshotCache(true, fleetHash{}, nil)
	set := func() string {
		b.Helper()
		s, err := nb.Build(assign)
		if err != nil {
			b.Fatal(err)
		}
		if err := snaps.SetSnapshot(context.Background(), "fleet", s); err != nil {
			b.Fatal(err)
		}
		return s.GetVersion(resource.ExtensionConfigType)
	}
	v0 := set()
	fleet := startFleet(b, xdstest.Serve(b, snaps).Addr, n, perConn, v0)

	var converge, cpCPU samples
	for i := 0; b.Loop(); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
		assign[filterName] = types.FilterVersions{Stable: types.DigestOf(fmt.Appendf(nil, "%s %d", filterName, i))}
		cpu0 := cpuTime(b)
		start := time.Now()
		s, err := fleet.WaitAcked(ctx, set())
		if err != nil {
			b.Fatalf("%v (%d of %d acked)", err, s.Acked, n)
		}
		cpCPU = append(cpCPU, cpuTime(b)-cpu0)
		converge = append(converge, s.Last.Sub(start))
		cancel()
	}
	converge.report(b, "converge")
	cpCPU.report(b, "cp-cpu")
}
