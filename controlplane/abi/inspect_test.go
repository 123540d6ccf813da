package abi

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// Real modules built from Go sources in this repository.
const (
	helloPkg   = "internal/wasmtest/testdata/hello"
	osfilesPkg = "controlplane/abi/testdata/guests/osfiles"
	unknownPkg = "controlplane/admission/testdata/guests/unknownimport"
)

// Builders for hand-crafted modules.

func leb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func str(s string) []byte { return append(leb(uint64(len(s))), s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func sec(id byte, content ...[]byte) []byte {
	body := cat(content...)
	return cat([]byte{id}, leb(uint64(len(body))), body)
}

func mod(sections ...[]byte) []byte { return cat(append([][]byte{header}, sections...)...) }

func funcImport(module, name string) []byte { return cat(str(module), str(name), []byte{0x00, 0x00}) }

func exportEntry(name string, kind ExternKind) []byte {
	return cat(str(name), []byte{byte(kind), 0x00})
}

// filterExports is the export section of a minimal valid HTTP filter.
func filterExports() []byte {
	names := []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create",
		"proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers", "_initialize"}
	entries := [][]byte{leb(uint64(len(names) + 1))}
	for _, n := range names {
		entries = append(entries, exportEntry(n, KindFunc))
	}
	entries = append(entries, exportEntry("memory", KindMemory))
	return sec(7, entries...)
}

func TestInspectHandCrafted(t *testing.T) {
	tests := []struct {
		name    string
		wasm    []byte
		wantErr error
		// wantMsg is a substring the error must contain.
		wantMsg     string
		wantImports []Import
		wantExports int
		wantCustom  []string
	}{
		{name: "empty", wasm: nil, wantErr: ErrTruncated},
		{name: "half a magic", wasm: []byte("\x00as"), wantErr: ErrTruncated},
		{name: "magic without version", wasm: []byte("\x00asm\x01"), wantErr: ErrTruncated},
		{name: "short garbage", wasm: []byte("GIF"), wantErr: ErrNotWasm},
		{name: "elf", wasm: []byte("\x7fELF\x02\x01\x01\x00\x00\x00"), wantErr: ErrNotWasm, wantMsg: "bad magic"},
		{name: "text file", wasm: []byte("package main\n\nfunc main() {}\n"), wantErr: ErrNotWasm},
		{name: "version 2", wasm: []byte("\x00asm\x02\x00\x00\x00"), wantErr: ErrNotWasm, wantMsg: "not a core module"},
		{name: "component", wasm: []byte("\x00asm\x0d\x00\x01\x00"), wantErr: ErrNotWasm},
		{name: "header only", wasm: mod()},
		{
			name: "imports and exports",
			wasm: mod(
				sec(2, leb(3), funcImport("env", "proxy_log"),
					cat(str("wasi_snapshot_preview1"), str("fd_write"), []byte{0x00, 0x05}),
					cat(str("env"), str("mem"), []byte{0x02, 0x05, 0x01, 0x80, 0x80, 0x04})), // memory64 min,max
				filterExports(),
			),
			wantImports: []Import{
				{"env", "proxy_log", KindFunc},
				{"wasi_snapshot_preview1", "fd_write", KindFunc},
				{"env", "mem", KindMemory},
			},
			wantExports: 8,
		},
		{
			name:        "table, global and tag imports",
			wasm:        mod(sec(2, leb(3), cat(str("m"), str("t"), []byte{0x01, 0x64, 0x70, 0x00, 0x01}), cat(str("m"), str("g"), []byte{0x03, 0x7f, 0x01}), cat(str("m"), str("e"), []byte{0x04, 0x00, 0x00}))),
			wantImports: []Import{{"m", "t", KindTable}, {"m", "g", KindGlobal}, {"m", "e", KindTag}},
		},
		{name: "section size beyond the end", wasm: cat(mod(), []byte{7, 0x80, 0x01}, []byte("abc")), wantErr: ErrTruncated, wantMsg: "declares 128 bytes, 3 remain"},
		{name: "cut in a section size", wasm: cat(mod(), []byte{7, 0x80}), wantErr: ErrTruncated},
		{name: "cut after a section id", wasm: cat(mod(), []byte{7}), wantErr: ErrTruncated},
		{name: "overlong section size", wasm: cat(mod(), []byte{7, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}), wantErr: ErrMalformed, wantMsg: "too large"},
		{name: "section size over 32 bits", wasm: cat(mod(), []byte{7, 0xff, 0xff, 0xff, 0xff, 0x7f}), wantErr: ErrMalformed},
		{name: "name length overruns its section", wasm: mod(sec(7, leb(1), leb(200), []byte("proxy"))), wantErr: ErrMalformed, wantMsg: "overruns"},
		{name: "lying import count", wasm: mod(sec(2, leb(0xffffffff), funcImport("env", "proxy_log"))), wantErr: ErrMalformed, wantMsg: "import 1"},
		{name: "lying export count", wasm: mod(sec(7, leb(1000), exportEntry("a", KindFunc))), wantErr: ErrMalformed, wantMsg: "export 1"},
		{name: "import count of zero with trailing bytes", wasm: mod(sec(2, leb(0), []byte{1, 2, 3})), wantErr: ErrMalformed, wantMsg: "after its last entry"},
		{name: "export of unknown kind", wasm: mod(sec(7, leb(1), str("x"), []byte{9, 0})), wantErr: ErrMalformed, wantMsg: "unknown kind"},
		{name: "import of unknown kind", wasm: mod(sec(2, leb(1), str("m"), str("x"), []byte{7, 0})), wantErr: ErrMalformed, wantMsg: "unknown kind"},
		{name: "bad limits flags", wasm: mod(sec(2, leb(1), str("m"), str("x"), []byte{2, 0x40, 0})), wantErr: ErrMalformed, wantMsg: "limits"},
		{name: "bad global mutability", wasm: mod(sec(2, leb(1), str("m"), str("x"), []byte{3, 0x7f, 2})), wantErr: ErrMalformed, wantMsg: "mutability"},
		{name: "name not UTF-8", wasm: mod(sec(7, leb(1), str("\xff\xfe"), []byte{0, 0})), wantErr: ErrMalformed, wantMsg: "UTF-8"},
		{name: "unknown section id", wasm: mod(sec(99, []byte{0})), wantErr: ErrMalformed, wantMsg: "unknown section id 99"},
		{name: "duplicate export section", wasm: mod(sec(7, leb(0)), sec(7, leb(0))), wantErr: ErrMalformed, wantMsg: "duplicated or out of order"},
		{name: "sections out of order", wasm: mod(sec(7, leb(0)), sec(2, leb(0))), wantErr: ErrMalformed},
		{name: "custom sections anywhere", wasm: mod(sec(0, str("a")), sec(2, leb(0)), sec(0, str("b")), sec(7, leb(0)), sec(0, str("c"))), wantCustom: []string{"a", "b", "c"}},
		{name: "custom section name overruns", wasm: mod(sec(0, leb(9), []byte("ab"))), wantErr: ErrMalformed},
		{name: "functions without code", wasm: mod(sec(1, leb(0)), sec(3, leb(2), []byte{0, 0})), wantErr: ErrTruncated, wantMsg: "no code section"},
		{name: "code count differs from functions", wasm: mod(sec(3, leb(2), []byte{0, 0}), sec(10, leb(1), []byte{2, 0, 0x0b})), wantErr: ErrMalformed, wantMsg: "2 functions declared but 1 bodies"},
		{name: "data count without data", wasm: mod(sec(12, leb(1))), wantErr: ErrTruncated, wantMsg: "no data section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Inspect(tt.wasm)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Inspect error = %v, want %v", err, tt.wantErr)
				}
				if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Inspect error = %q, want it to mention %q", err, tt.wantMsg)
				}
				if info != nil {
					t.Fatal("Inspect returned info with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if !slices.Equal(info.Imports, tt.wantImports) {
				t.Errorf("imports = %v, want %v", info.Imports, tt.wantImports)
			}
			if len(info.Exports) != tt.wantExports {
				t.Errorf("%d exports, want %d", len(info.Exports), tt.wantExports)
			}
			var custom []string
			for _, s := range info.Sections {
				if s.ID == SectionCustom {
					custom = append(custom, s.Name)
				}
			}
			if !slices.Equal(custom, tt.wantCustom) {
				t.Errorf("custom sections %q, want %q", custom, tt.wantCustom)
			}
		})
	}
}

// TestInspectLyingLengthsAllocateLittle: a section that claims four billion
// entries must not make Inspect allocate for them.
func TestInspectLyingLengthsAllocateLittle(t *testing.T) {
	tests := []struct {
		name string
		wasm []byte
	}{
		{name: "import count", wasm: mod(sec(2, leb(0xffffffff)))},
		{name: "export count", wasm: mod(sec(7, leb(0xffffffff)))},
		{name: "name length", wasm: mod(sec(7, leb(1), leb(0xffffffff)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := Inspect(tt.wasm); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Inspect error = %v, want ErrMalformed", err)
			}
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Fatalf("Inspect allocated %d bytes for a %d-byte input", grew, len(tt.wasm))
			}
		})
	}
}

func TestInspectRealModules(t *testing.T) {
	tests := []struct {
		name        string
		pkg         string
		wantImports []string // a few that must be there
		wantExports []string
	}{
		{
			name:        "sdk filter",
			pkg:         helloPkg,
			wantImports: []string{"env.proxy_log", "wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.sched_yield"},
			wantExports: []string{"_initialize", "memory", "proxy_abi_version_0_2_0", "proxy_on_request_headers"},
		},
		{
			name:        "filter using package os",
			pkg:         osfilesPkg,
			wantImports: []string{"wasi_snapshot_preview1.path_open", "wasi_snapshot_preview1.fd_filestat_get"},
			wantExports: []string{"proxy_on_configure"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasm := wasmtest.Module(t, tt.pkg)
			info, err := Inspect(wasm)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			var imports, exports []string
			for _, im := range info.Imports {
				imports = append(imports, im.String())
			}
			for _, ex := range info.Exports {
				exports = append(exports, ex.Name)
			}
			for _, want := range tt.wantImports {
				if !slices.Contains(imports, want) {
					t.Errorf("import %s missing from %v", want, imports)
				}
			}
			for _, want := range tt.wantExports {
				if !slices.Contains(exports, want) {
					t.Errorf("export %s missing from %v", want, exports)
				}
			}
			last := len(header)
			for _, s := range info.Sections {
				if s.Offset != last || s.End <= s.Offset {
					t.Fatalf("section %+v does not follow the previous one ending at %d", s, last)
				}
				last = s.End
			}
			if last != len(wasm) {
				t.Fatalf("sections end at %d, module has %d bytes", last, len(wasm))
			}
		})
	}
}

// TestInspectTruncatedRealModule cuts a real module short and expects
// ErrTruncated wherever the cut is inside something: at every offset up to
// the end of the export section (everything Inspect decodes), at and around
// every section boundary, and at a stride through the code and data
// sections, which are skipped by length and behave the same at any offset.
// A cut exactly at a section boundary may yield a valid (shorter) module.
func TestInspectTruncatedRealModule(t *testing.T) {
	wasm := wasmtest.Module(t, helloPkg)
	info, err := Inspect(wasm)
	if err != nil {
		t.Fatal(err)
	}
	boundaries := map[int]bool{len(header): true}
	offsets := map[int]bool{}
	decodedEnd := 0
	for _, s := range info.Sections {
		boundaries[s.End] = true
		for d := -3; d <= 3; d++ {
			offsets[s.Offset+d] = true
		}
		if s.ID == SectionExport {
			decodedEnd = s.End
		}
	}
	for off := 0; off <= decodedEnd; off++ {
		offsets[off] = true
	}
	for off := decodedEnd; off < len(wasm); off += 4093 {
		offsets[off] = true
	}
	for off := range offsets {
		if off < 0 || off >= len(wasm) {
			continue
		}
		_, err := Inspect(wasm[:off])
		switch {
		case boundaries[off] && (err == nil || errors.Is(err, ErrTruncated)):
		case !errors.Is(err, ErrTruncated):
			t.Errorf("cut at %d of %d: error = %v, want ErrTruncated", off, len(wasm), err)
		}
	}
	// Cutting off the code section must not look like a complete module.
	for _, s := range info.Sections {
		if s.ID == SectionCode {
			if _, err := Inspect(wasm[:s.Offset]); !errors.Is(err, ErrTruncated) {
				t.Errorf("cut before the code section: error = %v, want ErrTruncated", err)
			}
		}
	}
}

func BenchmarkInspect(b *testing.B) {
	wasm := wasmtest.Module(b, helloPkg)
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(wasm); err != nil {
			b.Fatal(err)
		}
	}
}
