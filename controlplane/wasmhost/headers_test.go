package wasmhost

import (
	"bytes"
	"slices"
	"testing"
)

func TestHeadersMap(t *testing.T) {
	tests := []struct {
		name string
		edit func(h *Headers)
		want [][2]string
	}{
		{"add keeps order and lower-cases", func(h *Headers) { h.Add("X-A", "1"); h.Add("x-a", "2") },
			[][2]string{{":path", "/"}, {"x-a", "1"}, {"x-a", "2"}}},
		{"set replaces all values at the first position", func(h *Headers) {
			h.Add("x-a", "1")
			h.Add("x-b", "b")
			h.Add("x-a", "2")
			h.Set("X-A", "3")
		}, [][2]string{{":path", "/"}, {"x-a", "3"}, {"x-b", "b"}}},
		{"set appends a new name", func(h *Headers) { h.Set("x-new", "v") },
			[][2]string{{":path", "/"}, {"x-new", "v"}}},
		{"remove drops every value", func(h *Headers) {
			h.Add("x-a", "1")
			h.Add("x-a", "2")
			h.Remove("X-A")
		}, [][2]string{{":path", "/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHeaders(":path", "/")
			tt.edit(h)
			if got := h.All(); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	h := NewHeaders("A", "1", "a", "2")
	if v, ok := h.Get("a"); !ok || v != "1" {
		t.Errorf("Get = %q %v", v, ok)
	}
	if v := h.Values("A"); !slices.Equal(v, []string{"1", "2"}) {
		t.Errorf("Values = %q", v)
	}
	if _, ok := h.Get("b"); ok {
		t.Error("Get of a missing name found something")
	}
}

func TestPairs(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		want    [][2]string
		wantErr bool
	}{
		{name: "empty input is an empty map", raw: nil, want: nil},
		{name: "round trip", raw: encodePairs([][2]string{{":status", "200"}, {"a", ""}}), want: [][2]string{{":status", "200"}, {"a", ""}}},
		{name: "last NUL may be missing", raw: encodePairs([][2]string{{"k", "v"}})[:4+8+4], want: [][2]string{{"k", "v"}}},
		{name: "short count", raw: []byte{1, 0}, wantErr: true},
		{name: "count beyond data", raw: []byte{9, 0, 0, 0, 1, 0, 0, 0}, wantErr: true},
		{name: "length beyond data", raw: []byte{1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 'a'}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePairs(tt.raw)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestPutPairs: the host serializes a map straight into memory the guest
// allocated, which is not zeroed, so every byte (the NULs too) must be
// written.
func TestPutPairs(t *testing.T) {
	tests := []struct {
		name  string
		pairs [][2]string
		want  []byte
	}{
		{name: "no pairs", pairs: nil, want: []byte{0, 0, 0, 0}},
		{name: "two pairs", pairs: [][2]string{{"a", "bc"}, {"", "d"}},
			want: []byte{2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 'b', 'c', 0, 0, 'd', 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirty := bytes.Repeat([]byte{0xff}, pairsSize(tt.pairs))
			putPairs(dirty, tt.pairs)
			if !bytes.Equal(dirty, tt.want) {
				t.Errorf("got %v\nwant %v", dirty, tt.want)
			}
		})
	}
}

// FuzzDecodePairs feeds guest-controlled bytes to the pairs parser: it
// must never panic, and whatever it accepts must re-encode to a parse of
// the same pairs.
func FuzzDecodePairs(f *testing.F) {
	f.Add([]byte(nil))
	f.Add(encodePairs([][2]string{{":method", "GET"}, {"x", "y"}}))
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 'b'})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, raw []byte) {
		pairs, err := decodePairs(raw)
		if err != nil {
			return
		}
		again, err := decodePairs(encodePairs(pairs))
		if err != nil || !slices.Equal(again, pairs) {
			t.Fatalf("re-encoding %q gave %q, %v", pairs, again, err)
		}
	})
}

// FuzzSetBufferBytes checks Envoy's buffer edit rules on any arguments: the
// result is a prepend, a replace, an append, or no change with BadArgument.
func FuzzSetBufferBytes(f *testing.F) {
	f.Add([]byte("hello"), uint32(0), uint32(0), []byte("x"))
	f.Add([]byte("hello"), uint32(0), uint32(1<<31-1), []byte("x"))
	f.Add([]byte("hello"), uint32(1<<31-1), uint32(0), []byte("x"))
	f.Add([]byte("hello"), uint32(2), uint32(1), []byte("x"))
	f.Fuzz(func(t *testing.T, buf []byte, start, length uint32, data []byte) {
		b := append([]byte(nil), buf...)
		st := editBuffer(&b, start, length, data)
		switch {
		case st != statusOK:
			if st != statusBadArgument || !bytes.Equal(b, buf) {
				t.Fatalf("failed edit changed the buffer or gave %d", st)
			}
		case bytes.Equal(b, append(append([]byte(nil), data...), buf...)),
			bytes.Equal(b, data),
			bytes.Equal(b, append(append([]byte(nil), buf...), data...)):
		default:
			t.Fatalf("edit(%q, %d, %d, %q) = %q", buf, start, length, data, b)
		}
	})
}
