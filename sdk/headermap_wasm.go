//go:build wasm

package sdk

import (
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// proxy_get_header_map_pairs, imported directly: the proxy-wasm SDK offers
// the map only split into a [][2]string.
//
//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType uint32, data unsafe.Pointer, size *int32) uint32

// headerMap views the map where the host wrote it (memory the host got from
// the guest's proxy_on_memory_allocate, which the garbage collector keeps
// while the HeaderMap or a value from it is referenced).
func headerMap(t uint32) (HeaderMap, error) {
	var data *byte
	var size int32
	switch proxyGetHeaderMapPairs(t, unsafe.Pointer(&data), &size) { // the ABI's status codes
	case 0:
	case 1:
		return HeaderMap{}, types.ErrorStatusNotFound
	case 2:
		return HeaderMap{}, types.ErrorStatusBadArgument
	default:
		return HeaderMap{}, types.ErrorInternalFailure
	}
	if data == nil {
		return HeaderMap{}, nil
	}
	return HeaderMap{raw: unsafe.Slice(data, size)}, nil
}
