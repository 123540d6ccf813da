package wasmhost

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// MetricType is the ABI's metric type.
type MetricType uint32

// Metric types.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)

func (t MetricType) String() string {
	switch t {
	case MetricCounter:
		return "counter"
	case MetricGauge:
		return "gauge"
	case MetricHistogram:
		return "histogram"
	}
	return "unknown"
}

// Metrics holds the metrics guests define with proxy_define_metric. Like an
// Envoy stats scope, defining a name that exists returns the same metric, so
// the plugins of one node that share a Metrics add up. It is safe for
// concurrent use.
type Metrics struct {
	mu sync.Mutex
	m  map[metricKey]*metric
}

type metricKey struct {
	name string
	typ  MetricType
}

type metric struct {
	value              int64 // counter total or gauge value
	count, sum, lo, hi uint64
	buckets            []uint64 // a histogram's count per HistogramBounds entry, not cumulative
}

// HistogramBounds are the upper bounds of the buckets a histogram counts
// its values in: Envoy's default buckets
// (source/common/stats/histogram_impl.cc, HistogramSettingsImpl::defaultBuckets),
// which its Prometheus output reports as le="..." lines.
var HistogramBounds = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
	60000, 300000, 600000, 1800000, 3600000}

// MetricSample is one metric's state at Snapshot time.
type MetricSample struct {
	Name string
	Type MetricType
	// Value is a counter's total or a gauge's value.
	Value int64
	// Count, Sum, Min and Max summarise a histogram's recorded values.
	Count, Sum, Min, Max uint64
	// Buckets counts a histogram's values at or below each of
	// HistogramBounds (cumulative, as Prometheus wants them); nil for a
	// counter or gauge.
	Buckets []uint64
}

// NewMetrics returns an empty set.
func NewMetrics() *Metrics {
	return &Metrics{m: map[metricKey]*metric{}}
}

// Snapshot returns every metric, sorted by name then type.
func (m *Metrics) Snapshot() []MetricSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MetricSample, 0, len(m.m))
	for k, v := range m.m {
		out = append(out, v.sample(k))
	}
	slices.SortFunc(out, func(a, b MetricSample) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Type, b.Type))
	})
	return out
}

// Get returns the sample of the metric name of type typ.
func (m *Metrics) Get(name string, typ MetricType) (MetricSample, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := metricKey{name, typ}
	v, ok := m.m[k]
	if !ok {
		return MetricSample{}, false
	}
	return v.sample(k), true
}

// sample is v's state as a MetricSample. Must hold Metrics.mu.
func (v *metric) sample(k metricKey) MetricSample {
	s := MetricSample{Name: k.name, Type: k.typ, Value: v.value, Count: v.count, Sum: v.sum, Min: v.lo, Max: v.hi}
	if k.typ == MetricHistogram {
		s.Buckets = make([]uint64, len(HistogramBounds))
		var below uint64
		for i, n := range v.buckets {
			below += n
			s.Buckets[i] = below
		}
	}
	return s
}

func (m *Metrics) define(name string, typ MetricType) *metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := metricKey{name, typ}
	v, ok := m.m[k]
	if !ok {
		v = &metric{}
		m.m[k] = v
	}
	return v
}

// increment follows Envoy: counters take positive offsets only, gauges
// either sign, histograms none.
func (m *Metrics) increment(v *metric, typ MetricType, offset int64) status {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case typ == MetricCounter && offset > 0, typ == MetricGauge:
		v.value += offset
		return statusOK
	}
	return statusBadArgument
}

// record adds to a counter, sets a gauge, and samples a histogram.
func (m *Metrics) record(v *metric, typ MetricType, value uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch typ {
	case MetricCounter:
		v.value += int64(value)
	case MetricGauge:
		v.value = int64(value)
	case MetricHistogram:
		if v.count == 0 || value < v.lo {
			v.lo = value
		}
		v.hi = max(v.hi, value)
		v.count++
		v.sum += value
		if v.buckets == nil {
			v.buckets = make([]uint64, len(HistogramBounds))
		}
		if i, _ := slices.BinarySearch(HistogramBounds, float64(value)); i < len(HistogramBounds) {
			v.buckets[i]++
		}
	}
}

// get reads a counter or gauge; a histogram has no single value (BadArgument).
func (m *Metrics) get(v *metric, typ MetricType) (uint64, status) {
	if typ == MetricHistogram {
		return 0, statusBadArgument
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(v.value), statusOK
}

// Metrics. Ids carry the type in their low two bits, as Envoy's do, so a
// guest that mixes them up gets Envoy's answers.

const metricTypeMask = 3

func hostDefineMetric(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	typ := MetricType(a[0])
	if typ > MetricHistogram {
		return statusBadArgument
	}
	name, ok := readString(mod, a[1], a[2])
	if !ok {
		return statusInvalidMemoryAccess
	}
	p.nextMetric++
	id := p.nextMetric<<2 | uint32(typ)
	p.metrics[id] = metricRef{m: p.cfg.Metrics.define(name, typ), typ: typ}
	return writeU32(mod, a[3], id)
}

func (p *Plugin) metric(id uint64) (metricRef, status) {
	if MetricType(id&metricTypeMask) > MetricHistogram {
		return metricRef{}, statusBadArgument
	}
	r, ok := p.metrics[uint32(id)]
	if !ok {
		return metricRef{}, statusNotFound
	}
	return r, statusOK
}

func hostIncrementMetric(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	r, st := p.metric(a[0])
	if st != statusOK {
		return st
	}
	return p.cfg.Metrics.increment(r.m, r.typ, int64(a[1]))
}

func hostRecordMetric(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	r, st := p.metric(a[0])
	if st != statusOK {
		return st
	}
	p.cfg.Metrics.record(r.m, r.typ, a[1])
	return statusOK
}

func hostGetMetric(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	r, st := p.metric(a[0])
	if st != statusOK {
		return st
	}
	v, st := p.cfg.Metrics.get(r.m, r.typ)
	if st != statusOK {
		return st
	}
	return writeU64(mod, a[1], v)
}
