package source

import (
	"bytes"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
)

// sections lists mod's sections as abi.Inspect finds them, so that the
// tests' idea of where sections end does not come from the code under test.
func sections(t testing.TB, mod []byte) []abi.Section {
	t.Helper()
	info, err := abi.Inspect(mod)
	if err != nil {
		t.Fatalf("abi.Inspect: %v", err)
	}
	return info.Sections
}

func TestLooksWhole(t *testing.T) {
	mod, _ := modules(t)
	header := string(wasmHeader)
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{name: "compiled module", b: mod, want: true},
		{name: "with a custom section appended", b: withCustomSection(mod, "x", []byte("y")), want: true},
		{name: "header only", b: wasmHeader, want: true},
		{name: "empty", b: nil},
		{name: "magic only", b: []byte("\x00asm")},
		{name: "wrong version", b: []byte("\x00asm\x02\x00\x00\x00")},
		{name: "not wasm", b: []byte("#!/bin/sh\necho hi\n")},
		{name: "cut inside the first section", b: mod[:len(wasmHeader)+3]},
		{name: "cut in the middle", b: mod[:len(mod)/2]},
		{name: "one byte short", b: mod[:len(mod)-1]},
		{name: "one byte extra", b: append(bytes.Clone(mod), 0)},
		{name: "section size runs past the end", b: []byte(header + "\x00\x05ab")},
		{name: "size encoding longer than 5 bytes", b: []byte(header + "\x00\x80\x80\x80\x80\x80\x00")},
		{name: "size encoding cut off", b: []byte(header + "\x00\x80")},
		{name: "function section without code section", b: []byte(header + "\x03\x02\x01\x00")},
		{name: "data count without data section", b: []byte(header + "\x0c\x01\x00")},
		{name: "data count with data section", b: []byte(header + "\x0c\x01\x00\x0b\x01\x00"), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := looksWhole(tt.b); got != tt.want {
				t.Fatalf("looksWhole = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLooksWholeRejectsPrefixes: every prefix of a real module that does not
// end at a section boundary is seen as cut off; so is every boundary between
// the function section and the code section.
func TestLooksWholeRejectsPrefixes(t *testing.T) {
	mod, _ := modules(t)
	secs := sections(t, mod)
	ends := map[int]bool{}
	for _, s := range secs {
		ends[s.End] = true
	}
	for n := 0; n < len(mod); n += 97 {
		if !ends[n] && looksWhole(mod[:n]) {
			t.Fatalf("prefix of %d of %d bytes looks whole", n, len(mod))
		}
	}
	var function, code bool
	for _, s := range secs {
		function = function || s.ID == abi.SectionFunction
		code = code || s.ID == abi.SectionCode
		if function && !code && looksWhole(mod[:s.End]) {
			t.Fatalf("prefix of %d bytes with functions but no code looks whole", s.End)
		}
	}
	if !function || !code {
		t.Fatal("test module has no function and code sections")
	}
}

func FuzzLooksWhole(f *testing.F) {
	mod, _ := modules(f)
	f.Add(mod[:4096])
	f.Add(wasmHeader)
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x00\x05ab"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0c\x01\x00\x0b\x01\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !looksWhole(b) {
			return
		}
		if !bytes.HasPrefix(b, wasmHeader) {
			t.Fatal("whole without the wasm header")
		}
		// Sections add up to the end: one more byte can never be whole
		// unless it starts a new, empty-sized section, which needs two.
		if looksWhole(append(bytes.Clone(b), 0x00)) {
			t.Fatal("whole with one stray byte appended")
		}
	})
}
