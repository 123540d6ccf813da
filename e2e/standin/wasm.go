package standin

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
)

// pluginSpec is the part of a Wasm filter config that makes its VMs.
type pluginSpec struct {
	slot, name, rootID, vmID string
	vmConfig, configuration  []byte
	failOpen                 bool
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
	shared *wasmhost.SharedData

	mu       sync.Mutex
	compiled map[string]*wasmhost.Module
}

var _ wasmHost = (*host)(nil)

func newWasmHost(ctx context.Context, cfg Config, log func(dataplane.LogLine)) (*host, error) {
	// Like Envoy, no per-callback timeout: a guest that loops forever hangs
	// its worker. Interruption would cost a goroutine per guest call.
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Interpreter: cfg.Interpreter, MemoryLimitMiB: cfg.MemoryLimitMiB, Uninterruptible: true})
	if err != nil {
		return nil, err
	}
	return &host{rt: rt, vms: cfg.VMsPerFilter, log: log, shared: wasmhost.NewSharedData(), compiled: map[string]*wasmhost.Module{}}, nil
}

func (h *host) module(ctx context.Context, code []byte, digest string) (*wasmhost.Module, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.compiled[digest]; ok {
		return m, nil
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
	v := &pool{ctx: ctx, failOpen: spec.failOpen}
	for range h.vms {
		p, err := m.NewPlugin(ctx, wasmhost.PluginConfig{
			Name:          spec.name,
			RootID:        spec.rootID,
			VMID:          spec.vmID,
			VMConfig:      spec.vmConfig,
			Configuration: spec.configuration,
			Shared:        h.shared,
			Log: func(level wasmhost.LogLevel, msg string) {
				h.log(dataplane.LogLine{Filter: spec.slot, Plugin: spec.name, Level: level.String(), Message: msg})
			},
		})
		if err != nil {
			v.close()
			return nil, fmt.Errorf("wasm: %s: %w", spec.name, err)
		}
		v.plugins = append(v.plugins, p)
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
	ctx      context.Context
	failOpen bool
	plugins  []*wasmhost.Plugin
	next     atomic.Uint64
}

var _ vm = (*pool)(nil)

func (v *pool) newStream() (filterStream, error) {
	p := v.plugins[(v.next.Add(1)-1)%uint64(len(v.plugins))]
	if p.Failed() != nil {
		// A VM that trapped earlier follows the failure policy.
		if v.failOpen {
			return nil, nil
		}
		return failClosed{}, nil
	}
	s, err := p.NewHTTPStream(v.ctx)
	if err != nil {
		return nil, err
	}
	return &wasmStream{s: s}, nil
}

func (v *pool) close() {
	for _, p := range v.plugins {
		_ = p.Close(context.WithoutCancel(v.ctx))
	}
}

// wasmStream adapts a wasmhost stream to the proxy's filterStream.
type wasmStream struct {
	s *wasmhost.HTTPStream
}

func (w *wasmStream) requestHeaders(h *headerMap, eos bool) (action, error) {
	return w.headers(w.s.RequestHeaders, h, eos)
}

func (w *wasmStream) responseHeaders(h *headerMap, eos bool) (action, error) {
	return w.headers(w.s.ResponseHeaders, h, eos)
}

func (w *wasmStream) headers(call func(*wasmhost.Headers, bool) (wasmhost.Action, error), h *headerMap, eos bool) (action, error) {
	wh := &wasmhost.Headers{}
	for _, kv := range *h {
		wh.Add(kv[0], kv[1])
	}
	a, err := call(wh, eos)
	*h = wh.All()
	return toAction(a), err
}

func (w *wasmStream) requestBody(b *[]byte, eos bool) (action, error) {
	a, err := w.s.RequestBody(*b, eos)
	*b = w.s.Body(wasmhost.RequestBody)
	return toAction(a), err
}

func (w *wasmStream) responseBody(b *[]byte, eos bool) (action, error) {
	a, err := w.s.ResponseBody(*b, eos)
	*b = w.s.Body(wasmhost.ResponseBody)
	return toAction(a), err
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
