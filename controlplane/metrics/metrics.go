// Package metrics defines wasmfleet's Prometheus metrics: pushes, ACKs,
// NACKs, how long nodes take to answer a push, admissions (with their
// trial-run time), module fetches, each filter's rollout state and the
// build. Collectors are registered on a registry passed in, never the
// global one, so two control planes in one test process do not collide.
package metrics

import (
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
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
	// Acks and Nacks count filter versions nodes accepted or rejected over
	// ECDS: one per node, filter and digest (type "ecds"), not per response.
	Acks  *prometheus.CounterVec
	Nacks *prometheus.CounterVec
	// ResponseSeconds is how long a node took from the first response that
	// carried a new version of a resource type until it ACKed or NACKed
	// that version, by short type and result ("ack", "nack"). For ECDS
	// with remote code an Envoy ACKs before it fetches the module (unless
	// nack_on_code_cache_miss is set); inline code is loaded before the ACK.
	// A push replaced before its answer is not observed, so a node that
	// never keeps up with frequent pushes does not show here (its status's
	// last answer grows old instead).
	ResponseSeconds *prometheus.HistogramVec
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
			Name: "wasmfleet_xds_acks_total", Help: "Filter versions accepted by nodes over ECDS (one per node, filter and digest), by type.",
		}, []string{"type"}),
		Nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmfleet_xds_nacks_total", Help: "Filter versions rejected by nodes over ECDS (one per node, filter and digest), by type.",
		}, []string{"type"}),
		ResponseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmfleet_xds_response_seconds",
			Help: "Time from sending a node a new version of a resource type until it ACKed or NACKed it, by type and result.",
			// 1 ms (a local ACK) to 60 s (a slow module fetch and load).
			Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 17),
		}, []string{"type", "result"}),
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
		m.Acks, m.Nacks, m.ResponseSeconds, m.ConnectedNodes, m.Rollbacks, m.ModuleFetches, m.ConfigReloads)
	return m
}

// ObserveResponse records how long a node took to answer a new version of
// typeURL, and whether it rejected it.
func (m *Metrics) ObserveResponse(typeURL string, nack bool, d time.Duration) {
	result := "ack"
	if nack {
		result = "nack"
	}
	m.ResponseSeconds.WithLabelValues(shortType(typeURL), result).Observe(d.Seconds())
}

// shortType names an xDS type URL as the type labels do ("lds", "rds",
// "cds", "eds", "ecds", "sds", "rtds"). Type URLs come from the nodes, so
// any other is "other": a label's values must stay few.
func shortType(typeURL string) string {
	switch typeURL {
	case resource.ListenerType:
		return "lds"
	case resource.RouteType:
		return "rds"
	case resource.ClusterType:
		return "cds"
	case resource.EndpointType:
		return "eds"
	case resource.ExtensionConfigType:
		return "ecds"
	case resource.SecretType:
		return "sds"
	case resource.RuntimeType:
		return "rtds"
	}
	return "other"
}
