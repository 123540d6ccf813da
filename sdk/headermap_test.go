package sdk

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"
)

func TestHeaderMapGet(t *testing.T) {
	m := encodeHeaderMap([][2]string{{":path", "/"}, {"X-Request-Id", "abc"}, {"x-request-id", "second"}, {"empty", ""}, {"", "nameless"}})
	tests := []struct {
		name, key, want string
		ok              bool
	}{
		{name: "exact", key: ":path", want: "/", ok: true},
		{name: "case-insensitive, first wins", key: "x-request-ID", want: "abc", ok: true},
		{name: "empty value is present", key: "empty", want: "", ok: true},
		{name: "empty name", key: "", want: "nameless", ok: true},
		{name: "absent", key: "cookie"},
		{name: "a prefix is not a match", key: ":pat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := m.Get(tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if n := m.Len(); n != 5 {
		t.Errorf("Len() = %d, want 5", n)
	}
}

func TestHeaderMapMalformed(t *testing.T) {
	good := encodeHeaderMap([][2]string{{"a", "1"}, {"b", "2"}}).raw
	tests := []struct {
		name string
		raw  []byte
		len  int
		a, b bool // whether Get finds "a" and "b"
	}{
		{name: "zero value", raw: nil},
		{name: "short count", raw: []byte{1, 0}},
		{name: "count beyond the lengths table", raw: []byte{9, 0, 0, 0, 1, 0, 0, 0}},
		{name: "whole", raw: good, len: 2, a: true, b: true},
		{name: "second field cut short", raw: good[:len(good)-1], len: 2, a: true},
		{name: "first value runs past the end", raw: withLength(good, 1, 1<<31), len: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := HeaderMap{raw: tt.raw}
			_, a := m.Get("a")
			_, b := m.Get("b")
			if m.Len() != tt.len || a != tt.a || b != tt.b {
				t.Errorf("Len %d, a %v, b %v; want %d, %v, %v", m.Len(), a, b, tt.len, tt.a, tt.b)
			}
		})
	}
}

// withLength is raw with the i-th length word (name 0, value 1, ...) set to n.
func withLength(raw []byte, i int, n uint32) []byte {
	out := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(out[4+4*i:], n)
	return out
}

// FuzzHeaderMapGet: whatever bytes the host hands over, Get does not panic,
// returns a view inside them, and agrees with Header over the fields that
// are whole (read one by one, the plain way).
func FuzzHeaderMapGet(f *testing.F) {
	f.Add(encodeHeaderMap([][2]string{{":method", "GET"}, {"x-request-id", "abc"}}).raw, "x-request-id")
	f.Add(encodeHeaderMap([][2]string{{"A", "1"}, {"a", "2"}}).raw, "a")
	f.Add(encodeHeaderMap(nil).raw, "")
	f.Add([]byte{2, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 'a', 0}, "a")
	f.Add([]byte{255, 255, 255, 255}, "a")
	f.Fuzz(func(t *testing.T, raw []byte, name string) {
		got, ok := HeaderMap{raw: raw}.Get(name)
		if ok && len(got) > 0 {
			start := uintptr(unsafe.Pointer(unsafe.StringData(got)))
			base := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
			if start < base || start+uintptr(len(got)) > base+uintptr(len(raw)) {
				t.Fatalf("value %q is not inside the map", got)
			}
		}
		want, wantOK := Header(wholeFields(raw), name)
		if got != want || ok != wantOK {
			t.Fatalf("Get(%q) = %q %v; Header says %q %v", name, got, ok, want, wantOK)
		}
	})
}

// wholeFields decodes the fields of raw up to the first that does not fit.
func wholeFields(raw []byte) [][2]string {
	if len(raw) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(raw))
	if n < 0 || n > (len(raw)-4)/8 {
		return nil
	}
	var out [][2]string
	pos := 4 + 8*n
	for i := range n {
		kl := int(binary.LittleEndian.Uint32(raw[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(raw[8+8*i:]))
		if kl < 0 || vl < 0 || kl > len(raw) || vl > len(raw) || pos+kl+vl+2 > len(raw) {
			break
		}
		out = append(out, [2]string{string(raw[pos : pos+kl]), string(raw[pos+kl+1 : pos+kl+1+vl])})
		pos += kl + vl + 2
	}
	return out
}
