package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/tetratelabs/wazero/api"
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

// Host functions of header maps.

// headerMap returns the map a guest names, and whether it may change it.
func (p *Plugin) headerMap(t mapType) (*Headers, bool) {
	if s := p.stream(); s != nil {
		switch t {
		case mapRequestHeaders:
			return s.requestHeaders, true
		case mapRequestTrailers:
			return s.requestTrailers, true
		case mapResponseHeaders:
			return s.responseHeaders, true
		case mapResponseTrailers:
			return s.responseTrailers, true
		}
	}
	if p.calloutResp != nil {
		switch t {
		case mapHTTPCallResponseHeaders:
			return p.calloutResp.Headers, false
		case mapHTTPCallResponseTrailer:
			return p.calloutResp.Trailers, false
		}
	}
	return nil, false
}

// mutableMap is the map for add/replace/remove/set: BadArgument when there
// is none or it is read-only, as in Envoy.
func (p *Plugin) mutableMap(t uint64) (*Headers, status) {
	if t > uint64(mapHTTPCallResponseTrailer) {
		return nil, statusBadArgument
	}
	h, writable := p.headerMap(mapType(t))
	if h == nil || !writable {
		return nil, statusBadArgument
	}
	return h, statusOK
}

func hostGetHeaderMapValue(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(mapHTTPCallResponseTrailer) {
		return statusBadArgument
	}
	key, ok := readString(mod, a[1], a[2])
	if !ok {
		return statusInvalidMemoryAccess
	}
	h, _ := p.headerMap(mapType(a[0]))
	if h == nil {
		return statusBadArgument
	}
	v, ok := h.Get(key)
	if !ok {
		return statusNotFound
	}
	return copyOut(ctx, p, mod, v, a[3], a[4])
}

func hostAddHeaderMapValue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	return editHeader(p, mod, a, (*Headers).Add)
}

func hostReplaceHeaderMapValue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	return editHeader(p, mod, a, (*Headers).Set)
}

func editHeader(p *Plugin, mod api.Module, a []uint64, edit func(h *Headers, k, v string)) status {
	h, st := p.mutableMap(a[0])
	if st != statusOK {
		return st
	}
	k, ok1 := readString(mod, a[1], a[2])
	v, ok2 := readString(mod, a[3], a[4])
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	edit(h, k, v)
	return statusOK
}

func hostRemoveHeaderMapValue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	h, st := p.mutableMap(a[0])
	if st != statusOK {
		return st
	}
	k, ok := readString(mod, a[1], a[2])
	if !ok {
		return statusInvalidMemoryAccess
	}
	h.Remove(k)
	return statusOK
}

func hostGetHeaderMapPairs(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(mapHTTPCallResponseTrailer) {
		return statusBadArgument
	}
	h, _ := p.headerMap(mapType(a[0]))
	size := 0
	if h.Len() > 0 {
		size = pairsSize(h.kv)
	}
	dst, addr, st := p.guestAlloc(ctx, mod, size)
	if st != statusOK {
		return st
	}
	if size > 0 {
		putPairs(dst, h.kv) // in place: guest memory is not zeroed, so every byte is written
	}
	return p.handOver(mod, addr, size, a[1], a[2])
}

func hostSetHeaderMapPairs(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	h, st := p.mutableMap(a[0])
	if st != statusOK {
		return st
	}
	raw, ok := viewBytes(mod, a[1], a[2]) // decodePairs copies into strings
	if !ok {
		return statusInvalidMemoryAccess
	}
	pairs, err := decodePairs(raw)
	if err != nil {
		pairs = nil // as Envoy: malformed pairs read as an empty map
	}
	h.replaceAll(pairs)
	return statusOK
}

func hostGetHeaderMapSize(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	h, st := p.mutableMap(a[0])
	if st != statusOK {
		return st
	}
	return writeU32(mod, a[1], uint32(h.byteSize()))
}
