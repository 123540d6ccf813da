package abi

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknownImport: the module imports something no proxy-wasm host
// provides, so every Envoy would refuse to load it.
var ErrUnknownImport = errors.New("unknown import")

// Hosts a module can need, oldest first, as ImportReport.MinHost says them.
const (
	// HostEnvoy133 is the oldest Envoy wasmfleet targets (the proxy-wasm Go
	// SDK needs it): proxy-wasm-cpp-host with PR #427.
	HostEnvoy133 = "envoy>=1.33"
	// HostPR533 is an Envoy whose proxy-wasm-cpp-host has PR #533 (merged
	// 2026-04-06), which registers the rest of WASI preview 1. Envoy picks it
	// up with envoyproxy/envoy#45756; no Envoy release containing it could be
	// established when this was written.
	HostPR533 = "envoy with proxy-wasm-cpp-host PR #533 (envoyproxy/envoy#45756)"
)

// hostRank orders the hosts so the newest one a module needs wins.
var hostRank = map[string]int{HostEnvoy133: 0, HostPR533: 1}

// category is where CheckImports files a known import.
type category int

const (
	catProxy category = iota
	catWASI
	catWASINewer
)

const (
	modEnv  = "env"
	wasiP1  = "wasi_snapshot_preview1"
	wasiOld = "wasi_unstable"
	anyABI  = ""
	abi01   = ABI010
	abi02   = ABI020 + " " + ABI021
	abi021  = ABI021
)

// hostTable lists every function proxy-wasm-cpp-host (Envoy's Wasm host)
// registers for a module to import, taken from its git history:
//   - env.proxy_*: FOR_ALL_HOST_FUNCTIONS and FOR_ALL_HOST_FUNCTIONS_ABI_SPECIFIC
//     in include/proxy-wasm/exports.h, registered per declared ABI version by
//     WasmBase::registerCallbacks in src/wasm.cc (unchanged from PR #427 to
//     the current head);
//   - env.pthread_equal and env.emscripten_notify_memory_growth: registered
//     unconditionally by the same function;
//   - WASI: FOR_ALL_WASI_FUNCTIONS in exports.h, registered under both
//     wasi_unstable and wasi_snapshot_preview1. PR #427 (commit c4d7bb0,
//     2024-12-19) added fd_fdstat_set_flags, sched_yield and poll_oneoff to
//     the older set; PR #533 (commit 94091cd, 2026-04-06) added the rest.
//
// It is also what admission's trial run must provide: a test holds
// controlplane/wasmhost to every function listed here.
var hostTable = []struct {
	modules []string
	names   string // space-separated
	host    string
	cat     category
	abis    string // ABI versions the host registers these for (space-separated)
}{
	{[]string{modEnv}, `proxy_log proxy_get_status proxy_set_property proxy_get_property
		proxy_send_local_response proxy_get_shared_data proxy_set_shared_data
		proxy_register_shared_queue proxy_resolve_shared_queue proxy_dequeue_shared_queue
		proxy_enqueue_shared_queue proxy_get_header_map_value proxy_add_header_map_value
		proxy_replace_header_map_value proxy_remove_header_map_value proxy_get_header_map_pairs
		proxy_set_header_map_pairs proxy_get_header_map_size proxy_get_buffer_status
		proxy_get_buffer_bytes proxy_set_buffer_bytes proxy_http_call proxy_grpc_call
		proxy_grpc_stream proxy_grpc_close proxy_grpc_cancel proxy_grpc_send
		proxy_set_tick_period_milliseconds proxy_get_current_time_nanoseconds proxy_define_metric
		proxy_increment_metric proxy_record_metric proxy_get_metric proxy_set_effective_context
		proxy_done proxy_call_foreign_function`, HostEnvoy133, catProxy, anyABI},
	{[]string{modEnv}, `proxy_get_configuration proxy_continue_request proxy_continue_response
		proxy_clear_route_cache`, HostEnvoy133, catProxy, abi01},
	{[]string{modEnv}, `proxy_continue_stream proxy_close_stream`, HostEnvoy133, catProxy, abi02},
	{[]string{modEnv}, `proxy_get_log_level`, HostEnvoy133, catProxy, abi021},
	{[]string{modEnv}, `pthread_equal emscripten_notify_memory_growth`, HostEnvoy133, catProxy, anyABI},
	// WASI before PR #427.
	{[]string{wasiP1, wasiOld}, `fd_write fd_read fd_seek fd_close fd_fdstat_get environ_get
		environ_sizes_get args_get args_sizes_get clock_time_get random_get proc_exit path_open
		fd_prestat_get fd_prestat_dir_name`, HostEnvoy133, catWASI, anyABI},
	// WASI added by PR #427.
	{[]string{wasiP1, wasiOld}, `fd_fdstat_set_flags sched_yield poll_oneoff`, HostEnvoy133, catWASI, anyABI},
	// WASI added by PR #533.
	{[]string{wasiP1, wasiOld}, `fd_fdstat_set_rights clock_res_get fd_advise fd_allocate
		fd_datasync fd_filestat_set_size fd_filestat_set_times fd_pread fd_pwrite fd_readdir
		fd_renumber fd_sync fd_tell path_create_directory path_filestat_set_times path_link
		path_readlink path_remove_directory path_rename path_symlink path_unlink_file sock_accept
		sock_recv sock_send sock_shutdown path_filestat_get fd_filestat_get`, HostPR533, catWASINewer, anyABI},
}

type hostFunc struct {
	host string
	cat  category
	abis []string // empty: every ABI version
}

// hostFuncs indexes hostTable by "module.name".
var hostFuncs = func() map[string]hostFunc {
	m := map[string]hostFunc{}
	for _, row := range hostTable {
		for _, mod := range row.modules {
			for _, name := range strings.Fields(row.names) {
				m[mod+"."+name] = hostFunc{host: row.host, cat: row.cat, abis: strings.Fields(row.abis)}
			}
		}
	}
	return m
}()

// ImportReport says which host a module needs and files each import under
// what provides it.
type ImportReport struct {
	// MinHost is the oldest host that provides every known import (one of
	// the Host* constants).
	MinHost string
	// Proxy are env.* imports of the proxy-wasm ABI.
	Proxy []string
	// WASI are WASI imports Envoy >= 1.33 provides.
	WASI []string
	// WASINewer are WASI imports only a host with proxy-wasm-cpp-host PR
	// #533 provides.
	WASINewer []string
	// Unknown are imports no host provides, each with the reason.
	Unknown []string
}

// CheckImports files every import of the module by the host that provides
// it. An env.proxy_* function the host registers only for other ABI versions
// than the module declares is unknown, as is any import that is not a
// function (Envoy provides only functions; V8 would make up a memory or
// table, other engines do not).
func CheckImports(info *Info) ImportReport {
	r := ImportReport{MinHost: HostEnvoy133}
	abiVersion, _ := info.ABIVersion()
	for _, im := range info.Imports {
		f, ok := hostFuncs[im.String()]
		switch {
		case im.Kind != KindFunc:
			r.Unknown = append(r.Unknown, fmt.Sprintf("%s (%s): hosts provide only functions", im, im.Kind))
			continue
		case !ok:
			r.Unknown = append(r.Unknown, fmt.Sprintf("%s: no proxy-wasm host provides it", im))
			continue
		case len(f.abis) > 0 && !slices.Contains(f.abis, abiVersion):
			r.Unknown = append(r.Unknown, fmt.Sprintf("%s: provided only for ABI %s, module declares %q",
				im, strings.Join(f.abis, " or "), abiVersion))
			continue
		}
		if hostRank[f.host] > hostRank[r.MinHost] {
			r.MinHost = f.host
		}
		switch f.cat {
		case catProxy:
			r.Proxy = append(r.Proxy, im.String())
		case catWASI:
			r.WASI = append(r.WASI, im.String())
		case catWASINewer:
			r.WASINewer = append(r.WASINewer, im.String())
		}
	}
	// A module may import one function twice (Go imports fd_write twice).
	for _, list := range []*[]string{&r.Proxy, &r.WASI, &r.WASINewer, &r.Unknown} {
		slices.Sort(*list)
		*list = slices.Compact(*list)
	}
	return r
}

// Err returns nil when every import is known, else an error wrapping
// ErrUnknownImport that names each unknown import.
func (r ImportReport) Err() error {
	if len(r.Unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s", ErrUnknownImport, strings.Join(r.Unknown, "; "))
}
