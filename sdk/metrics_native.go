//go:build !wasm

package sdk

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Natively (tests), metrics go through the proxy-wasm SDK, which routes
// them to its host emulator; the SDK panics where the wasm build drops.

func defineMetric(kind uint32, name string) (uint32, bool) {
	switch kind {
	case metricCounter:
		return uint32(proxywasm.DefineCounterMetric(name)), true
	case metricGauge:
		return uint32(proxywasm.DefineGaugeMetric(name)), true
	default:
		return uint32(proxywasm.DefineHistogramMetric(name)), true
	}
}

func incrementMetric(id uint32, offset int64) { proxywasm.MetricGauge(id).Add(offset) }

func recordMetric(id uint32, value uint64) { proxywasm.MetricHistogram(id).Record(value) }
