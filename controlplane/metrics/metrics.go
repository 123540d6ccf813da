// Package metrics defines wasmfleet's Prometheus metrics: pushes, ACKs,
// NACKs, admissions (with their trial-run time) and module fetches. Collectors are
// registered on a registry passed in, never the global one, so two control
// planes in one test process do not collide.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds every collector the control plane updates.
type Metrics struct {
	// Admissions counts admission results by filter and result
	// ("admitted", "rejected").
	Admissions *prometheus.CounterVec
	// AdmissionSeconds is how long admission took (with the trial run).
	AdmissionSeconds *prometheus.HistogramVec
	// SnapshotPushes counts snapshots set for nodes (a node whose snapshot
	// did not change is not counted: nothing is pushed to it).
	SnapshotPushes prometheus.Counter
	// SnapshotBuildSeconds is how long one fleet-wide reconcile took.
	SnapshotBuildSeconds prometheus.Histogram
	// Acks and Nacks count xDS responses by short type ("ecds", "lds", ...).
	Acks  *prometheus.CounterVec
	Nacks *prometheus.CounterVec
	// ConnectedNodes is the number of nodes with an open xDS stream.
	ConnectedNodes prometheus.Gauge
	// Rollbacks counts automatic and manual rollbacks by filter.
	Rollbacks *prometheus.CounterVec
	// ModuleFetches counts module server responses by HTTP status code.
	ModuleFetches *prometheus.CounterVec
	// ConfigReloads counts config file edits by result ("applied",
	// "refused": the file did not parse or validate).
	ConfigReloads *prometheus.CounterVec
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_admissions_total", Help: "Modules checked by admission, by filter and result.",
		}, []string{"filter", "result"}),
		AdmissionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmfleet_admission_seconds", Help: "Time to admit or reject a module, trial run included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"filter"}),
		SnapshotPushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmfleet_snapshot_pushes_total", Help: "Per-node snapshots set in the xDS cache.",
		}),
		SnapshotBuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wasmfleet_reconcile_seconds", Help: "Time to plan and build snapshots for the whole fleet.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		Acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_xds_acks_total", Help: "xDS responses acknowledged by nodes, by resource type.",
		}, []string{"type"}),
		Nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_xds_nacks_total", Help: "xDS responses rejected by nodes, by resource type.",
		}, []string{"type"}),
		ConnectedNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmfleet_connected_nodes", Help: "Nodes with an open xDS stream.",
		}),
		Rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_rollbacks_total", Help: "Candidate versions rolled back, by filter and cause.",
		}, []string{"filter", "cause"}),
		ModuleFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_module_fetches_total", Help: "Module server responses by HTTP status code.",
		}, []string{"code"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_config_reloads_total", Help: "Config file edits seen, by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.Admissions, m.AdmissionSeconds, m.SnapshotPushes, m.SnapshotBuildSeconds,
		m.Acks, m.Nacks, m.ConnectedNodes, m.Rollbacks, m.ModuleFetches, m.ConfigReloads)
	return m
}
