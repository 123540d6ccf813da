//go:build !wasm

package sdk

import (
	"encoding/binary"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Natively the map comes from the proxy-wasm SDK's emulator as pairs and
// is serialized the host's way, so that HeaderMap is the same code in both
// builds.
func headerMap(t uint32) (HeaderMap, error) {
	get := proxywasm.GetHttpRequestHeaders
	if t == mapResponseHeaders {
		get = proxywasm.GetHttpResponseHeaders
	}
	pairs, err := get()
	if err != nil {
		return HeaderMap{}, err
	}
	return encodeHeaderMap(pairs), nil
}

// encodeHeaderMap serializes pairs as the host does (native builds and tests).
func encodeHeaderMap(pairs [][2]string) HeaderMap {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	raw := make([]byte, 4+8*len(pairs), size)
	binary.LittleEndian.PutUint32(raw, uint32(len(pairs)))
	for i, p := range pairs {
		binary.LittleEndian.PutUint32(raw[4+8*i:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(raw[8+8*i:], uint32(len(p[1])))
	}
	for _, p := range pairs {
		raw = append(append(append(append(raw, p[0]...), 0), p[1]...), 0)
	}
	return HeaderMap{raw: raw}
}
