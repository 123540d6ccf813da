package main

import (
	"strconv"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Host calls the SDK does not import, declared here so the tests can reach
// them from a real module.

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(level *uint32) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTime(ns *int64) uint32

//go:wasmimport env proxy_get_header_map_size
func proxyGetHeaderMapSize(mapType uint32, size *uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxyGetBufferStatus(bufferType uint32, length *uint32, flags *uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code *uint32, msgData unsafe.Pointer, msgSize *int32) uint32

//go:wasmimport env proxy_close_stream
func proxyCloseStream(streamType uint32) uint32

// status is proxy_get_status: the code and message of the last callout.
func status() (uint32, string) {
	var code uint32
	var raw *byte
	var size int32
	if st := proxyGetStatus(&code, unsafe.Pointer(&raw), &size); st != 0 {
		return st, "proxy_get_status failed"
	}
	return code, unsafe.String(raw, size)
}

// rawCalls reports each raw host call's result as a request header.
func rawCalls() {
	var level, size, length, flags uint32
	var now int64
	st := proxyGetLogLevel(&level)
	must(proxywasm.AddHttpRequestHeader("x-log-level", itoa(st)+":"+itoa(level)))
	st = proxyGetCurrentTime(&now)
	must(proxywasm.AddHttpRequestHeader("x-now", itoa(st)+":"+strconv.FormatInt(now, 10)))
	st = proxyGetHeaderMapSize(0, &size)
	must(proxywasm.AddHttpRequestHeader("x-headers-size", itoa(st)+":"+itoa(size)))
	st = proxyGetBufferStatus(0, &length, &flags)
	must(proxywasm.AddHttpRequestHeader("x-body-status", itoa(st)+":"+itoa(length)))
	st = proxyGetBufferStatus(7, &length, &flags) // plugin configuration: gone after configure
	must(proxywasm.AddHttpRequestHeader("x-config-status", itoa(st)))
	must(proxywasm.AddHttpRequestHeader("x-close-tcp", itoa(proxyCloseStream(2))))
	must(proxywasm.AddHttpRequestHeader("x-close-request", itoa(proxyCloseStream(0))))
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
