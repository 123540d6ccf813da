package scale_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wasmfleet/wasmfleet/controlplane"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/scale"
	"github.com/wasmfleet/wasmfleet/internal/certgen"
	"github.com/wasmfleet/wasmfleet/internal/cptest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const (
	// filterPkg is the real filter every benchmark rolls out: the logging
	// filter, ~2.4 MB compiled, which accepts an empty configuration.
	filterPkg = "filters/logging"
	// filterName is the filter's name in the watched directory.
	filterName = "bench"
	// pollEvery is how often the admin API or the metrics are polled.
	pollEvery = 2 * time.Millisecond
	// setupTimeout bounds waits outside the measured path.
	setupTimeout = 2 * time.Minute
	// connectPerNode is added to setupTimeout for each node of a fleet that
	// connects: every node is sent every filter's module when it connects
	// (three 2.4 MB modules inline, 7.3 MB), and the load generator spends
	// ~75 ms of CPU receiving that on our shared 2-core machines.
	connectPerNode = 200 * time.Millisecond
)

// steadyFilters are the filters every plane runs besides filterName: written
// once when the plane starts and never changed, as most of a fleet's
// filters are during any one rollout.
var steadyFilters = []string{"steady1", "steady2"}

// plane is an in-process control plane on 127.0.0.1:0 with temporary
// directories and a probe node, plus the module it rolls out.
type plane struct {
	addrs    controlplane.Addrs
	watchDir string
	reg      *prometheus.Registry
	probe    *scale.Probe
	module   []byte
	written  uint64 // variants written so far
}

// planeConfig says which control plane to run.
type planeConfig struct {
	debounce time.Duration
	// code is how modules reach the nodes; empty is the default (inline).
	code config.Code
	// caDir, when set, gets a lab CA and mutual TLS on xDS (see
	// startPlaneConfig).
	caDir string
}

// startPlane runs a control plane with the default delivery and the given
// debounce until the test ends.
func startPlane(tb testing.TB, debounce time.Duration) *plane {
	tb.Helper()
	return startPlaneConfig(tb, planeConfig{debounce: debounce})
}

// startPlaneConfig runs a control plane with three filters (filterName and
// steadyFilters) until the test ends. It logs at info level as JSON into
// io.Discard, so logging costs what it costs in production without filling
// the test output.
//
// With pc.caDir, xDS uses mutual TLS: a lab CA is written there (ca.crt,
// ca.key, server.crt for 127.0.0.1), and the probe connects with a
// certificate for its node id.
func startPlaneConfig(tb testing.TB, pc planeConfig) *plane {
	tb.Helper()
	dir := tb.TempDir()
	cfg := config.Default()
	cfg.Listen = config.Listen{XDS: "127.0.0.1:0", Modules: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	cfg.WatchDir = filepath.Join(dir, "filters.d")
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Limits.Debounce = config.Duration(pc.debounce)
	// Three modules admitted at once under -race on two shared cores take
	// longer than the default trial timeout, which would reject them. The
	// limit only ever rejects: it does not change what is measured.
	cfg.Limits.TrialTimeout = config.Duration(time.Minute)
	cfg.Filters = nil
	for _, name := range append([]string{filterName}, steadyFilters...) {
		cfg.Filters = append(cfg.Filters, config.Filter{Name: name, Code: pc.code})
	}
	if err := os.MkdirAll(cfg.WatchDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	caDir := pc.caDir
	var probeTLS *tls.Config
	if caDir != "" {
		ca, err := certgen.NewCA("scale CA", time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		pair, err := ca.Pair()
		if err != nil {
			tb.Fatal(err)
		}
		if _, _, err := pair.Write(caDir, "ca"); err != nil {
			tb.Fatal(err)
		}
		srv, err := ca.Server([]string{"127.0.0.1"}, time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		certFile, keyFile, err := srv.Write(caDir, "server")
		if err != nil {
			tb.Fatal(err)
		}
		cfg.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: filepath.Join(caDir, "ca.crt"), NodeIdentity: config.DefaultNodeIdentity}
		tlsFor, err := scale.NodeTLS(caDir, "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		if probeTLS, err = tlsFor(scale.DefaultProbeNode); err != nil {
			tb.Fatal(err)
		}
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	p := &plane{watchDir: cfg.WatchDir, reg: prometheus.NewRegistry(), module: wasmtest.Module(tb, filterPkg)}
	cp := cptest.Start(tb, controlplane.Options{Config: cfg, Log: log, Registry: p.reg})
	p.addrs = cp.Addrs()
	// In managed mode the xDS cache answers only a node that asks for
	// every filter config it holds, as Envoy's listeners do: all slots.
	var slots []string
	for i := range cfg.Managed.FilterSlots {
		slots = append(slots, snapshot.SlotName(i, false), snapshot.SlotName(i, true))
	}
	var err error
	p.probe, err = scale.NewProbe(scale.ProbeConfig{XDSAddr: p.addrs.XDS, Extensions: slots, TLS: probeTLS,
		Routes: []string{snapshot.RouteConfigName(cfg.Managed.Listeners[0].Name)}})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	probeDone := make(chan error, 1)
	go func() { probeDone <- p.probe.Start(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-probeDone; err != nil {
			tb.Errorf("probe: %v", err)
		}
	})
	return p
}

// writeVariant writes a module the control plane has never seen as
// bench.wasm and returns its digest and the time just before the write.
func (p *plane) writeVariant(tb testing.TB) (types.Digest, time.Time) {
	tb.Helper()
	return p.write(tb, filterName)
}

// next returns a module the control plane has never seen.
func (p *plane) next() []byte {
	p.written++
	return scale.Variant(p.module, p.written)
}

// write writes a module the control plane has never seen as NAME.wasm.
func (p *plane) write(tb testing.TB, name string) (types.Digest, time.Time) {
	tb.Helper()
	b := p.next()
	start := time.Now()
	if err := os.WriteFile(filepath.Join(p.watchDir, name+".wasm"), b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return types.DigestOf(b), start
}

// rollOut writes a new variant of every filter and waits until the probe
// has them all and the controller has promoted each to stable; it returns
// filterName's module and the ECDS version.
func (p *plane) rollOut(tb testing.TB) (types.Digest, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	digests := map[string]types.Digest{}
	for _, name := range append([]string{filterName}, steadyFilters...) {
		digests[name], _ = p.write(tb, name)
	}
	all := slices.Collect(maps.Values(digests))
	a, err := p.probe.WaitDigest(ctx, all...)
	if err != nil {
		tb.Fatal(err)
	}
	for name, d := range digests {
		if _, err := p.waitPromoted(ctx, name, d, a.Version); err != nil {
			tb.Fatal(err)
		}
	}
	return digests[filterName], a.Version
}

// promoteTimeout bounds the wait for a candidate's promotion once every
// node has acked it; it takes well under a second when it happens.
const promoteTimeout = 20 * time.Second

// waitPromoted waits until the admin API shows d, carried by ECDS version,
// as the filter's stable version and returns when it first did. If that
// does not happen within promoteTimeout, the error names the nodes whose
// ACK the fleet registry did not resolve to d, the usual reason.
func (p *plane) waitPromoted(ctx context.Context, filter string, d types.Digest, version string) (time.Time, error) {
	wctx, cancel := context.WithTimeout(ctx, promoteTimeout)
	defer cancel()
	at, err := p.waitStatus(wctx, filter, d, true)
	if err == nil {
		return at, nil
	}
	nodes, uerr := p.unresolved(ctx, version, d)
	err = fmt.Errorf("%s not promoted within %v: %w; nodes whose ACK of %s the fleet registry did not resolve to it: %q",
		d.Short(), promoteTimeout, err, version, nodes[:min(len(nodes), 5)])
	return time.Time{}, errors.Join(err, uerr)
}

// status fetches the filters from the admin API.
func (p *plane) status(ctx context.Context) (api.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addrs.Admin+"/api/v1/status", nil)
	if err != nil {
		return api.Status{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return api.Status{}, err
	}
	defer resp.Body.Close()
	var st api.Status
	if resp.StatusCode != http.StatusOK {
		return st, errors.New("admin status: " + resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitStatus polls the admin API until the filter shows d as its candidate
// or stable version (or, with stable, as its stable version only) and
// returns when it first did.
func (p *plane) waitStatus(ctx context.Context, filter string, d types.Digest, stable bool) (time.Time, error) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		st, err := p.status(ctx)
		if err != nil {
			return time.Time{}, err
		}
		seen := time.Now()
		i := slices.IndexFunc(st.Filters, func(f api.Filter) bool { return f.Name == filter })
		if i >= 0 && (st.Filters[i].Stable == d || (!stable && st.Filters[i].Candidate == d)) {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-tick.C:
		}
	}
}

// histogram returns the observation count and sum of a histogram (summed
// over its label values) from the control plane's registry.
func (p *plane) histogram(tb testing.TB, name string) (uint64, float64) {
	tb.Helper()
	n, sum, err := p.gatherHistogram(name)
	if err != nil {
		tb.Fatal(err)
	}
	return n, sum
}

// gatherHistogram is histogram for goroutines other than the test's, which
// may not call Fatal.
func (p *plane) gatherHistogram(name string) (uint64, float64, error) {
	fams, err := p.reg.Gather()
	if err != nil {
		return 0, 0, err
	}
	var n uint64
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return n, sum, nil
}

// waitHistogram polls until histogram name has at least n observations
// or timeout passes, and says which.
func (p *plane) waitHistogram(tb testing.TB, name string, n uint64, timeout time.Duration) bool {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got, _ := p.histogram(tb, name); got >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// unresolved lists the nodes whose ECDS ACK of version the fleet registry
// holds but did not resolve to module d: the registry cannot tell that
// they run d, so the controller never sees every node accept it.
func (p *plane) unresolved(ctx context.Context, version string, d types.Digest) ([]string, error) {
	st, err := p.status(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range st.Nodes {
		acked := slices.ContainsFunc(n.Types, func(t api.TypeExchange) bool {
			return t.TypeURL == dataplane.ExtensionType && t.AckedVersion == version
		})
		runs := slices.ContainsFunc(n.Filters, func(f api.NodeFilter) bool {
			return f.Acked.Stable == d || f.Acked.Candidate == d
		})
		if acked && !runs {
			out = append(out, n.ID)
		}
	}
	return out, nil
}

// startFleet runs n loadgen nodes in a child process until the test ends
// and waits until every one has ECDS version.
func startFleet(tb testing.TB, addr string, n, perConn int, version string) *scale.RemoteFleet {
	tb.Helper()
	return startFleetSpec(tb, scale.FleetSpec{XDSAddr: addr, N: n, NodesPerConn: perConn}, version)
}

// startFleetSpec is startFleet for any fleet spec: over mTLS, over delta xDS.
func startFleetSpec(tb testing.TB, spec scale.FleetSpec, version string) *scale.RemoteFleet {
	tb.Helper()
	f, err := scale.NewRemoteFleet(scale.RemoteConfig{Fleet: spec, Stderr: os.Stderr})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Start(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("fleet: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, setupTimeout+time.Duration(spec.N)*connectPerNode)
	defer wcancel()
	if s, err := f.WaitAcked(wctx, version); err != nil {
		tb.Fatalf("fleet of %d did not converge on %s: %v (%d acked)", spec.N, version, err, s.Acked)
	}
	return f
}
