package abi

import (
	"errors"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// FuzzInspect feeds Inspect arbitrary bytes. It must never panic, must fail
// with exactly one of its sentinels or succeed with an Info whose sections
// tile the input, and must never report more name bytes than it was given.
func FuzzInspect(f *testing.F) {
	real := wasmtest.Module(f, helloPkg)
	info, err := Inspect(real)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range info.Sections {
		if s.ID == SectionExport {
			// Everything Inspect decodes, without the megabytes it skips.
			f.Add(real[:s.End])
		}
	}
	f.Add(mod(sec(2, leb(2), funcImport("env", "proxy_log"), funcImport("wasi_snapshot_preview1", "fd_write")), filterExports()))
	f.Add(mod(sec(2, leb(1), []byte{1, 'm', 1, 't', 0x01, 0x64, 0x70, 0x05, 0x00, 0x01, 0x02})))
	f.Add(mod(sec(3, leb(1), []byte{0}), sec(12, leb(1)), sec(10, leb(1), []byte{2, 0, 0x0b}), sec(11, leb(0))))
	f.Add(mod(sec(0, str("name"), []byte{1, 2, 3})))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x07\xff\xff\xff\xff\x0f"))
	f.Add([]byte{})

	sentinels := []error{ErrNotWasm, ErrTruncated, ErrMalformed}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		info, err := Inspect(wasm)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || info != nil {
				t.Fatalf("error %v wraps %d sentinels (info %v)", err, n, info)
			}
			return
		}
		last := len(header)
		for _, s := range info.Sections {
			if s.Offset != last || s.End <= s.Offset || s.End > len(wasm) {
				t.Fatalf("section %+v does not follow %d within %d bytes", s, last, len(wasm))
			}
			last = s.End
		}
		if last != len(wasm) {
			t.Fatalf("sections end at %d of %d", last, len(wasm))
		}
		names := 0
		for _, im := range info.Imports {
			names += len(im.Module) + len(im.Name)
		}
		for _, ex := range info.Exports {
			names += len(ex.Name)
			if ex.Kind > KindTag {
				t.Fatalf("export %q of kind %d", ex.Name, ex.Kind)
			}
		}
		if names > len(wasm) {
			t.Fatalf("%d name bytes from %d input bytes", names, len(wasm))
		}
		// The checks must cope with whatever Inspect accepts.
		_ = CheckExports(info).Err()
		_ = CheckImports(info).Err()
	})
}
