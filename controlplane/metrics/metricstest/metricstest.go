package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram returns the sample count and sum of the histogram series name
// whose labels include every pair in labels. A series that was never
// observed counts as zero.
func Histogram(tb testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (count uint64, sum float64) {
	tb.Helper()
	families, err := g.Gather()
	if err != nil {
		tb.Fatalf("metricstest: gather: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
					matched++
				}
			}
			if matched == len(labels) {
				count += m.GetHistogram().GetSampleCount()
				sum += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return count, sum
}
