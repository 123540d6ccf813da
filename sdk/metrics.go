package sdk

// Metrics defines host metrics named "<filter>_<name>" (Envoy exposes them
// as wasmcustom.<filter>_<name>) and remembers each handle, so a filter can
// call Counter("requests_total").Increment(1) on every request at the cost of
// a map lookup instead of a host call. One Metrics belongs to one plugin
// context; like everything in a proxy-wasm VM it is not safe for concurrent use.
//
// The handles are the sdk's own rather than the proxy-wasm SDK's, whose
// metric functions format panics with fmt (~250 KB of module); a failed
// metric call here is dropped, never a reason to fail a request.
type Metrics struct {
	prefix  string
	handles map[metricKey]metric
}

type metricKey struct {
	kind uint32
	name string
}

// NewMetrics returns a Metrics for filter.
func NewMetrics(filter string) *Metrics {
	return &Metrics{prefix: filter + "_", handles: map[metricKey]metric{}}
}

// metric is a host metric id; ok is false when the host refused to define it.
type metric struct {
	id uint32
	ok bool
}

// Metric types, as the proxy-wasm ABI numbers them.
const (
	metricCounter   uint32 = 0
	metricGauge     uint32 = 1
	metricHistogram uint32 = 2
)

func (m *Metrics) define(kind uint32, name string) metric {
	key := metricKey{kind, name}
	h, ok := m.handles[key]
	if !ok {
		h.id, h.ok = defineMetric(kind, m.prefix+name)
		m.handles[key] = h
	}
	return h
}

// Counter is a monotonically increasing host metric.
type Counter struct{ m metric }

// Gauge is a host metric that goes up and down.
type Gauge struct{ m metric }

// Histogram is a host metric recording a distribution of values.
type Histogram struct{ m metric }

// Counter returns the counter "<filter>_<name>", defining it on first use.
func (m *Metrics) Counter(name string) Counter { return Counter{m.define(metricCounter, name)} }

// Gauge returns the gauge "<filter>_<name>", defining it on first use.
func (m *Metrics) Gauge(name string) Gauge { return Gauge{m.define(metricGauge, name)} }

// Histogram returns the histogram "<filter>_<name>", defining it on first use.
func (m *Metrics) Histogram(name string) Histogram {
	return Histogram{m.define(metricHistogram, name)}
}

// Increment adds n to the counter.
func (c Counter) Increment(n uint64) {
	if c.m.ok {
		incrementMetric(c.m.id, int64(n))
	}
}

// Add adds delta (possibly negative) to the gauge.
func (g Gauge) Add(delta int64) {
	if g.m.ok {
		incrementMetric(g.m.id, delta)
	}
}

// Set sets the gauge to v.
func (g Gauge) Set(v int64) {
	if g.m.ok {
		recordMetric(g.m.id, uint64(v))
	}
}

// Record records v in the histogram.
func (h Histogram) Record(v uint64) {
	if h.m.ok {
		recordMetric(h.m.id, v)
	}
}
