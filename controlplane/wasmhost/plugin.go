package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Errors of NewPlugin and of calls into a plugin. They are wrapped, so test
// them with errors.Is; the message carries what the guest logged at error
// level (and wrote to stderr) during the failing call, when it logged any.
var (
	// ErrInstantiate: the module could not be instantiated (a missing or
	// mistyped import, a failing _initialize, no proxy-wasm ABI export).
	ErrInstantiate = errors.New("instantiate failed")
	// ErrBadSignature: a proxy-wasm export takes other parameters than
	// the ABI's (NewPlugin wraps it in ErrInstantiate).
	ErrBadSignature = errors.New("bad export signature")
	// ErrVMStart: proxy_on_context_create or proxy_on_vm_start of the root
	// context failed or returned false.
	ErrVMStart = errors.New("proxy_on_vm_start failed")
	// ErrConfigure: proxy_on_configure failed or returned false.
	ErrConfigure = errors.New("proxy_on_configure failed")
	// ErrTimeout: the context's deadline passed while the guest ran; the
	// instance was stopped.
	ErrTimeout = errors.New("deadline exceeded")
	// ErrMemoryLimit: the guest failed after its linear memory could not
	// grow past Config.MemoryLimitMiB.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrTrap: the guest trapped, panicked or exited during a callback.
	ErrTrap = errors.New("guest trapped")
	// ErrVMFailed: an earlier call failed, so this VM takes no more calls
	// (Envoy marks such a VM failed and applies the failure policy).
	ErrVMFailed = errors.New("vm failed earlier")
	// ErrClosed: the plugin or stream was closed.
	ErrClosed = errors.New("closed")
)

// PluginConfig is what Envoy's Wasm filter config carries for one plugin,
// plus the host's hooks.
type PluginConfig struct {
	// Name is the plugin name (Envoy: the plugin_name property).
	Name string
	// RootID selects the root context in the guest (plugin_root_id).
	RootID string
	// VMID namespaces shared data and queues (plugin_vm_id).
	VMID string
	// VMConfig is what proxy_on_vm_start reads (BufferType 6).
	VMConfig []byte
	// Configuration is what proxy_on_configure reads (BufferType 7), the
	// filter's plugin configuration (JSON in wasmfleet).
	Configuration []byte
	// Env is the guest's environment (WASI environ_get), Envoy's
	// vm_config.environment_variables.key_values: a Go guest's runtime
	// reads GOGC and GOMEMLIMIT from it at start. Envoy hands the pairs to
	// the VM as they are (WasmConfig's constructor and environmentVariables,
	// source/extensions/common/wasm/plugin.cc; the guest reads them through
	// WASI environ_get).
	Env map[string]string
	// Properties adds to what proxy_get_property finds. A key is the path
	// segments joined with ".", e.g. "node.id", "node.cluster",
	// "node.metadata.region", "xds.cluster_name"; values are the bytes the
	// guest gets (strings as is; Envoy encodes integers as 8-byte little
	// endian). Per-stream ones go in StreamInfo.Properties.
	Properties map[string][]byte
	// Log receives guest log lines at LogLevel or above; nil discards.
	// Writes to stdout arrive at LogInfo and stderr at LogError, one call
	// per line, as Envoy routes them. Called on the goroutine that called
	// into the plugin, with the plugin locked: it must not call into it.
	Log func(level LogLevel, msg string)
	// LogLevel is the host's level (proxy_get_log_level); the zero value
	// is LogTrace, so everything reaches Log.
	LogLevel LogLevel
	// Clock is the wall clock for proxy_get_current_time_nanoseconds, WASI
	// and the request.time property; nil = time.Now.
	Clock func() time.Time
	// Shared is the shared data and queues; nil = private to this plugin.
	Shared *SharedData
	// HTTPCall serves proxy_http_call; nil = every call fails with
	// BadArgument, as for an unknown cluster.
	HTTPCall HTTPCaller
	// Metrics receives defined metrics; nil = private to this plugin.
	Metrics *Metrics
}

// Plugin is one instance of a module (one VM, in Envoy's terms) with its
// root context, configured. Calls into it (Tick, NewHTTPStream, every
// HTTPStream method, Close) are serialised by a mutex: a Plugin is safe for
// concurrent use, but runs one callback at a time, like an Envoy worker's
// VM. For parallel traffic keep one Plugin per worker, as Envoy does.
type Plugin struct {
	cfg         PluginConfig
	memoryLimit uint64

	mu          sync.Mutex // held while the guest runs; guards all below
	mod         api.Module
	fn          guestFuncs
	rootID      uint32
	nextID      uint32
	streams     map[uint32]*HTTPStream
	current     uint32 // context the running callback was called for
	effective   uint32 // proxy_set_effective_context; 0 = current
	configuring bool   // the plugin configuration is readable
	tickPeriod  time.Duration
	tickSet     chan struct{} // one pending "the guest set a period" for RunTicks
	statusCode  uint32        // proxy_get_status
	statusMsg   string
	nextCallout uint32
	callouts    []callout         // finished callouts not yet delivered
	calloutResp *HTTPCallResponse // the response being delivered
	metrics     map[uint32]metricRef
	nextMetric  uint32
	queues      []uint32                  // tokens this plugin registered
	stack       [maxCallbackParams]uint64 // arguments and result of the running callback (call)
	mallocStack [1]uint64                 // argument and result of proxy_on_memory_allocate (copyOut)
	reasons     []string                  // error-level lines of the current call
	traceback   bool                      // the guest is printing a Go traceback to stderr
	stdout      lineWriter
	stderr      lineWriter
	failed      error
	closed      bool
	dead        chan struct{} // closed once the VM failed or was closed

	qmu        sync.Mutex // guards queueReady only: other plugins append to it
	queueReady []uint32
}

type guestFuncs struct {
	malloc, contextCreate, vmStart, configure, tick, queueReady, done, log, delete,
	requestHeaders, requestBody, requestTrailers,
	responseHeaders, responseBody, responseTrailers, httpCallResponse api.Function
}

type callout struct {
	token uint32
	resp  *HTTPCallResponse // nil when the call failed
	err   error
}

type metricRef struct {
	m   *metric
	typ MetricType
}

// pluginKey carries the running *Plugin in the context of every call into
// the guest, which is how a host function finds the state of its VM.
type pluginKey struct{}

// maxReasons bounds how many error lines an error message quotes.
const maxReasons = 4

// maxCallbackParams is the most parameters a proxy_on_* callback takes
// (proxy_on_http_call_response).
const maxCallbackParams = 5

// NewPlugin instantiates the module and brings the plugin up the way Envoy
// does: _initialize, proxy_on_context_create for the root context,
// proxy_on_vm_start with VMConfig, proxy_on_configure with Configuration.
// ctx bounds all of it: a guest still running when ctx ends is stopped and
// the error wraps ErrTimeout (or ctx's error when cancelled); on an
// Uninterruptible runtime ctx is not watched. Callouts and queue
// notifications caused by these callbacks are delivered before it returns.
func (m *Module) NewPlugin(ctx context.Context, cfg PluginConfig) (*Plugin, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Shared == nil {
		cfg.Shared = NewSharedData()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	p := &Plugin{
		cfg:         cfg,
		memoryLimit: m.r.memoryLimit,
		rootID:      1,
		nextID:      2,
		streams:     map[uint32]*HTTPStream{},
		metrics:     map[uint32]metricRef{},
		tickSet:     make(chan struct{}, 1),
		dead:        make(chan struct{}),
	}
	p.stdout = lineWriter{log: func(s string) { p.log(LogInfo, s) }}
	p.stderr = lineWriter{log: p.logStderr}
	p.mu.Lock()
	defer p.mu.Unlock()

	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: a module may have many instances
		WithStartFunctions("_initialize").
		WithStdout(&p.stdout).
		WithStderr(&p.stderr).
		WithRandSource(rand.Reader).
		WithWalltime(p.walltime, 1).
		WithSysNanotime()
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) { // sorted: the same environ on every VM
		mc = mc.WithEnv(k, cfg.Env[k])
	}
	mod, err := m.r.rt.InstantiateModule(withPlugin(ctx, p), m.compiled, mc)
	p.stdout.flush()
	p.stderr.flush()
	if err != nil {
		if cerr := p.classify(ctx, err); !errors.Is(cerr, ErrTrap) {
			err = cerr
		}
		return nil, p.errorf(ErrInstantiate, err)
	}
	p.mod = mod
	if err := p.bind(); err != nil {
		mod.Close(ctx)
		return nil, p.errorf(ErrInstantiate, err)
	}
	if err := p.start(ctx); err != nil {
		p.mod.Close(ctx)
		return nil, err
	}
	return p, nil
}

// bind looks up the guest's exports once, so that no call pays for a
// lookup by name. An export whose parameter count is not the ABI's is
// refused here, as proxy-wasm-cpp-host refuses a bad signature at load;
// calls pass arguments through a stack (see call) and could not tell.
func (p *Plugin) bind() error {
	f := p.mod.ExportedFunction
	if f("proxy_abi_version_0_2_1") == nil && f("proxy_abi_version_0_2_0") == nil {
		return errors.New("missing export proxy_abi_version_0_2_0 or proxy_abi_version_0_2_1")
	}
	exports := []struct {
		name   string
		params int
		fn     *api.Function
	}{
		{"proxy_on_memory_allocate", 1, &p.fn.malloc},
		{"proxy_on_context_create", 2, &p.fn.contextCreate},
		{"proxy_on_vm_start", 2, &p.fn.vmStart},
		{"proxy_on_configure", 2, &p.fn.configure},
		{"proxy_on_tick", 1, &p.fn.tick},
		{"proxy_on_queue_ready", 2, &p.fn.queueReady},
		{"proxy_on_done", 1, &p.fn.done},
		{"proxy_on_log", 1, &p.fn.log},
		{"proxy_on_delete", 1, &p.fn.delete},
		{"proxy_on_request_headers", 3, &p.fn.requestHeaders},
		{"proxy_on_request_body", 3, &p.fn.requestBody},
		{"proxy_on_request_trailers", 2, &p.fn.requestTrailers},
		{"proxy_on_response_headers", 3, &p.fn.responseHeaders},
		{"proxy_on_response_body", 3, &p.fn.responseBody},
		{"proxy_on_response_trailers", 2, &p.fn.responseTrailers},
		{"proxy_on_http_call_response", maxCallbackParams, &p.fn.httpCallResponse},
	}
	for _, e := range exports {
		fn := f(e.name)
		if fn == nil {
			continue
		}
		def := fn.Definition()
		if n, r := len(def.ParamTypes()), len(def.ResultTypes()); n != e.params || r > 1 {
			return fmt.Errorf("export %s: %w: %d parameters, %d results (want %d, at most 1)", e.name, ErrBadSignature, n, r, e.params)
		}
		*e.fn = fn
	}
	if p.fn.malloc == nil {
		return errors.New("missing export proxy_on_memory_allocate")
	}
	return nil
}

// start runs the root context's life up to a configured plugin.
func (p *Plugin) start(ctx context.Context) error {
	if _, _, err := p.invoke(ctx, p.rootID, p.fn.contextCreate, uint64(p.rootID), 0); err != nil {
		return p.errorf(ErrVMStart, err)
	}
	ok, exported, err := p.invoke(ctx, p.rootID, p.fn.vmStart, uint64(p.rootID), uint64(len(p.cfg.VMConfig)))
	if err != nil {
		return p.errorf(ErrVMStart, err)
	}
	if exported && ok == 0 {
		return p.errorf(ErrVMStart, p.refusal())
	}
	p.configuring = true
	ok, exported, err = p.invoke(ctx, p.rootID, p.fn.configure, uint64(p.rootID), uint64(len(p.cfg.Configuration)))
	p.configuring = false
	if err != nil {
		return p.errorf(ErrConfigure, err)
	}
	if exported && ok == 0 {
		return p.errorf(ErrConfigure, p.refusal())
	}
	return nil
}

// refusal is the error for a start callback that returned false.
func (p *Plugin) refusal() error {
	if len(p.reasons) == 0 {
		return errors.New("returned false")
	}
	return fmt.Errorf("returned false: %s", strings.Join(p.reasons, "; "))
}

// errorf wraps a failure of this plugin: "wasmhost: NAME: SENTINEL: cause".
func (p *Plugin) errorf(sentinel, cause error) error {
	return fmt.Errorf("wasmhost: %s: %w: %w", p.name(), sentinel, cause)
}

func (p *Plugin) name() string {
	if p.cfg.Name != "" {
		return p.cfg.Name
	}
	return "plugin"
}

// Close runs proxy_on_done and proxy_on_delete for the root context, as
// Envoy does when a plugin goes away (without waiting for proxy_done: the
// instance is closed right after), then closes the instance. Streams not
// yet Done are dropped. ctx bounds the guest's callbacks (unless the
// runtime is Uninterruptible).
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	var err error
	if p.failed == nil {
		if _, _, err = p.invoke(ctx, p.rootID, p.fn.done, uint64(p.rootID)); err == nil {
			_, _, err = p.invoke(ctx, p.rootID, p.fn.delete, uint64(p.rootID))
		}
		if err != nil {
			err = fmt.Errorf("wasmhost: %s: close: %w", p.name(), err)
		}
	}
	p.closed = true
	p.markDead()
	p.cfg.Shared.unregister(p.queues)
	return errors.Join(err, p.mod.Close(ctx))
}

// Failed returns the error that failed the VM, or nil.
func (p *Plugin) Failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// enter locks the plugin for one host operation and delivers queue
// notifications that arrived since the last one. On error the lock is not
// held.
func (p *Plugin) enter(ctx context.Context) error {
	p.mu.Lock()
	err := p.usable()
	if err == nil {
		if err = p.afterCall(ctx); err != nil {
			err = fmt.Errorf("wasmhost: %s: %w", p.name(), err)
		}
	}
	if err != nil {
		p.mu.Unlock()
	}
	return err
}

func (p *Plugin) usable() error {
	switch {
	case p.closed:
		return fmt.Errorf("wasmhost: %s: %w", p.name(), ErrClosed)
	case p.failed != nil:
		return fmt.Errorf("wasmhost: %s: %w: %w", p.name(), ErrVMFailed, p.failed)
	}
	return nil
}

// invoke calls the guest export f for context id, then delivers what the
// callback caused (callouts, queue notifications). exported is false when
// the guest does not export f; the host then acts as if the callback
// returned its default.
func (p *Plugin) invoke(ctx context.Context, id uint32, f api.Function, args ...uint64) (res uint64, exported bool, err error) {
	if f == nil {
		return 0, false, nil
	}
	if res, err = p.call(ctx, id, f, args...); err != nil {
		return 0, true, err
	}
	return res, true, p.afterCall(ctx)
}

// call runs one guest export. Must hold p.mu.
//
// The arguments go through p.stack, reused from call to call, so a callback
// allocates nothing here; no callback runs inside another (host calls only
// re-enter proxy_on_memory_allocate, which has its own), so one will do.
func (p *Plugin) call(ctx context.Context, id uint32, f api.Function, args ...uint64) (uint64, error) {
	p.reasons, p.traceback = p.reasons[:0], false
	p.current, p.effective = id, 0
	stack := p.stack[:max(len(args), 1)]
	copy(stack, args)
	err := f.CallWithStack(withPlugin(ctx, p), stack)
	p.stdout.flush()
	p.stderr.flush()
	if err != nil {
		p.failed = fmt.Errorf("%s: %w", exportName(f), p.classify(ctx, err))
		p.markDead()
		return 0, p.failed
	}
	if len(f.Definition().ResultTypes()) == 0 {
		return 0, nil
	}
	return uint64(uint32(stack[0])), nil // every ABI result is an i32
}

// withPlugin returns ctx carrying p, for the host functions the guest calls.
// A stream's context carries it already (see NewHTTPStreamInfo), which
// saves an allocation per callback.
func withPlugin(ctx context.Context, p *Plugin) context.Context {
	if q, _ := ctx.Value(pluginKey{}).(*Plugin); q == p {
		return ctx
	}
	return context.WithValue(ctx, pluginKey{}, p)
}

// classify turns a wazero call error into one of ours, quoting the
// guest's error lines.
func (p *Plugin) classify(ctx context.Context, err error) error {
	var why string
	if len(p.reasons) > 0 {
		why = ": " + strings.Join(p.reasons, "; ")
	}
	// wazero's message ends in a wasm stack trace of numbered functions
	// (our modules are stripped); the first line is what helps.
	first, _, _ := strings.Cut(err.Error(), "\n")
	var exit *sys.ExitError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (%w)%s", ErrTimeout, context.DeadlineExceeded, why)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w%s", context.Canceled, why)
	case p.nearMemoryLimit():
		return fmt.Errorf("%w (%d MiB)%s: %s", ErrMemoryLimit, p.memoryLimit>>20, why, first)
	case errors.As(err, &exit):
		return fmt.Errorf("%w: exit code %d%s", ErrTrap, exit.ExitCode(), why)
	}
	return fmt.Errorf("%w%s: %s", ErrTrap, why, first)
}

func exportName(f api.Function) string {
	if names := f.Definition().ExportNames(); len(names) > 0 {
		return names[0]
	}
	return f.Definition().DebugName()
}

// MemoryBytes is the size of the guest's linear memory now: what the VM
// costs the host. Linear memory never shrinks, so it is the high-water mark
// of the guest's heap; the GOGC in Env is what keeps it low.
func (p *Plugin) MemoryBytes() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mod == nil {
		return 0
	}
	return uint64(p.mod.Memory().Size())
}

// nearMemoryLimit reports whether the guest's memory is so close to the
// limit that its failure is most likely a refused memory.grow. Go's runtime
// grows its heap in steps of 4 MiB or more, so "within 4 MiB" is the test.
func (p *Plugin) nearMemoryLimit() bool {
	if p.memoryLimit == 0 || p.mod == nil {
		return false
	}
	return uint64(p.mod.Memory().Size())+4<<20 > p.memoryLimit
}

// afterCall delivers, in order, the callouts the last callbacks made and
// the queue notifications that arrived, until none is left (a delivered
// callback may cause more). Must hold p.mu.
func (p *Plugin) afterCall(ctx context.Context) error {
	for {
		if len(p.callouts) > 0 {
			c := p.callouts[0]
			p.callouts = p.callouts[1:]
			if err := p.deliverCallout(ctx, c); err != nil {
				return err
			}
			continue
		}
		p.qmu.Lock()
		if len(p.queueReady) == 0 {
			p.qmu.Unlock()
			return nil
		}
		token := p.queueReady[0]
		p.queueReady = p.queueReady[1:]
		p.qmu.Unlock()
		if p.fn.queueReady == nil {
			continue
		}
		if _, err := p.call(ctx, p.rootID, p.fn.queueReady, uint64(p.rootID), uint64(token)); err != nil {
			return err
		}
	}
}

func (p *Plugin) deliverCallout(ctx context.Context, c callout) error {
	if p.fn.httpCallResponse == nil {
		return nil
	}
	var nh, nb, nt int
	if c.resp != nil {
		p.statusCode, p.statusMsg = uint32(statusOK), ""
		nh, nb, nt = c.resp.Headers.Len(), len(c.resp.Body), c.resp.Trailers.Len()
	} else {
		p.statusCode, p.statusMsg = uint32(statusBrokenConnection), c.err.Error()
	}
	p.calloutResp = c.resp
	defer func() { p.calloutResp = nil }()
	_, err := p.call(ctx, p.rootID, p.fn.httpCallResponse, uint64(p.rootID), uint64(c.token), uint64(nh), uint64(nb), uint64(nt))
	return err
}

// markDead wakes everyone waiting on the VM (RunTicks, HTTPStream's
// Await*) once it failed or closed. Must hold p.mu.
func (p *Plugin) markDead() {
	select {
	case <-p.dead:
	default:
		close(p.dead)
	}
}

// notifyQueue is called by SharedData, from any goroutine, when an item
// arrives on a queue this plugin registered.
func (p *Plugin) notifyQueue(token uint32) {
	p.qmu.Lock()
	p.queueReady = append(p.queueReady, token)
	p.qmu.Unlock()
}

func (p *Plugin) walltime() (int64, int32) {
	t := p.cfg.Clock()
	return t.Unix(), int32(t.Nanosecond())
}

// stream is the HTTP stream the running host call acts on: the effective
// context if the guest set one, else the called context; nil for the root.
func (p *Plugin) stream() *HTTPStream {
	id := p.current
	if p.effective != 0 {
		id = p.effective
	}
	return p.streams[id]
}
