package standin

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
)

// serveAdmin starts the node's admin endpoint on cfg.AdminAddr, as Envoy's
// admin listener. It answers only what tests and operators read from it:
// the filters' own metrics in Prometheus text, at /stats/prometheus and
// /stats?format=prometheus. It stops when the node does.
func (n *node) serveAdmin() error {
	ln, err := net.Listen("tcp", n.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats/prometheus", n.prometheusStats)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") != "prometheus" {
			http.Error(w, "the stand-in serves /stats only as format=prometheus", http.StatusNotFound)
			return
		}
		n.prometheusStats(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	n.mu.Lock()
	n.adminAddr = ln.Addr().String()
	n.mu.Unlock()
	n.bg.Go(func() {
		<-n.ctx.Done()
		_ = srv.Close()
	})
	n.bg.Go(func() { _ = srv.Serve(ln) })
	return nil
}

// AdminAddr is where the admin endpoint listens; empty without one.
func (n *node) AdminAddr() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.adminAddr
}

// prometheusStats writes the metrics the node's Wasm filters defined, as
// Envoy's /stats/prometheus shows them (source/server/admin/prometheus_stats.cc):
// Envoy puts them in the custom namespace "wasmcustom"
// (source/extensions/common/wasm/context.cc, Context::defineMetric), and
// PrometheusStatsFormatter::metricName strips that namespace instead of
// adding "envoy_", sanitizes the rest and drops a name that would start
// with a digit. Every filter of the node shares the one set, as every
// plugin of an Envoy shares its stats store. SIMPLIFICATION: Envoy's own
// stats (envoy_...) are not modelled.
func (n *node) prometheusStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("content-type", "text/plain; charset=UTF-8")
	for _, m := range n.metrics.Snapshot() {
		writePrometheus(w, m)
	}
}

// writePrometheus writes one metric in Prometheus text format. Envoy writes
// untagged metrics with an empty label set ("name{} 3").
func writePrometheus(w io.Writer, m wasmhost.MetricSample) {
	name := promName(m.Name)
	if name == "" {
		return
	}
	switch m.Type {
	case wasmhost.MetricCounter, wasmhost.MetricGauge:
		fmt.Fprintf(w, "# TYPE %s %s\n%s{} %d\n", name, m.Type, name, m.Value)
	case wasmhost.MetricHistogram:
		fmt.Fprintf(w, "# TYPE %s histogram\n", name)
		for i, bound := range wasmhost.HistogramBounds {
			fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", name, strconv.FormatFloat(bound, 'g', -1, 64), m.Buckets[i])
		}
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum{} %d\n%s_count{} %d\n", name, m.Count, name, m.Sum, name, m.Count)
	}
}

// promName is a guest's metric name as Prometheus shows it: every byte
// outside [a-zA-Z0-9_] becomes '_'; empty when the result is empty or
// starts with a digit, which Envoy leaves out.
func promName(s string) string {
	name := strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return ""
	}
	return name
}
