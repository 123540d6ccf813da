package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// Envoy loads also instantiates here.
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
	{"proxy_clear_route_cache", nil, func(context.Context, *Plugin, api.Module, []uint64) status { return statusOK }},
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

// hostCallForeignFunction: the host registers no foreign functions.
func hostCallForeignFunction(_ context.Context, _ *Plugin, mod api.Module, a []uint64) status {
	if _, ok := readString(mod, a[0], a[1]); !ok {
		return statusInvalidMemoryAccess
	}
	return statusNotFound
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

// HTTP streams.

func (p *Plugin) continueStream(t streamType) status {
	if t > streamResponse {
		return statusBadArgument
	}
	if s := p.stream(); s != nil {
		s.waiting[t] = false
	}
	return statusOK
}

func hostCloseStream(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	if streamType(a[0]) > streamResponse {
		return statusBadArgument
	}
	if s := p.stream(); s != nil {
		s.reset = true
	}
	return statusOK
}

func hostSendLocalResponse(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	details, ok1 := readString(mod, a[1], a[2])
	body, ok2 := readBytes(mod, a[3], a[4])
	raw, ok3 := viewBytes(mod, a[5], a[6]) // decodePairs copies into strings
	if !ok1 || !ok2 || !ok3 {
		return statusInvalidMemoryAccess
	}
	pairs, err := decodePairs(raw)
	if err != nil {
		pairs = nil // Envoy's parser yields no headers for malformed pairs
	}
	s := p.stream()
	if s == nil {
		return statusOK // Envoy ignores it outside a stream
	}
	h := &Headers{}
	h.replaceAll(pairs)
	s.local = &LocalResponse{Status: int(uint32(a[0])), Headers: h, Body: body, Details: details, GRPCStatus: int32(uint32(a[7]))}
	return statusOK
}

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

// Buffers.

// buffer returns the buffer a guest names: a pointer to the bytes when it
// may change them, else the bytes; found is false when there is none now.
func (p *Plugin) buffer(t BufferType) (data []byte, mutable *[]byte, found bool) {
	s := p.stream()
	switch t {
	case RequestBody, ResponseBody:
		if s == nil {
			return nil, nil, false
		}
		b := &s.requestBody.buf
		if t == ResponseBody {
			b = &s.responseBody.buf
		}
		return *b, b, true
	case bufferHTTPCallResponseBody:
		if p.calloutResp == nil {
			return nil, nil, false
		}
		return p.calloutResp.Body, nil, true
	case bufferVMConfiguration:
		return p.cfg.VMConfig, nil, true
	case bufferPluginConfiguration:
		if !p.configuring { // Envoy offers it during proxy_on_configure only
			return nil, nil, false
		}
		return p.cfg.Configuration, nil, true
	}
	return nil, nil, false // TCP data, gRPC and call data: not hosted here
}

func hostGetBufferStatus(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(bufferCallData) {
		return statusBadArgument
	}
	data, _, found := p.buffer(BufferType(a[0]))
	if !found {
		return statusNotFound
	}
	if st := writeU32(mod, a[1], uint32(len(data))); st != statusOK {
		return st
	}
	return writeU32(mod, a[2], 0)
}

func hostGetBufferBytes(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(bufferCallData) {
		return statusBadArgument
	}
	data, _, found := p.buffer(BufferType(a[0]))
	if !found {
		return statusNotFound
	}
	start, length := uint64(uint32(a[1])), uint64(uint32(a[2]))
	if start > uint64(len(data)) {
		return statusOK
	}
	length = min(length, uint64(len(data))-start)
	if length == 0 {
		return statusOK // nothing written, as in proxy-wasm-cpp-host
	}
	return copyOut(ctx, p, mod, data[start:start+length], a[3], a[4])
}

// hostSetBufferBytes follows Envoy's Buffer::copyFrom: start 0 and length 0
// prepends, start 0 and length >= size replaces, start >= size appends;
// anything else (an edit in the middle) is BadArgument.
func hostSetBufferBytes(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(bufferCallData) {
		return statusBadArgument
	}
	_, b, found := p.buffer(BufferType(a[0]))
	if !found {
		return statusNotFound
	}
	if b == nil {
		return statusBadArgument
	}
	data, ok := readBytes(mod, a[3], a[4])
	if !ok {
		return statusInvalidMemoryAccess
	}
	return editBuffer(b, uint32(a[1]), uint32(a[2]), data)
}

func editBuffer(b *[]byte, start, length uint32, data []byte) status {
	size := uint32(len(*b))
	switch {
	case start == 0 && length == 0:
		*b = slices.Concat(data, *b) // never append into data: it may share memory with *b
	case start == 0 && length >= size:
		*b = data
	case start >= size:
		*b = append(*b, data...)
	default:
		return statusBadArgument
	}
	return statusOK
}

// Shared data and queues.

func hostGetSharedData(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	key, ok := readString(mod, a[0], a[1])
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, cas, ok := p.cfg.Shared.Get(p.cfg.VMID, key)
	if !ok {
		return statusNotFound
	}
	if st := copyOut(ctx, p, mod, v, a[2], a[3]); st != statusOK {
		return st
	}
	return writeU32(mod, a[4], cas)
}

func hostSetSharedData(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	key, ok1 := readString(mod, a[0], a[1])
	value, ok2 := viewBytes(mod, a[2], a[3]) // set copies it
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return p.cfg.Shared.set(p.cfg.VMID, key, value, uint32(a[4]))
}

func hostRegisterSharedQueue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	name, ok := readString(mod, a[0], a[1])
	if !ok {
		return statusInvalidMemoryAccess
	}
	token := p.cfg.Shared.register(p.cfg.VMID, name, p.notifyQueue)
	p.queues = append(p.queues, token)
	return writeU32(mod, a[2], token)
}

func hostResolveSharedQueue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	vmID, ok1 := readString(mod, a[0], a[1])
	name, ok2 := readString(mod, a[2], a[3])
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	token, ok := p.cfg.Shared.resolve(vmID, name)
	if !ok {
		return statusNotFound
	}
	return writeU32(mod, a[4], token)
}

func hostEnqueueSharedQueue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	value, ok := viewBytes(mod, a[1], a[2]) // enqueue copies it
	if !ok {
		return statusInvalidMemoryAccess
	}
	return p.cfg.Shared.enqueue(uint32(a[0]), value)
}

func hostDequeueSharedQueue(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	v, st := p.cfg.Shared.dequeue(uint32(a[0]))
	if st != statusOK {
		return st
	}
	return copyOut(ctx, p, mod, v, a[1], a[2])
}

// Metrics. Ids carry the type in their low two bits, as Envoy's do, so a
// guest that mixes them up gets Envoy's answers.

const metricTypeMask = 3

func hostDefineMetric(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	typ := MetricType(a[0])
	if typ > MetricHistogram {
		return statusBadArgument
	}
	name, ok := readString(mod, a[1], a[2])
	if !ok {
		return statusInvalidMemoryAccess
	}
	p.nextMetric++
	id := p.nextMetric<<2 | uint32(typ)
	p.metrics[id] = metricRef{m: p.cfg.Metrics.define(name, typ), typ: typ}
	return writeU32(mod, a[3], id)
}

func (p *Plugin) metric(id uint64) (metricRef, status) {
	if MetricType(id&metricTypeMask) > MetricHistogram {
		return metricRef{}, statusBadArgument
	}
	r, ok := p.metrics[uint32(id)]
	if !ok {
		return metricRef{}, statusNotFound
	}
	return r, statusOK
}

func hostIncrementMetric(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	r, st := p.metric(a[0])
	if st != statusOK {
		return st
	}
	return p.cfg.Metrics.increment(r.m, r.typ, int64(a[1]))
}

func hostRecordMetric(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	r, st := p.metric(a[0])
	if st != statusOK {
		return st
	}
	p.cfg.Metrics.record(r.m, r.typ, a[1])
	return statusOK
}

func hostGetMetric(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	r, st := p.metric(a[0])
	if st != statusOK {
		return st
	}
	v, st := p.cfg.Metrics.get(r.m, r.typ)
	if st != statusOK {
		return st
	}
	return writeU64(mod, a[1], v)
}

// HTTP callouts.

func hostHTTPCall(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	cluster, ok1 := readString(mod, a[0], a[1])
	rawHeaders, ok2 := viewBytes(mod, a[2], a[3]) // decoded below, before the guest runs again
	body, ok3 := readBytes(mod, a[4], a[5])
	rawTrailers, ok4 := viewBytes(mod, a[6], a[7])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return statusInvalidMemoryAccess
	}
	if st := writeU32(mod, a[9], 0); st != statusOK { // check before calling out, as Envoy does
		return st
	}
	headers, err1 := decodePairs(rawHeaders)
	trailers, err2 := decodePairs(rawTrailers)
	if err1 != nil || err2 != nil {
		return statusBadArgument
	}
	req := &HTTPCallRequest{Cluster: cluster, Headers: &Headers{}, Body: body, Trailers: &Headers{}, Timeout: time.Duration(uint32(a[8])) * time.Millisecond}
	req.Headers.replaceAll(headers)
	req.Trailers.replaceAll(trailers)
	for _, h := range []string{":path", ":method", ":authority"} {
		if _, ok := req.Headers.Get(h); !ok {
			return statusBadArgument
		}
	}
	if p.cfg.HTTPCall == nil {
		return statusBadArgument
	}
	cctx := ctx
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	resp, err := p.cfg.HTTPCall.HTTPCall(cctx, req)
	if errors.Is(err, ErrUnknownCluster) {
		return statusBadArgument
	}
	if err == nil && resp == nil {
		err = fmt.Errorf("cluster %s: no response", cluster)
	}
	if err != nil {
		resp = nil
	}
	p.nextCallout++
	token := p.nextCallout
	p.callouts = append(p.callouts, callout{token: token, resp: resp, err: err})
	return writeU32(mod, a[9], token)
}
