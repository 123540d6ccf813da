package wasmhost

import (
	"encoding/binary"
	"errors"
	"strings"
)

// Headers is an ordered multi-map of HTTP header fields, pseudo-headers
// (":method", ":path", ":authority", ":scheme", ":status") included, as
// Envoy keeps them. Names are stored lower-case, so lookups ignore case.
// The zero value is empty and ready to use. A Headers is not safe for
// concurrent use; a stream mutates the map its caller passed in.
type Headers struct {
	kv [][2]string
}

// NewHeaders builds a map from name, value pairs: NewHeaders(":method", "GET").
// An odd trailing name is ignored.
func NewHeaders(nameValues ...string) *Headers {
	h := &Headers{kv: make([][2]string, 0, len(nameValues)/2)}
	for i := 0; i+1 < len(nameValues); i += 2 {
		h.Add(nameValues[i], nameValues[i+1])
	}
	return h
}

// Get returns the first value of name and whether there is one.
func (h *Headers) Get(name string) (string, bool) {
	name = strings.ToLower(name)
	for _, p := range h.kv {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

// Values returns every value of name in order.
func (h *Headers) Values(name string) []string {
	name = strings.ToLower(name)
	var out []string
	for _, p := range h.kv {
		if p[0] == name {
			out = append(out, p[1])
		}
	}
	return out
}

// Set replaces every value of name with value, keeping the position of the
// first one (or appending when there was none).
func (h *Headers) Set(name, value string) {
	name = strings.ToLower(name)
	out := h.kv[:0]
	found := false
	for _, p := range h.kv {
		if p[0] != name {
			out = append(out, p)
			continue
		}
		if !found {
			out = append(out, [2]string{name, value})
			found = true
		}
	}
	h.kv = out
	if !found {
		h.kv = append(h.kv, [2]string{name, value})
	}
}

// Add appends a value.
func (h *Headers) Add(name, value string) {
	h.kv = append(h.kv, [2]string{strings.ToLower(name), value})
}

// Remove deletes every value of name.
func (h *Headers) Remove(name string) {
	name = strings.ToLower(name)
	out := h.kv[:0]
	for _, p := range h.kv {
		if p[0] != name {
			out = append(out, p)
		}
	}
	clear(h.kv[len(out):])
	h.kv = out
}

// All returns a copy of the fields in order.
func (h *Headers) All() [][2]string {
	if h == nil {
		return nil
	}
	return append([][2]string(nil), h.kv...)
}

// Len is the number of fields.
func (h *Headers) Len() int {
	if h == nil {
		return 0
	}
	return len(h.kv)
}

// byteSize is the sum of name and value lengths (proxy_get_header_map_size).
func (h *Headers) byteSize() int {
	n := 0
	for _, p := range h.kv {
		n += len(p[0]) + len(p[1])
	}
	return n
}

// replaceAll is proxy_set_header_map_pairs: the map becomes pairs.
func (h *Headers) replaceAll(pairs [][2]string) {
	h.kv = h.kv[:0]
	for _, p := range pairs {
		h.Add(p[0], p[1])
	}
}

// errBadPairs is decodePairs' error for bytes that are not a
// serialized header map.
var errBadPairs = errors.New("malformed header pairs")

// encodePairs serializes pairs the ABI's way: a little-endian uint32 count,
// then per pair the uint32 name and value lengths, then the names and values
// each followed by a NUL byte.
func encodePairs(pairs [][2]string) []byte {
	out := make([]byte, pairsSize(pairs))
	putPairs(out, pairs)
	return out
}

// pairsSize is the length of pairs serialized.
func pairsSize(pairs [][2]string) int {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	return size
}

// putPairs serializes pairs into out, which is pairsSize(pairs) long: the
// host writes a header map straight into the guest's memory this way.
func putPairs(out []byte, pairs [][2]string) {
	binary.LittleEndian.PutUint32(out, uint32(len(pairs)))
	lens := out[4:]
	data := out[4+8*len(pairs):]
	for i, p := range pairs {
		binary.LittleEndian.PutUint32(lens[8*i:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(lens[8*i+4:], uint32(len(p[1])))
		n := copy(data, p[0])
		data[n] = 0
		data = data[n+1:]
		n = copy(data, p[1])
		data[n] = 0
		data = data[n+1:]
	}
}

// decodePairs parses what encodePairs writes. The guest controls these
// bytes, so every length is checked against the buffer. Empty input is an
// empty map, as in Envoy.
func decodePairs(b []byte) ([][2]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, errBadPairs
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if 4+8*n > uint64(len(b)) {
		return nil, errBadPairs
	}
	lens := b[4:]
	data := b[4+8*n:]
	out := make([][2]string, 0, n)
	for i := uint64(0); i < n; i++ {
		var p [2]string
		for j := range 2 {
			l := uint64(binary.LittleEndian.Uint32(lens[8*i+4*uint64(j):]))
			if l > uint64(len(data)) {
				return nil, errBadPairs
			}
			p[j] = string(data[:l])
			data = data[min(l+1, uint64(len(data))):]
		}
		out = append(out, p)
	}
	return out, nil
}
