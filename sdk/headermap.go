package sdk

import (
	"encoding/binary"
	"unsafe"
)

// HeaderMap is a header map in the form the host hands it over (the
// proxy-wasm ABI's serialized pairs: a count, the name and value lengths,
// then the names and values each ended by a NUL), read in place. Get walks
// it without first splitting it into a [][2]string, as
// proxywasm.GetHttpRequestHeaders does: that allocation (a slice of string
// headers the garbage collector must scan) costs a wasm guest more than a
// few walks over a handful of headers. Values are views into the map; they
// stay valid as long as the strings are referenced. The zero HeaderMap is
// empty.
type HeaderMap struct {
	raw []byte
}

// RequestHeaders reads the current request's header map with one host call
// (proxy_get_header_map_pairs), which costs about what one RequestHeader
// value does. An empty map is an empty HeaderMap, not an error (the
// proxy-wasm SDK's GetHttpRequestHeaders reports NotFound when the host
// hands over no bytes). Host failures come back as the proxy-wasm SDK's
// types.ErrorStatus* errors.
func RequestHeaders() (HeaderMap, error) { return headerMap(mapRequestHeaders) }

// ResponseHeaders reads the current response's header map, as RequestHeaders.
func ResponseHeaders() (HeaderMap, error) { return headerMap(mapResponseHeaders) }

// The ABI's map types.
const (
	mapRequestHeaders  uint32 = 0
	mapResponseHeaders uint32 = 2
)

// Len is the number of fields; a malformed map has none.
func (m HeaderMap) Len() int {
	n, ok := m.count()
	if !ok {
		return 0
	}
	return n
}

// count is the number of fields, and false when the lengths table does not
// fit (a malformed map is read as empty).
func (m HeaderMap) count() (int, bool) {
	if len(m.raw) < 4 {
		return 0, false
	}
	n := uint64(binary.LittleEndian.Uint32(m.raw))
	if 4+8*n > uint64(len(m.raw)) {
		return 0, false
	}
	return int(n), true
}

// Get returns the first value of name, compared as Header does (ASCII case
// ignored). A field whose bytes run past the map ends the walk.
func (m HeaderMap) Get(name string) (string, bool) {
	n, ok := m.count()
	if !ok {
		return "", false
	}
	lens := m.raw[4 : 4+8*n]
	data := m.raw[4+8*n:]
	for i := 0; i < n; i++ {
		kl := uint64(binary.LittleEndian.Uint32(lens[8*i:]))
		vl := uint64(binary.LittleEndian.Uint32(lens[8*i+4:]))
		if kl+vl+2 > uint64(len(data)) {
			return "", false
		}
		if int(kl) == len(name) {
			if k := bytesString(data[:kl]); k == name || EqualFoldASCII(k, name) {
				return bytesString(data[kl+1 : kl+1+vl]), true
			}
		}
		data = data[kl+vl+2:]
	}
	return "", false
}

// bytesString views b as a string: b is the map's, which nothing writes.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
