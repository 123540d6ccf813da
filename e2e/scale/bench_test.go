package scale_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/scale"
)

// Metric names read from the control plane's registry.
const (
	reconcileMetric = "wasmfleet_reconcile_seconds"
	admissionMetric = "wasmfleet_admission_seconds"
)

// measureTimeout bounds one measured rollout; far above the floors, so a
// slow machine reports slow numbers instead of failing.
const measureTimeout = 2 * time.Minute

// samples collects one duration per iteration and reports their median
// and maximum in milliseconds.
type samples []time.Duration

func (s samples) report(b *testing.B, what string) {
	if len(s) == 0 {
		return
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	b.ReportMetric(ms(sorted[len(sorted)/2]), what+"-p50-ms")
	b.ReportMetric(ms(sorted[len(sorted)-1]), what+"-max-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFileToSnapshot measures, per iteration, a 2.4 MB module never
// seen before written to the watched directory until (ecds) one connected
// node receives the ECDS version that runs it, (status) the admin API shows
// it as the filter's candidate or stable version and (stable) the admin API
// shows it promoted after the node accepted it. The watcher's wait, reading,
// admission (trial run included), storing, the reconcile and the send are
// all part of the path; admission-mean-ms and reconcile-mean-ms are the
// means of the control plane's own histograms over the run (the reconciles
// include the promotions'). The default debounce applies throughout; what
// ends the watcher's wait depends on how the file is written: write=close
// writes it in place and closes it (os.WriteFile, cp), and the close ends
// the wait; write=rename writes it beside and renames it into place
// (editors, wasmfleet build), and the rename ends it; write=open keeps it
// open until the module arrived (a slow copy), so only the quiet period
// ends the wait and the path holds the whole default debounce.
//
//	go test -run '^$' -bench FileToSnapshot -benchtime 20x ./e2e/scale/
func BenchmarkFileToSnapshot(b *testing.B) {
	for _, mode := range []string{"close", "rename", "open"} {
		b.Run("write="+mode, func(b *testing.B) {
			p := startPlane(b, config.DefaultDebounce)
			p.rollOut(b)
			adm0, admSum0 := p.histogram(b, admissionMetric)
			rc0, rcSum0 := p.histogram(b, reconcileMetric)
			var ecds, status, stable samples
			var stalls int
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
				d, start, done := p.writeBy(b, mode)
				seen := make(chan time.Time, 1)
				go func() {
					at, err := p.waitStatus(ctx, filterName, d, false)
					if err != nil {
						b.Error(err)
					}
					seen <- at
				}()
				a, err := p.probe.WaitDigest(ctx, d)
				if err != nil {
					b.Fatal(err)
				}
				done()
				ecds = append(ecds, a.At.Sub(start))
				status = append(status, (<-seen).Sub(start))
				// The candidate is promoted once the node accepted it. If
				// that never happens, say why and go on: the next module
				// replaces the stuck candidate.
				if at, err := p.waitPromoted(ctx, filterName, d, a.Version); err != nil {
					stalls++
					b.Log(err)
				} else {
					stable = append(stable, at.Sub(start))
				}
				cancel()
			}
			b.ReportMetric(float64(stalls), "promotion-stalls")
			ecds.report(b, "ecds")
			status.report(b, "status")
			stable.report(b, "stable")
			if adm, admSum := p.histogram(b, admissionMetric); adm > adm0 {
				b.ReportMetric(1000*(admSum-admSum0)/float64(adm-adm0), "admission-mean-ms")
			}
			if rc, rcSum := p.histogram(b, reconcileMetric); rc > rc0 {
				b.ReportMetric(1000*(rcSum-rcSum0)/float64(rc-rc0), "reconcile-mean-ms")
			}
		})
	}
}

// writeBy writes a module the control plane has never seen as filterName's
// module in the given way (see BenchmarkFileToSnapshot) and returns its
// digest, the time just before the write began, and what to call once the
// module arrived (closing the file, for "open").
func (p *plane) writeBy(tb testing.TB, mode string) (types.Digest, time.Time, func()) {
	tb.Helper()
	if mode == "close" {
		d, start := p.writeVariant(tb)
		return d, start, func() {}
	}
	mod := p.next()
	path := filepath.Join(p.watchDir, filterName+".wasm")
	start := time.Now()
	done := func() {}
	switch mode {
	case "rename":
		tmp := filepath.Join(p.watchDir, "."+filterName+".wasm.tmp")
		if err := os.WriteFile(tmp, mod, 0o644); err != nil {
			tb.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			tb.Fatal(err)
		}
	case "open":
		f, err := os.Create(path)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := f.Write(mod); err != nil {
			tb.Fatal(err)
		}
		done = func() {
			if err := f.Close(); err != nil {
				tb.Fatal(err)
			}
		}
	default:
		tb.Fatalf("unknown write mode %q", mode)
	}
	return types.DigestOf(mod), start, done
}

// BenchmarkFleetConvergence measures a fleet of loadgen nodes in a child
// process converging on a new module with the default delivery (module
// bytes inline in ECDS), three filters subscribed and one changed: per
// iteration, from the file write to the last node's ACK (converge), to the
// first node's (first), and the spread between them (fanout). It also
// reports the ECDS bytes each node received per change (ecds-B/node:
// whatever the control plane sends between two changes, the promotion's
// re-send included), the control plane's peak resident memory while the
// fleet connected (connect-peak-rss-MiB) and during a change
// (peak-rss-MiB; the control plane runs in the benchmark's process, the
// fleet does not), its heap per connected node (HeapInuse after connecting
// minus before, over N), the CPU the control plane and the fleet each
// spent per change until the last ACK, and the mean fleet-wide reconcile
// (wasmfleet_reconcile_seconds: two per rollout, one when the module is
// admitted and one when it is promoted). from-admitted runs from the end of
// admission (the trial run passed; wasmfleet_admission_seconds counts it)
// to the last node's ACK: what is held against a bare server's converge
// once the module is known to be good.
//
// ecds-modules/node is ecds-B/node over the size of the module changed.
//
// The 10,000-node fleet multiplexes 10 nodes per gRPC connection (1,000
// connections each side) to stay well inside RLIMIT_NOFILE; the 1,000-node
// fleet uses one connection per node, as Envoys would.
//
//	go test -run '^$' -bench '^BenchmarkFleetConvergence$/^nodes=1000$' -benchtime 5x ./e2e/scale/
//	go test -run '^$' -bench '^BenchmarkFleetConvergence$/^nodes=10000$' -benchtime 3x ./e2e/scale/
func BenchmarkFleetConvergence(b *testing.B) {
	for _, tc := range []struct{ n, perConn int }{{1000, 1}, {10000, 10}} {
		b.Run(fmt.Sprintf("nodes=%d", tc.n), func(b *testing.B) {
			fleetConvergence(b, scale.FleetSpec{N: tc.n, NodesPerConn: tc.perConn}, planeConfig{debounce: config.DefaultDebounce})
		})
	}
}

// BenchmarkFleetConvergenceDelta is BenchmarkFleetConvergence with the
// fleet on delta xDS (Envoy's api_type: DELTA_GRPC): a node is sent the
// changed filter config alone, so ecds-modules/node should stay near 1
// (the floor is 1.05). The probe stays on state of the world. nodes=100 is
// a quick check; the larger sizes are BenchmarkFleetConvergence's.
//
//	go test -run '^$' -bench '^BenchmarkFleetConvergenceDelta$/^nodes=1000$' -benchtime 5x ./e2e/scale/
func BenchmarkFleetConvergenceDelta(b *testing.B) {
	for _, tc := range []struct{ n, perConn int }{{100, 1}, {1000, 1}, {10000, 10}} {
		b.Run(fmt.Sprintf("nodes=%d", tc.n), func(b *testing.B) {
			fleetConvergence(b, scale.FleetSpec{N: tc.n, NodesPerConn: tc.perConn, Delta: true}, planeConfig{debounce: config.DefaultDebounce})
		})
	}
}

// BenchmarkFleetConvergenceRemote is BenchmarkFleetConvergence with remote
// code: ECDS carries the module's URL and sha256, and the nodes fetch
// nothing (Envoy would fetch once per module, on a first config only).
//
//	go test -run '^$' -bench '^BenchmarkFleetConvergenceRemote$/^nodes=1000$' -benchtime 5x ./e2e/scale/
func BenchmarkFleetConvergenceRemote(b *testing.B) {
	for _, tc := range []struct{ n, perConn int }{{1000, 1}, {10000, 10}} {
		b.Run(fmt.Sprintf("nodes=%d", tc.n), func(b *testing.B) {
			fleetConvergence(b, scale.FleetSpec{N: tc.n, NodesPerConn: tc.perConn}, planeConfig{debounce: config.DefaultDebounce, code: config.CodeRemote})
		})
	}
}

// BenchmarkFleetConvergenceTLS is BenchmarkFleetConvergence at 1,000 nodes,
// one connection each, plaintext and over mTLS (a client certificate per
// node, node id checked against it on every stream): connect-s includes
// every handshake; converge says what TLS adds to a push.
func BenchmarkFleetConvergenceTLS(b *testing.B) {
	for _, withTLS := range []bool{false, true} {
		b.Run(fmt.Sprintf("nodes=1000/tls=%v", withTLS), func(b *testing.B) {
			pc := planeConfig{debounce: config.DefaultDebounce}
			if withTLS {
				pc.caDir = b.TempDir()
			}
			fleetConvergence(b, scale.FleetSpec{N: 1000, NodesPerConn: 1}, pc)
		})
	}
}

// fleetConvergence runs the fleet spec describes (its address and CA
// directory filled in from the plane) against a plane run with pc.
func fleetConvergence(b *testing.B, spec scale.FleetSpec, pc planeConfig) {
	if _, err := scale.RaiseFDLimit(); err != nil {
		b.Fatal(err)
	}
	p := startPlaneConfig(b, pc)
	_, v0 := p.rollOut(b)

	n := spec.N
	spec.XDSAddr, spec.TLSCADir = p.addrs.XDS, pc.caDir
	heap0 := heapInuse()
	resetPeakRSS(b)
	connect := time.Now()
	fleet := startFleetSpec(b, spec, v0)
	connectTime := time.Since(connect)
	connectRSS := peakRSS(b)
	heap1 := heapInuse()

	s0, err := fleet.WaitAcked(context.Background(), v0)
	if err != nil {
		b.Fatal(err)
	}
	childCPU, ecdsBytes := s0.CPU, s0.ECDSBytes
	var converge, first, fanout, fromAdmitted, cpCPU, fleetCPU samples
	var perNode []float64
	var rss uint64
	var reconciles, stalls uint64
	var reconcileSecs float64
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
		rc0, rs0 := p.histogram(b, reconcileMetric)
		cpu0 := cpuTime(b)
		resetPeakRSS(b)
		adm0, _ := p.histogram(b, admissionMetric)
		admitted := p.admittedAfter(ctx, adm0)
		d, start := p.writeVariant(b)
		a, err := p.probe.WaitDigest(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		s, err := fleet.WaitAcked(ctx, a.Version)
		if err != nil {
			b.Fatalf("%v (%d of %d acked)", err, s.Acked, n)
		}
		cpCPU = append(cpCPU, cpuTime(b)-cpu0)
		if !slices.Contains(s.Digests, d) {
			b.Fatalf("the fleet acked %s, which runs %v, not the module written (%s)", a.Version, s.Digests, d)
		}
		// Promotion is the rollout's last fleet-wide reconcile:
		// wait for it, so the next iteration starts from a quiet
		// control plane and both reconciles are counted. If it
		// never comes, say why and go on: the next module replaces
		// the stuck candidate.
		if !p.waitHistogram(b, reconcileMetric, rc0+2, promoteTimeout) {
			stalls++
			nodes, err := p.unresolved(ctx, a.Version, d)
			b.Logf("%s not promoted within %v after every node acked %s; %d nodes' ACKs not resolved to it by the fleet registry: %q (err %v)",
				d.Short(), promoteTimeout, a.Version, len(nodes), nodes[:min(len(nodes), 5)], err)
		}
		rss = max(rss, peakRSS(b))
		rc1, rs1 := p.histogram(b, reconcileMetric)
		reconciles += rc1 - rc0
		reconcileSecs += rs1 - rs0
		converge = append(converge, s.Last.Sub(start))
		first = append(first, s.First.Sub(start))
		fanout = append(fanout, s.Last.Sub(s.First))
		if at := <-admitted; !at.IsZero() {
			fromAdmitted = append(fromAdmitted, s.Last.Sub(at))
		}
		fleetCPU = append(fleetCPU, s.CPU-childCPU)
		perNode = append(perNode, float64(s.ECDSBytes-ecdsBytes)/float64(n))
		childCPU, ecdsBytes = s.CPU, s.ECDSBytes
		cancel()
	}
	// Reported after the loop: b.Loop drops metrics reported before it.
	b.ReportMetric(connectTime.Seconds(), "connect-s")
	b.ReportMetric(float64(connectRSS)/(1<<20), "connect-peak-rss-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(n), "heap-B/node")
	b.ReportMetric(float64(heap1)/(1<<20), "heap-MiB")
	if len(perNode) > 0 {
		slices.Sort(perNode)
		b.ReportMetric(perNode[len(perNode)/2], "ecds-B/node")
		b.ReportMetric(perNode[len(perNode)/2]/float64(len(p.module)), "ecds-modules/node")
	}
	converge.report(b, "converge")
	first.report(b, "first")
	fanout.report(b, "fanout")
	fromAdmitted.report(b, "from-admitted")
	cpCPU.report(b, "cp-cpu")
	fleetCPU.report(b, "fleet-cpu")
	b.ReportMetric(float64(stalls), "promotion-stalls")
	if reconciles > 0 {
		b.ReportMetric(1000*reconcileSecs/float64(reconciles), "reconcile-mean-ms")
		b.ReportMetric(float64(reconciles)/float64(len(converge)), "reconciles/op")
	}
}

// admittedAfter polls the admission histogram until it counts more than n
// and sends when it first did, or the zero time if ctx ends first.
func (p *plane) admittedAfter(ctx context.Context, n uint64) <-chan time.Time {
	at := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			if count, _, err := p.gatherHistogram(admissionMetric); err == nil && count > n {
				at <- time.Now()
				return
			}
			time.Sleep(pollEvery)
		}
		at <- time.Time{}
	}()
	return at
}

func resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := scale.ResetPeakRSS(); err != nil {
		b.Fatal(err)
	}
}

func peakRSS(b *testing.B) uint64 {
	b.Helper()
	n, err := scale.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// heapInuse is HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	d, err := scale.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkEnableFilter measures the round trip the make-before-break
// sequencing adds to a change that enables a slot: per iteration, a filter
// the node does not run yet is written to the watched directory, and the
// probe (a node that answers routes and filter configs as Envoy does)
// reports (ecds) when the slot config carrying it arrived and (routes) when
// the routes that enable it arrived, which the control plane sends only
// after the node's ACK of the slot. The filter's file is then removed and
// (disable) is when routes without it arrived: disabling goes routes first,
// with no wait.
//
//	go test -run '^$' -bench EnableFilter -benchtime 10x ./e2e/scale/
func BenchmarkEnableFilter(b *testing.B) {
	p := startPlane(b, config.DefaultDebounce)
	p.rollOut(b)
	const extra = "extra"
	enables := func(v string) bool { return strings.Contains(v, ":"+extra) }
	var ecds, routes, gap, disable samples
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
		p.written++
		module := scale.Variant(p.module, p.written)
		d := types.DigestOf(module)
		path := filepath.Join(p.watchDir, extra+".wasm")
		start := time.Now()
		if err := os.WriteFile(path, module, 0o644); err != nil {
			b.Fatal(err)
		}
		a, err := p.probe.WaitDigest(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		r, err := p.probe.WaitRoutes(ctx, start, enables)
		if err != nil {
			b.Fatal(err)
		}
		ecds = append(ecds, a.At.Sub(start))
		routes = append(routes, r.At.Sub(start))
		gap = append(gap, r.At.Sub(a.At))
		removed := time.Now()
		if err := os.Remove(path); err != nil {
			b.Fatal(err)
		}
		off, err := p.probe.WaitRoutes(ctx, removed, func(v string) bool { return !enables(v) })
		if err != nil {
			b.Fatal(err)
		}
		disable = append(disable, off.At.Sub(removed))
		cancel()
	}
	ecds.report(b, "ecds")
	routes.report(b, "routes")
	gap.report(b, "ack-gap")
	disable.report(b, "disable")
}
