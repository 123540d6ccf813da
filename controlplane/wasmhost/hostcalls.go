package wasmhost

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostcall is one function of the "env" module. fn runs on the goroutine
// that called into the guest, with the guest's plugin locked, so it may use
// the plugin's state freely.
type hostcall struct {
	name   string
	params []api.ValueType
	fn     func(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func i32s(n int) []api.ValueType {
	out := make([]api.ValueType, n)
	for i := range out {
		out[i] = i32
	}
	return out
}

// hostcalls is every function proxy-wasm-cpp-host (Envoy's host) exports to
// guests in the "env" module, for ABI 0.1.0 and 0.2.x, so that any module
// Envoy loads also instantiates here. controlplane/abi's import allowlist
// says the same from Envoy's side; its tests check that every import it
// accepts is provided here (Runtime.Provides).
var hostcalls = []hostcall{
	{"proxy_log", i32s(3), hostLog},
	{"proxy_get_log_level", i32s(1), hostGetLogLevel},
	{"proxy_get_status", i32s(3), hostGetStatus},
	{"proxy_set_property", i32s(4), hostSetProperty},
	{"proxy_get_property", i32s(4), hostGetProperty},
	{"proxy_send_local_response", i32s(8), hostSendLocalResponse},
	{"proxy_get_shared_data", i32s(5), hostGetSharedData},
	{"proxy_set_shared_data", i32s(5), hostSetSharedData},
	{"proxy_register_shared_queue", i32s(3), hostRegisterSharedQueue},
	{"proxy_resolve_shared_queue", i32s(5), hostResolveSharedQueue},
	{"proxy_dequeue_shared_queue", i32s(3), hostDequeueSharedQueue},
	{"proxy_enqueue_shared_queue", i32s(3), hostEnqueueSharedQueue},
	{"proxy_get_header_map_value", i32s(5), hostGetHeaderMapValue},
	{"proxy_add_header_map_value", i32s(5), hostAddHeaderMapValue},
	{"proxy_replace_header_map_value", i32s(5), hostReplaceHeaderMapValue},
	{"proxy_remove_header_map_value", i32s(3), hostRemoveHeaderMapValue},
	{"proxy_get_header_map_pairs", i32s(3), hostGetHeaderMapPairs},
	{"proxy_set_header_map_pairs", i32s(3), hostSetHeaderMapPairs},
	{"proxy_get_header_map_size", i32s(2), hostGetHeaderMapSize},
	{"proxy_get_buffer_status", i32s(3), hostGetBufferStatus},
	{"proxy_get_buffer_bytes", i32s(5), hostGetBufferBytes},
	{"proxy_set_buffer_bytes", i32s(5), hostSetBufferBytes},
	{"proxy_http_call", i32s(10), hostHTTPCall},
	{"proxy_grpc_call", i32s(12), unimplemented},
	{"proxy_grpc_stream", i32s(9), unimplemented},
	{"proxy_grpc_close", i32s(1), unimplemented},
	{"proxy_grpc_cancel", i32s(1), unimplemented},
	{"proxy_grpc_send", i32s(4), unimplemented},
	{"proxy_set_tick_period_milliseconds", i32s(1), hostSetTickPeriod},
	{"proxy_get_current_time_nanoseconds", i32s(1), hostGetCurrentTime},
	{"proxy_define_metric", i32s(4), hostDefineMetric},
	{"proxy_increment_metric", []api.ValueType{i32, i64}, hostIncrementMetric},
	{"proxy_record_metric", []api.ValueType{i32, i64}, hostRecordMetric},
	{"proxy_get_metric", i32s(2), hostGetMetric},
	{"proxy_set_effective_context", i32s(1), hostSetEffectiveContext},
	{"proxy_done", nil, hostDone},
	{"proxy_call_foreign_function", i32s(6), hostCallForeignFunction},
	{"proxy_get_configuration", i32s(2), hostGetConfiguration},
	{"proxy_continue_request", nil, func(_ context.Context, p *Plugin, _ api.Module, _ []uint64) status {
		return p.continueStream(streamRequest)
	}},
	{"proxy_continue_response", nil, func(_ context.Context, p *Plugin, _ api.Module, _ []uint64) status {
		return p.continueStream(streamResponse)
	}},
	{"proxy_continue_stream", i32s(1), func(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
		return p.continueStream(streamType(a[0]))
	}},
	{"proxy_close_stream", i32s(1), hostCloseStream},
	{"proxy_clear_route_cache", nil, hostClearRouteCache},
	// Emscripten's runtime imports pthread_equal; proxy-wasm-cpp-host
	// registers it for every module (exports.cc) and answers whether its
	// arguments are equal. Its other Emscripten import returns nothing, so
	// instantiateHostModule adds it apart.
	{"pthread_equal", i32s(2), func(_ context.Context, _ *Plugin, _ api.Module, a []uint64) status {
		return status(boolArg(a[0] == a[1]))
	}},
}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("env")
	for _, h := range hostcalls {
		fn, params := h.fn, h.params
		b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			p, _ := ctx.Value(pluginKey{}).(*Plugin)
			if p == nil {
				stack[0] = uint64(statusInternalFailure)
				return
			}
			// The upper half of an i32 argument is undefined (wazero's
			// compiler leaves garbage there): clear it once for all.
			for i, t := range params {
				if t == i32 {
					stack[i] = uint64(uint32(stack[i]))
				}
			}
			stack[0] = uint64(fn(ctx, p, mod, stack))
		}), h.params, []api.ValueType{i32}).Export(h.name)
	}
	// void emscripten_notify_memory_growth(i32), a no-op in
	// proxy-wasm-cpp-host (exports.cc), registered for every module.
	b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}),
		i32s(1), nil).Export("emscripten_notify_memory_growth")
	_, err := b.Instantiate(ctx)
	return err
}

func unimplemented(context.Context, *Plugin, api.Module, []uint64) status {
	return statusUnimplemented
}

// Guest memory helpers. readBytes and readString copy, because a later
// allocation may move the guest's memory; viewBytes does not, for bytes the
// host is done with before the guest runs again.

func viewBytes(mod api.Module, ptr, size uint64) ([]byte, bool) {
	return mod.Memory().Read(uint32(ptr), uint32(size))
}

func readBytes(mod api.Module, ptr, size uint64) ([]byte, bool) {
	b, ok := viewBytes(mod, ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func readString(mod api.Module, ptr, size uint64) (string, bool) {
	b, ok := viewBytes(mod, ptr, size)
	return string(b), ok
}

func writeU32(mod api.Module, ptr uint64, v uint32) status {
	if !mod.Memory().WriteUint32Le(uint32(ptr), v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

func writeU64(mod api.Module, ptr uint64, v uint64) status {
	if !mod.Memory().WriteUint64Le(uint32(ptr), v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// copyOut hands data to the guest: memory from its proxy_on_memory_allocate,
// address and size written at ptrPtr and sizePtr. Empty data is address 0,
// size 0, as in proxy-wasm-cpp-host.
func copyOut[T string | []byte](ctx context.Context, p *Plugin, mod api.Module, data T, ptrPtr, sizePtr uint64) status {
	dst, addr, st := p.guestAlloc(ctx, mod, len(data))
	if st != statusOK {
		return st
	}
	copy(dst, data)
	return p.handOver(mod, addr, len(data), ptrPtr, sizePtr)
}

// guestAlloc gets size bytes from the guest's proxy_on_memory_allocate and
// returns them as a view of guest memory for the host to fill in place (no
// copy of its own). The view is valid until the guest runs again. Size 0
// allocates nothing: address 0.
func (p *Plugin) guestAlloc(ctx context.Context, mod api.Module, size int) ([]byte, uint32, status) {
	if size == 0 {
		return nil, 0, statusOK
	}
	malloc := p.fn.malloc
	if malloc == nil { // still in _initialize
		if malloc = mod.ExportedFunction("proxy_on_memory_allocate"); malloc == nil {
			return nil, 0, statusInternalFailure
		}
	}
	// Not a fresh slice per call: re-entering the guest is the one cost
	// here the ABI imposes, so nothing else should add to it.
	stack := p.mallocStack[:]
	stack[0] = uint64(size)
	if err := malloc.CallWithStack(ctx, stack); err != nil || uint32(stack[0]) == 0 {
		return nil, 0, statusInvalidMemoryAccess
	}
	addr := uint32(stack[0])
	dst, ok := mod.Memory().Read(addr, uint32(size))
	if !ok {
		return nil, 0, statusInvalidMemoryAccess
	}
	return dst, addr, statusOK
}

// handOver writes where the guest's data went (address and size) to the
// guest's out-parameters.
func (p *Plugin) handOver(mod api.Module, addr uint32, size int, ptrPtr, sizePtr uint64) status {
	if writeU32(mod, ptrPtr, addr) != statusOK || writeU32(mod, sizePtr, uint32(size)) != statusOK {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// Logging and status.

func hostLog(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	level := LogLevel(a[0])
	if level > LogCritical {
		return statusBadArgument
	}
	msg, ok := mod.Memory().Read(uint32(a[1]), uint32(a[2]))
	if !ok {
		return statusInvalidMemoryAccess
	}
	if p.logs(level) { // most lines go nowhere: copy only those that do
		p.log(level, string(msg))
	}
	return statusOK
}

func hostGetLogLevel(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	return writeU32(mod, a[0], uint32(p.cfg.LogLevel))
}

func hostGetStatus(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if st := writeU32(mod, a[0], p.statusCode); st != statusOK {
		return st
	}
	return copyOut(ctx, p, mod, p.statusMsg, a[1], a[2])
}

func hostGetCurrentTime(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	return writeU64(mod, a[0], uint64(p.cfg.Clock().UnixNano()))
}

func hostSetTickPeriod(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	p.tickPeriod = time.Duration(uint32(a[0])) * time.Millisecond
	select { // RunTicks restarts its timer
	case p.tickSet <- struct{}{}:
	default:
	}
	return statusOK
}

func hostSetEffectiveContext(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	id := uint32(a[0])
	if id != p.rootID && p.streams[id] == nil {
		return statusBadArgument
	}
	p.effective = id
	return statusOK
}

// hostDone is proxy_done: the guest finished the work it delayed in
// proxy_on_done. The host does not wait for it (Close closes at once).
func hostDone(context.Context, *Plugin, api.Module, []uint64) status {
	return statusOK
}

// hostCallForeignFunction runs the one foreign function wasmfleet's hosts
// register, Envoy's "clear_route_cache" (registerClearRouteCacheForeignFunction
// in source/extensions/common/wasm/foreign.cc): what ABI 0.2.x modules call,
// since proxy_clear_route_cache is registered for ABI 0.1.0 only
// (proxy-wasm-cpp-host's WasmBase::registerCallbacks). It takes no
// arguments and returns no result. Any other name is NotFound.
func hostCallForeignFunction(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	name, ok := readString(mod, a[0], a[1])
	if !ok {
		return statusInvalidMemoryAccess
	}
	if name != "clear_route_cache" {
		return statusNotFound
	}
	return hostClearRouteCache(ctx, p, mod, nil)
}

// hostGetConfiguration is ABI 0.1.0's proxy_get_configuration.
func hostGetConfiguration(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	cfg := p.cfg.VMConfig
	if p.configuring {
		cfg = p.cfg.Configuration
	}
	return copyOut(ctx, p, mod, cfg, a[0], a[1])
}

// Properties.

func hostGetProperty(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	path, ok := viewBytes(mod, a[0], a[1]) // property turns it into strings
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, ok := p.property(path)
	if !ok {
		return statusNotFound
	}
	return copyOut(ctx, p, mod, v, a[2], a[3])
}

func hostSetProperty(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	path, ok := viewBytes(mod, a[0], a[1]) // propertyKey turns it into a string
	value, ok2 := readBytes(mod, a[2], a[3])
	if !ok || !ok2 {
		return statusInvalidMemoryAccess
	}
	s := p.stream()
	if s == nil { // Envoy keeps these in the stream's filter state
		return statusNotFound
	}
	if s.props == nil {
		s.props = map[string][]byte{}
	}
	s.props[propertyKey(path)] = value
	return statusOK
}

// hostClearRouteCache is Envoy's Context::clearRouteCache
// (source/extensions/common/wasm/context.h): the decoder callbacks'
// downstreamCallbacks()->clearRouteCache(), for the stream the call is on.
func hostClearRouteCache(_ context.Context, p *Plugin, _ api.Module, _ []uint64) status {
	if s := p.stream(); s != nil && s.info.ClearRouteCache != nil {
		s.info.ClearRouteCache()
	}
	return statusOK
}
