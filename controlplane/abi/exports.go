package abi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors of CheckExports.
var (
	// ErrMissingABI: the module exports no proxy-wasm ABI version wasmfleet
	// delivers (0.2.1 or 0.2.0), so Envoy would not know how to call it.
	ErrMissingABI = errors.New("missing proxy-wasm ABI version")
	// ErrMissingExport: a function or the memory an HTTP filter needs is not
	// exported.
	ErrMissingExport = errors.New("missing export")
)

// The proxy-wasm ABI versions a module can declare by exporting an empty
// function named proxy_abi_version_X_Y_Z.
const (
	ABI010 = "0.1.0"
	ABI020 = "0.2.0"
	ABI021 = "0.2.1"
)

const abiExportPrefix = "proxy_abi_version_"

// ABIVersion returns the proxy-wasm ABI version the module declares. Like
// proxy-wasm-cpp-host (src/bytecode_util.cc), the first function export
// naming a version it knows wins.
func (i *Info) ABIVersion() (string, bool) {
	for _, e := range i.Exports {
		if e.Kind != KindFunc || !strings.HasPrefix(e.Name, abiExportPrefix) {
			continue
		}
		switch v := strings.ReplaceAll(e.Name[len(abiExportPrefix):], "_", "."); v {
		case ABI010, ABI020, ABI021:
			return v, true
		}
	}
	return "", false
}

// Callbacks returns the proxy_on_* functions the module exports, sorted.
func (i *Info) Callbacks() []string {
	var out []string
	for _, e := range i.Exports {
		if e.Kind == KindFunc && strings.HasPrefix(e.Name, "proxy_on_") {
			out = append(out, e.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (i *Info) hasExport(name string, kind ExternKind) bool {
	return slices.Contains(i.Exports, Export{Name: name, Kind: kind})
}

func (i *Info) hasExportKind(kind ExternKind) bool {
	return slices.ContainsFunc(i.Exports, func(e Export) bool { return e.Kind == kind })
}

// httpCallbacks are the callbacks through which an HTTP filter sees traffic;
// a filter must export at least one.
var httpCallbacks = []string{
	"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
	"proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
}

// ExportReport is what a module exports, checked against what Envoy's HTTP
// Wasm filter calls.
type ExportReport struct {
	// ABIVersion is "0.2.1", "0.2.0", "0.1.0" or empty.
	ABIVersion string
	// Callbacks are the exported proxy_on_* functions.
	Callbacks []string
	// Entry is "_initialize" for a WASI reactor (what Go's c-shared build
	// produces), "_start" for a command, or empty.
	Entry string
	// Missing lists what an HTTP filter must export but this module does
	// not; alternatives are written "a|b".
	Missing []string
}

// CheckExports checks the exports an HTTP filter needs: an ABI version of
// 0.2.x, a memory, an allocator (proxy_on_memory_allocate or malloc),
// proxy_on_context_create, proxy_on_vm_start, proxy_on_configure and at least
// one HTTP callback. The report's Err says what is missing.
func CheckExports(info *Info) ExportReport {
	r := ExportReport{Callbacks: info.Callbacks()}
	r.ABIVersion, _ = info.ABIVersion()
	switch {
	case info.hasExport("_initialize", KindFunc):
		r.Entry = "_initialize"
	case info.hasExport("_start", KindFunc):
		r.Entry = "_start"
	}
	if !info.hasExportKind(KindMemory) {
		r.Missing = append(r.Missing, "memory")
	}
	if !info.hasExport("proxy_on_memory_allocate", KindFunc) && !info.hasExport("malloc", KindFunc) {
		r.Missing = append(r.Missing, "proxy_on_memory_allocate|malloc")
	}
	for _, name := range []string{"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure"} {
		if !info.hasExport(name, KindFunc) {
			r.Missing = append(r.Missing, name)
		}
	}
	if !slices.ContainsFunc(httpCallbacks, func(n string) bool { return info.hasExport(n, KindFunc) }) {
		r.Missing = append(r.Missing, strings.Join(httpCallbacks, "|"))
	}
	return r
}

// Err returns nil when the module has what an HTTP filter needs, else an
// error wrapping ErrMissingABI (checked first) or ErrMissingExport.
func (r ExportReport) Err() error {
	switch r.ABIVersion {
	case ABI020, ABI021:
	case "":
		return fmt.Errorf("%w: no proxy_abi_version_0_2_1 or proxy_abi_version_0_2_0 export", ErrMissingABI)
	default:
		return fmt.Errorf("%w: module declares %s, want 0.2.1 or 0.2.0", ErrMissingABI, r.ABIVersion)
	}
	if len(r.Missing) > 0 {
		return fmt.Errorf("%w %s", ErrMissingExport, strings.Join(r.Missing, ", "))
	}
	return nil
}
