//go:build wasm

package sdk

import "unsafe"

// The proxy-wasm ABI's metric calls, imported directly (see Metrics).

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(kind uint32, name *byte, nameSize int32, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

func defineMetric(kind uint32, name string) (uint32, bool) {
	var id uint32
	st := proxyDefineMetric(kind, unsafe.StringData(name), int32(len(name)), &id)
	return id, st == 0
}

func incrementMetric(id uint32, offset int64) { proxyIncrementMetric(id, offset) }

func recordMetric(id uint32, value uint64) { proxyRecordMetric(id, value) }
