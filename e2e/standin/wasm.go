package standin

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
)

// pluginSpec is the part of a Wasm filter config that makes its VMs.
type pluginSpec struct {
	slot, name, rootID, vmID string
	vmConfig, configuration  []byte
	env                      map[string]string
	failOpen                 bool
	// allowHeadersStop: a Pause from a headers callback is StopIteration
	// (the body still reaches the filter), not StopAllIterationAndWatermark.
	allowHeadersStop bool
}

// wasmHost loads modules into VMs. It is safe for concurrent use.
type wasmHost interface {
	// load starts the VMs of one filter config: compile (cached by the code's
	// sha256), instantiate, proxy_on_vm_start, proxy_on_configure. Any
	// failure fails the load, which NACKs the update that asked for it.
	load(ctx context.Context, spec pluginSpec, code []byte, digest string) (vm, error)
	close(ctx context.Context)
}

// host runs modules through controlplane/wasmhost. Compiled modules are
// kept per digest for the node's life, like Envoy's code cache.
type host struct {
	rt     *wasmhost.Runtime
	vms    int
	log    func(dataplane.LogLine)
	warn   *zap.Logger // the node's own log, for VM failures outside requests
	shared *wasmhost.SharedData
	// metrics and logLevel are the node's (node.metrics, node.logLevel).
	metrics  *wasmhost.Metrics
	logLevel wasmhost.LogLevel
	// call serves the guests' proxy_http_call through the node's clusters.
	call wasmhost.HTTPCaller

	mu       sync.Mutex
	compiled map[string]*wasmhost.Module
}

var _ wasmHost = (*host)(nil)

func newWasmHost(ctx context.Context, n *node) (*host, error) {
	// Like Envoy, no per-callback timeout: a guest that loops forever hangs
	// its worker. Interruption would cost a goroutine per guest call.
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Interpreter: n.cfg.Interpreter, MemoryLimitMiB: n.cfg.MemoryLimitMiB, Uninterruptible: true})
	if err != nil {
		return nil, err
	}
	return &host{
		rt: rt, vms: n.cfg.VMsPerFilter, log: n.appendLog, warn: n.log, shared: wasmhost.NewSharedData(),
		metrics: n.metrics, logLevel: n.logLevel,
		call: wasmhost.HTTPCallerFunc(n.httpCall), compiled: map[string]*wasmhost.Module{},
	}, nil
}

func (h *host) module(ctx context.Context, code []byte, digest string) (*wasmhost.Module, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.compiled[digest]; ok {
		return m, nil
	}
	if err := linkable(code); err != nil {
		return nil, err
	}
	m, err := h.rt.Compile(ctx, code)
	if err != nil {
		return nil, err
	}
	h.compiled[digest] = m
	return m, nil
}

func (h *host) load(ctx context.Context, spec pluginSpec, code []byte, digest string) (vm, error) {
	m, err := h.module(ctx, code, digest)
	if err != nil {
		return nil, fmt.Errorf("wasm: %s: %w", spec.name, err)
	}
	v := &pool{ctx: ctx, failOpen: spec.failOpen, allowHeadersStop: spec.allowHeadersStop}
	for range h.vms {
		p, err := m.NewPlugin(ctx, wasmhost.PluginConfig{
			Name:          spec.name,
			RootID:        spec.rootID,
			VMID:          spec.vmID,
			VMConfig:      spec.vmConfig,
			Configuration: spec.configuration,
			Env:           spec.env,
			Shared:        h.shared,
			Metrics:       h.metrics,
			HTTPCall:      h.call,
			LogLevel:      h.logLevel,
			Log: func(level wasmhost.LogLevel, msg string) {
				h.log(dataplane.LogLine{Filter: spec.slot, Plugin: spec.name, Level: level.String(), Message: msg})
			},
		})
		if err != nil {
			v.close()
			return nil, fmt.Errorf("wasm: %s: %w", spec.name, err)
		}
		v.plugins = append(v.plugins, p)
		// Each VM has its own tick timer, as each Envoy worker's VM does.
		v.tickers.Go(func() {
			if err := p.RunTicks(ctx); err != nil {
				h.warn.Warn("wasm tick failed", zap.String("filter", spec.slot), zap.Error(err))
			}
		})
	}
	return v, nil
}

func (h *host) close(ctx context.Context) {
	_ = h.rt.Close(ctx)
}

// pool is one loaded filter config: one plugin (VM) per worker, as Envoy
// runs one VM per worker thread. A request is pinned to one VM, chosen
// round robin; the VM runs one callback at a time.
type pool struct {
	ctx              context.Context
	failOpen         bool
	allowHeadersStop bool
	plugins          []*wasmhost.Plugin
	next             atomic.Uint64
	tickers          sync.WaitGroup // one RunTicks per plugin; they end when it closes
}

var _ vm = (*pool)(nil)

func (v *pool) newStream(rs *routeState) (filterStream, error) {
	p := v.plugins[(v.next.Add(1)-1)%uint64(len(v.plugins))]
	if p.Failed() != nil {
		// A VM that trapped earlier follows the failure policy.
		if v.failOpen {
			return nil, nil
		}
		return failClosed{}, nil
	}
	s, err := p.NewHTTPStreamInfo(v.ctx, rs.streamInfo())
	if err != nil {
		return nil, err
	}
	return &wasmStream{s: s, allowHeadersStop: v.allowHeadersStop}, nil
}

func (v *pool) close() {
	for _, p := range v.plugins {
		_ = p.Close(context.WithoutCancel(v.ctx))
	}
	v.tickers.Wait()
}

// wasmStream adapts a wasmhost stream to the proxy's filterStream.
type wasmStream struct {
	s                *wasmhost.HTTPStream
	allowHeadersStop bool // pluginSpec.allowHeadersStop
}

// awaitFunc is HTTPStream.AwaitRequest or AwaitResponse.
type awaitFunc func(context.Context) (wasmhost.Action, error)

func (w *wasmStream) requestHeaders(ctx context.Context, h *headerMap, eos bool) (action, error) {
	return w.headers(ctx, w.s.RequestHeaders, w.s.AwaitRequest, h, eos)
}

func (w *wasmStream) responseHeaders(ctx context.Context, h *headerMap, eos bool) (action, error) {
	return w.headers(ctx, w.s.ResponseHeaders, w.s.AwaitResponse, h, eos)
}

func (w *wasmStream) headers(ctx context.Context, call func(*wasmhost.Headers, bool) (wasmhost.Action, error), await awaitFunc, h *headerMap, eos bool) (action, error) {
	wh := &wasmhost.Headers{}
	for _, kv := range *h {
		wh.Add(kv[0], kv[1])
	}
	a, err := call(wh, eos)
	if eos || !w.stopIteration(a) {
		a, err = w.hold(ctx, a, err, await)
	}
	*h = wh.All() // after the wait: the filter may edit the headers before it resumes
	return toAction(a), err
}

func (w *wasmStream) requestBody(ctx context.Context, b *[]byte, eos bool) (action, error) {
	return w.body(ctx, w.s.RequestBody, w.s.AwaitRequest, wasmhost.RequestBody, b, eos)
}

func (w *wasmStream) responseBody(ctx context.Context, b *[]byte, eos bool) (action, error) {
	return w.body(ctx, w.s.ResponseBody, w.s.AwaitResponse, wasmhost.ResponseBody, b, eos)
}

func (w *wasmStream) body(ctx context.Context, call func([]byte, bool) (wasmhost.Action, error), await awaitFunc, t wasmhost.BufferType, b *[]byte, eos bool) (action, error) {
	a, err := call(*b, eos)
	if eos {
		a, err = w.hold(ctx, a, err, await)
	}
	*b = w.s.Body(t)
	return toAction(a), err
}

// stopIteration says whether a headers callback's result is Envoy's
// StopIteration, after which the filter still gets the body: only Pause,
// and only with allow_on_headers_stop_iteration. Otherwise a Pause is
// StopAllIterationAndWatermark, which gives the body to no filter, this one
// included, until it resumes the stream: proxy-wasm-cpp-host's
// ContextBase::convertVmCallResultToFilterHeadersStatus (src/context.cc),
// Envoy's Context::Context reading the flag
// (source/extensions/common/wasm/context.cc), and StopAllIterationAndWatermark
// in envoy/http/filter.h. The larger statuses a guest may return are
// StopAll already.
func (w *wasmStream) stopIteration(a wasmhost.Action) bool {
	return a == wasmhost.ActionPause && w.allowHeadersStop
}

// hold keeps a stream the filter stopped at its end, or stopped all
// iteration on (see stopIteration), without a reply, until
// the filter resumes it from a later callback (a tick, a queue
// notification; callout responses arrive before the callback returns, see
// wasmhost.HTTPCaller), replies, or resets it, or the request ends: Envoy
// holds such a stream the same way, bounded only by the connection
// manager's timeouts.
func (w *wasmStream) hold(ctx context.Context, a wasmhost.Action, err error, await awaitFunc) (wasmhost.Action, error) {
	if err != nil || a == wasmhost.ActionContinue || w.s.LocalResponse() != nil {
		return a, err
	}
	return await(ctx)
}

func (w *wasmStream) local() *localReply {
	lr := w.s.LocalResponse()
	if lr == nil {
		return nil
	}
	out := &localReply{status: lr.Status, body: lr.Body}
	if lr.Headers != nil {
		out.headers = lr.Headers.All()
	}
	return out
}

func (w *wasmStream) done() { _ = w.s.Done() }

func toAction(a wasmhost.Action) action {
	if a == wasmhost.ActionContinue {
		return actContinue
	}
	return actStop
}

// linkable fails a module that imports what Envoy does not provide to its
// ABI version, as Envoy's runtime fails to link it ("Failed to load Wasm
// module due to a missing import"): proxy-wasm-cpp-host registers some
// host functions for one ABI only (WasmBase::registerCallbacks in
// src/wasm.cc), while wasmhost provides every function to every module.
// The table is admission's (abi.CheckImports), so the stand-in loads what
// admission lets through and nothing Envoy would refuse.
func linkable(code []byte) error {
	info, err := abi.Inspect(code)
	if err != nil {
		return err
	}
	return abi.CheckImports(info).Err()
}
