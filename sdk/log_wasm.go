//go:build wasm

package sdk

import "unsafe"

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg *byte, size int32) uint32

// writeLine writes an Entry's line from its buffer, without the copy a
// string conversion would make: proxy_log copies what it keeps before it
// returns, so the buffer may be reused at once.
func writeLine(level Level, b []byte) {
	var n uint32 // the ABI's levels: trace 0, debug 1, info 2, warn 3, error 4
	switch level {
	case LevelDebug:
		n = 1
	case LevelInfo:
		n = 2
	case LevelWarn:
		n = 3
	default:
		n = 4
	}
	proxyLog(n, unsafe.SliceData(b), int32(len(b)))
}
