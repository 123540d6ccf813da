package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Config configures a Runtime.
type Config struct {
	// Interpreter selects wazero's interpreter (compiles a 2 MB module in
	// ~60 ms) instead of the compiler (~0.5 s compile, ~25x faster per
	// request).
	Interpreter bool
	// MemoryLimitMiB caps each instance's linear memory; 0 = wazero's
	// default (4 GiB). It is rounded down to whole 64 KiB pages.
	MemoryLimitMiB int
	// CompilationCache, if set, is shared by every Runtime given it.
	CompilationCache wazero.CompilationCache
	// Uninterruptible drops what being able to stop a running guest costs:
	// wazero's termination checks in compiled loops, and a watcher
	// goroutine started for every call into the guest (each callback, and
	// each proxy_on_memory_allocate a host call makes), which is most of a
	// cheap request's cost. The price: the context of a call no longer
	// bounds the guest, so a guest that loops forever hangs its caller and
	// ErrTimeout is never returned.
	//
	// Envoy has no per-callback timeout for Wasm either (a stuck VM stalls
	// its worker), so an uninterruptible runtime is faithful for traffic
	// through filters that passed admission. Admission's trial run of code
	// nobody has run yet must stay interruptible: leave this false there.
	Uninterruptible bool
}

// Runtime compiles modules and hosts their plugins. It owns one wazero
// runtime with WASI and the proxy-wasm "env" host module instantiated once.
// It is safe for concurrent use.
type Runtime struct {
	rt          wazero.Runtime
	memoryLimit uint64 // bytes; 0 = no limit of ours
}

const (
	// pageSize is the wasm page size.
	pageSize = 64 << 10
	// maxMemoryMiB is all a 32-bit wasm memory can address.
	maxMemoryMiB = 4 << 10
)

// ErrMemoryLimitRange is NewRuntime's error for a MemoryLimitMiB outside
// 0..4096.
var ErrMemoryLimitRange = errors.New("out of range 0..4096")

// NewRuntime creates a runtime. Close it to release the compiled code.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	rc := wazero.NewRuntimeConfigCompiler()
	if cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	// A guest that loops forever is stopped when the context of the call
	// ends: that is how NewPlugin's deadline bounds the trial run.
	rc = rc.WithCloseOnContextDone(!cfg.Uninterruptible)
	r := &Runtime{}
	if cfg.MemoryLimitMiB < 0 || cfg.MemoryLimitMiB > maxMemoryMiB {
		return nil, fmt.Errorf("wasmhost: memory limit %d MiB: %w", cfg.MemoryLimitMiB, ErrMemoryLimitRange)
	}
	if cfg.MemoryLimitMiB > 0 {
		pages := uint64(cfg.MemoryLimitMiB) << 20 / pageSize
		rc = rc.WithMemoryLimitPages(uint32(pages))
		r.memoryLimit = pages * pageSize
	}
	if cfg.CompilationCache != nil {
		rc = rc.WithCompilationCache(cfg.CompilationCache)
	}
	r.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: wasi: %w", err)
	}
	// proxy-wasm-cpp-host registers the same WASI functions under the older
	// module name too (FOR_ALL_WASI_FUNCTIONS in WasmBase::registerCallbacks),
	// so a module built against wasi_unstable loads in Envoy, and here.
	b := r.rt.NewHostModuleBuilder(wasiUnstable)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	if _, err := b.Instantiate(ctx); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: %s: %w", wasiUnstable, err)
	}
	if err := instantiateHostModule(ctx, r.rt); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: env host module: %w", err)
	}
	return r, nil
}

// wasiUnstable is WASI's name before preview 1.
const wasiUnstable = "wasi_unstable"

// Provides reports whether the runtime serves the function module.name to
// guests. controlplane/abi's tests use it to hold its import allowlist to
// what this host provides, so a module admission accepts never fails its
// trial run for a missing import.
func (r *Runtime) Provides(module, name string) bool {
	m := r.rt.Module(module)
	if m == nil {
		return false
	}
	_, ok := m.ExportedFunctionDefinitions()[name]
	return ok
}

// Close closes every module and plugin of the runtime.
func (r *Runtime) Close(ctx context.Context) error {
	return r.rt.Close(ctx)
}

// Module is a compiled wasm module. Plugins are instances of it. It is safe
// for concurrent use.
type Module struct {
	r        *Runtime
	compiled wazero.CompiledModule
}

// Compile validates and compiles wasm. Safe for concurrent use.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	c, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: compile: %w", err)
	}
	return &Module{r: r, compiled: c}, nil
}

// Close releases the compiled code. Plugins already created keep running.
func (m *Module) Close(ctx context.Context) error {
	return m.compiled.Close(ctx)
}

// ImportedFunctions lists the module's function imports as "module.name",
// sorted, each once.
func (m *Module) ImportedFunctions() []string {
	var out []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		out = append(out, mod+"."+name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ExportedFunctions lists the module's exported function names, sorted.
func (m *Module) ExportedFunctions() []string {
	var out []string
	for name := range m.compiled.ExportedFunctions() {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
