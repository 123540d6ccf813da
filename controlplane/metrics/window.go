package metrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterPushWindow registers the xDS push window's gauges, read from
// window at each scrape: wasmfleet_xds_push_window_in_flight (large
// responses sent and not yet answered) and wasmfleet_xds_push_window_queued
// (nodes waiting for a slot). A queue that stays long while in-flight sits
// at limits.push_window says the window, not the fleet, sets the pace; one
// in-flight slot that never frees points at nodes that do not answer.
func RegisterPushWindow(reg prometheus.Registerer, window func() (inFlight, queued int)) {
	reg.MustRegister(&pushWindow{window: window})
}

var (
	inFlightDesc = prometheus.NewDesc("wasmfleet_xds_push_window_in_flight",
		"Large xDS responses (inline modules) sent and not yet answered by their node.", nil, nil)
	queuedDesc = prometheus.NewDesc("wasmfleet_xds_push_window_queued",
		"Nodes whose large xDS response waits for a push window slot.", nil, nil)
)

type pushWindow struct{ window func() (int, int) }

func (w *pushWindow) Describe(ch chan<- *prometheus.Desc) { ch <- inFlightDesc; ch <- queuedDesc }

// Collect reads both gauges from one look at the window.
func (w *pushWindow) Collect(ch chan<- prometheus.Metric) {
	inFlight, queued := w.window()
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(inFlight))
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(queued))
}
