package abi

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

func funcs(names ...string) []Export {
	var out []Export
	for _, n := range names {
		out = append(out, Export{Name: n, Kind: KindFunc})
	}
	return out
}

var (
	memoryExport = Export{Name: "memory", Kind: KindMemory}
	filterFuncs  = []string{"proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers"}
	withABI      = func(v string, names ...string) []Export {
		return append(funcs(append([]string{"proxy_abi_version_" + v}, names...)...), memoryExport)
	}
	httpFilter = func(v string) []Export { return withABI(v, filterFuncs...) }
)

func TestABIVersion(t *testing.T) {
	tests := []struct {
		name    string
		exports []Export
		want    string
	}{
		{name: "0.2.1", exports: funcs("proxy_abi_version_0_2_1"), want: ABI021},
		{name: "0.2.0", exports: funcs("proxy_abi_version_0_2_0"), want: ABI020},
		{name: "0.1.0", exports: funcs("proxy_abi_version_0_1_0"), want: ABI010},
		{name: "first known wins, as in Envoy", exports: funcs("proxy_abi_version_9_9_9", "proxy_abi_version_0_2_0", "proxy_abi_version_0_2_1"), want: ABI020},
		{name: "not a function", exports: []Export{{Name: "proxy_abi_version_0_2_1", Kind: KindGlobal}}},
		{name: "unknown version", exports: funcs("proxy_abi_version_0_3_0")},
		{name: "none", exports: funcs("proxy_on_vm_start")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := (&Info{Exports: tt.exports}).ABIVersion()
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("ABIVersion() = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func TestCheckExports(t *testing.T) {
	tests := []struct {
		name        string
		exports     []Export
		wantErr     error
		wantMissing []string
		wantEntry   string
	}{
		{name: "complete 0.2.1 filter", exports: httpFilter("0_2_1")},
		{name: "complete 0.2.0 reactor", exports: append(httpFilter("0_2_0"), funcs("_initialize")...), wantEntry: "_initialize"},
		{name: "command", exports: append(httpFilter("0_2_0"), funcs("_start")...), wantEntry: "_start"},
		{name: "malloc allocator", exports: withABI("0_2_1", "malloc", "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_response_body")},
		{name: "no ABI version", exports: append(funcs(filterFuncs...), memoryExport), wantErr: ErrMissingABI},
		{name: "ABI 0.1.0", exports: httpFilter("0_1_0"), wantErr: ErrMissingABI},
		{name: "no allocator", exports: withABI("0_2_1", filterFuncs[1:]...), wantErr: ErrMissingExport, wantMissing: []string{"proxy_on_memory_allocate|malloc"}},
		{
			name:        "no configure or vm start",
			exports:     withABI("0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_request_headers"),
			wantErr:     ErrMissingExport,
			wantMissing: []string{"proxy_on_vm_start", "proxy_on_configure"},
		},
		{name: "no HTTP callback", exports: withABI("0_2_1", filterFuncs[:4]...), wantErr: ErrMissingExport, wantMissing: []string{strings.Join(httpCallbacks, "|")}},
		{name: "no memory", exports: funcs(append([]string{"proxy_abi_version_0_2_1"}, filterFuncs...)...), wantErr: ErrMissingExport, wantMissing: []string{"memory"}},
		{name: "callback exported as a global", exports: append(withABI("0_2_1", filterFuncs[:4]...), Export{Name: "proxy_on_request_headers", Kind: KindGlobal}), wantErr: ErrMissingExport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckExports(&Info{Exports: tt.exports})
			err := r.Err()
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Err() = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMissing != nil && !slices.Equal(r.Missing, tt.wantMissing) {
				t.Errorf("Missing = %q, want %q", r.Missing, tt.wantMissing)
			}
			for _, m := range tt.wantMissing {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not name %s", err, m)
				}
			}
			if r.Entry != tt.wantEntry {
				t.Errorf("Entry = %q, want %q", r.Entry, tt.wantEntry)
			}
		})
	}
}

func TestCheckImports(t *testing.T) {
	fn := func(module, name string) Import { return Import{Module: module, Name: name, Kind: KindFunc} }
	tests := []struct {
		name        string
		abi         string
		imports     []Import
		wantMinHost string
		wantProxy   []string
		wantWASI    []string
		wantNewer   []string
		wantUnknown []string // substrings, in order
	}{
		{name: "nothing", abi: "0_2_0", wantMinHost: HostEnvoy133},
		{
			name:        "proxy abi and old wasi",
			abi:         "0_2_0",
			imports:     []Import{fn("env", "proxy_log"), fn("env", "proxy_continue_stream"), fn("wasi_snapshot_preview1", "fd_write"), fn("wasi_snapshot_preview1", "fd_write")},
			wantMinHost: HostEnvoy133,
			wantProxy:   []string{"env.proxy_continue_stream", "env.proxy_log"},
			wantWASI:    []string{"wasi_snapshot_preview1.fd_write"},
		},
		{
			name:        "wasi from PR 427",
			abi:         "0_2_1",
			imports:     []Import{fn("wasi_snapshot_preview1", "poll_oneoff"), fn("wasi_unstable", "sched_yield"), fn("wasi_snapshot_preview1", "fd_fdstat_set_flags")},
			wantMinHost: HostEnvoy133,
			wantWASI:    []string{"wasi_snapshot_preview1.fd_fdstat_set_flags", "wasi_snapshot_preview1.poll_oneoff", "wasi_unstable.sched_yield"},
		},
		{
			name:        "wasi from PR 533",
			abi:         "0_2_1",
			imports:     []Import{fn("wasi_snapshot_preview1", "fd_filestat_get"), fn("wasi_snapshot_preview1", "clock_time_get")},
			wantMinHost: HostPR533,
			wantWASI:    []string{"wasi_snapshot_preview1.clock_time_get"},
			wantNewer:   []string{"wasi_snapshot_preview1.fd_filestat_get"},
		},
		{name: "get_log_level needs 0.2.1", abi: "0_2_1", imports: []Import{fn("env", "proxy_get_log_level")}, wantMinHost: HostEnvoy133, wantProxy: []string{"env.proxy_get_log_level"}},
		{name: "get_log_level under 0.2.0", abi: "0_2_0", imports: []Import{fn("env", "proxy_get_log_level")}, wantMinHost: HostEnvoy133, wantUnknown: []string{"env.proxy_get_log_level: provided only for ABI 0.2.1"}},
		{name: "continue_request under 0.1.0", abi: "0_1_0", imports: []Import{fn("env", "proxy_continue_request")}, wantMinHost: HostEnvoy133, wantProxy: []string{"env.proxy_continue_request"}},
		{name: "continue_request under 0.2.1", abi: "0_2_1", imports: []Import{fn("env", "proxy_continue_request")}, wantMinHost: HostEnvoy133, wantUnknown: []string{"env.proxy_continue_request"}},
		{name: "unknown function", abi: "0_2_0", imports: []Import{fn("env", "proxy_does_not_exist")}, wantMinHost: HostEnvoy133, wantUnknown: []string{"env.proxy_does_not_exist: no proxy-wasm host provides it"}},
		{name: "unknown module", abi: "0_2_0", imports: []Import{fn("wasi_snapshot_preview2", "fd_write")}, wantMinHost: HostEnvoy133, wantUnknown: []string{"wasi_snapshot_preview2.fd_write"}},
		{name: "memory import", abi: "0_2_0", imports: []Import{{Module: "env", Name: "memory", Kind: KindMemory}}, wantMinHost: HostEnvoy133, wantUnknown: []string{"env.memory (memory)"}},
		{name: "global named like a host function", abi: "0_2_0", imports: []Import{{Module: "env", Name: "proxy_log", Kind: KindGlobal}}, wantMinHost: HostEnvoy133, wantUnknown: []string{"env.proxy_log (global)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := &Info{Imports: tt.imports, Exports: funcs("proxy_abi_version_" + tt.abi)}
			r := CheckImports(info)
			if r.MinHost != tt.wantMinHost {
				t.Errorf("MinHost = %q, want %q", r.MinHost, tt.wantMinHost)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"Proxy", r.Proxy, tt.wantProxy}, {"WASI", r.WASI, tt.wantWASI}, {"WASINewer", r.WASINewer, tt.wantNewer}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			err := r.Err()
			if len(tt.wantUnknown) == 0 {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrUnknownImport) {
				t.Fatalf("Err() = %v, want ErrUnknownImport", err)
			}
			for _, want := range tt.wantUnknown {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Err() = %q, want it to name %q", err, want)
				}
			}
		})
	}
}

// TestChecksOnRealModules runs both checks on modules built from Go.
func TestChecksOnRealModules(t *testing.T) {
	tests := []struct {
		name        string
		pkg         string
		wantMinHost string
		wantUnknown string
	}{
		{name: "sdk filter needs envoy 1.33", pkg: helloPkg, wantMinHost: HostEnvoy133},
		{name: "package os needs PR 533", pkg: osfilesPkg, wantMinHost: HostPR533},
		{name: "made-up host function", pkg: unknownPkg, wantMinHost: HostEnvoy133, wantUnknown: "env.proxy_does_not_exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Inspect(wasmtest.Module(t, tt.pkg))
			if err != nil {
				t.Fatal(err)
			}
			er := CheckExports(info)
			if err := er.Err(); err != nil {
				t.Fatalf("CheckExports: %v", err)
			}
			if er.ABIVersion != ABI020 || er.Entry != "_initialize" || !slices.Contains(er.Callbacks, "proxy_on_configure") {
				t.Errorf("exports: %+v", er)
			}
			ir := CheckImports(info)
			if ir.MinHost != tt.wantMinHost {
				t.Errorf("MinHost = %q, want %q", ir.MinHost, tt.wantMinHost)
			}
			err = ir.Err()
			if tt.wantUnknown == "" && err != nil {
				t.Fatalf("CheckImports: %v", err)
			}
			if tt.wantUnknown != "" && (!errors.Is(err, ErrUnknownImport) || !strings.Contains(err.Error(), tt.wantUnknown)) {
				t.Fatalf("CheckImports error = %v, want ErrUnknownImport naming %s", err, tt.wantUnknown)
			}
		})
	}
}

// TestHostTable guards the table against typos: every WASI name is a
// wasip1 function and no function is listed twice.
func TestHostTable(t *testing.T) {
	seen := map[string]bool{}
	for _, row := range hostTable {
		for _, name := range strings.Fields(row.names) {
			for _, m := range row.modules {
				key := m + "." + name
				if seen[key] {
					t.Errorf("%s listed twice", key)
				}
				seen[key] = true
			}
		}
	}
	// 36 common + 4 (0.1.0) + 2 (0.2.x) + 1 (0.2.1) + 2 helpers in env;
	// 15 + 3 + 27 WASI functions under each of two module names.
	if want := 36 + 4 + 2 + 1 + 2 + 2*(15+3+27); len(seen) != want {
		t.Errorf("table has %d functions, want %d", len(seen), want)
	}
}
