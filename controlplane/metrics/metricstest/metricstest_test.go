package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, []string{"type", "result"})
	reg.MustRegister(h)
	h.WithLabelValues("ecds", "ack").Observe(1)
	h.WithLabelValues("ecds", "ack").Observe(2)
	h.WithLabelValues("ecds", "nack").Observe(4)
	h.WithLabelValues("rds", "ack").Observe(8)
	tests := []struct {
		name      string
		metric    string
		labels    map[string]string
		wantCount uint64
		wantSum   float64
	}{
		{name: "one series", metric: "h_seconds", labels: map[string]string{"type": "ecds", "result": "ack"}, wantCount: 2, wantSum: 3},
		{name: "summed over a label left out", metric: "h_seconds", labels: map[string]string{"type": "ecds"}, wantCount: 3, wantSum: 7},
		{name: "every series", metric: "h_seconds", wantCount: 4, wantSum: 15},
		{name: "no such series", metric: "h_seconds", labels: map[string]string{"type": "lds"}},
		{name: "no such metric", metric: "other_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count, sum := Histogram(t, reg, tt.metric, tt.labels)
			if count != tt.wantCount || sum != tt.wantSum {
				t.Errorf("count, sum = %d, %v; want %d, %v", count, sum, tt.wantCount, tt.wantSum)
			}
		})
	}
}
