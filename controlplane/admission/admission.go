package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
)

// Sentinel errors. Admit's error wraps exactly one of them. The structural
// and ABI ones are package abi's, re-exported so callers need import only
// this package.
var (
	// ErrTooLarge: the module is bigger than Config.MaxModuleBytes.
	ErrTooLarge = errors.New("module too large")
	// ErrDigestMismatch: Request.Digest is not the sha256 of Request.Module.
	ErrDigestMismatch = errors.New("digest does not match the module bytes")
	// ErrNotWasm, ErrTruncated, ErrMalformed: see package abi.
	ErrNotWasm   = abi.ErrNotWasm
	ErrTruncated = abi.ErrTruncated
	ErrMalformed = abi.ErrMalformed
	// ErrMissingABI, ErrMissingExport: see abi.CheckExports.
	ErrMissingABI    = abi.ErrMissingABI
	ErrMissingExport = abi.ErrMissingExport
	// ErrUnknownImport: see abi.CheckImports.
	ErrUnknownImport = abi.ErrUnknownImport
	// ErrSignature: the Verifier refused the module, or the filter requires
	// a signature and no Verifier is configured.
	ErrSignature = errors.New("signature check failed")
	// ErrTrialRun: the module failed its trial run; the error also wraps the
	// wasmhost error (wasmhost.ErrInstantiate, ErrVMStart, ErrConfigure,
	// ErrTimeout, ErrMemoryLimit, ErrTrap) with what the guest logged.
	ErrTrialRun = errors.New("trial run failed")
)

// Check names, in the order they run.
const (
	CheckSize      = "size"
	CheckDigest    = "digest"
	CheckStructure = "structure"
	CheckExports   = "exports"
	CheckImports   = "imports"
	CheckSignature = "signature"
	CheckTrialRun  = "trial-run"
)

// Defaults for zero Config fields.
const (
	DefaultMaxModuleBytes = config.DefaultMaxModuleBytes
	DefaultTrialTimeout   = config.DefaultTrialTimeout
	DefaultTrialMemoryMiB = config.DefaultTrialMemoryMiB
	DefaultCacheEntries   = 256
)

// Request is one module to admit.
type Request struct {
	// File is what messages name: "filters.d/auth.wasm" or an oci reference.
	File string
	// Filter is the filter's name; the trial run uses it as plugin name and
	// VM id, as Envoy will.
	Filter string
	Module []byte
	// Digest is the sha256 of Module as the source computed it; empty means
	// compute it. A digest that does not match is refused.
	Digest types.Digest
	// Settings is the filter's configuration: its plugin configuration
	// (Filter.PluginConfiguration) is handed to proxy_on_configure and its
	// VM configuration to proxy_on_vm_start, as Envoy hands them; RootID
	// selects the root context, VM.Env is the guest's environment,
	// RequireSignature asks for a signature check.
	Settings config.Filter
	// Signature is a detached signature of Module, when the source found one.
	Signature []byte
	// Redact, when set, is applied to every guest log line and to the
	// rejection reason before they are logged or returned: the caller's
	// way to keep secrets it put into Settings.Config out of both (a guest
	// may echo its configuration). Not part of the cache key.
	Redact func(string) string
}

// Verifier checks a module's signature. Implementations decide what an
// absent signature means (typically: allowed unless
// req.Settings.RequireSignature). Verify must be safe for concurrent use.
type Verifier interface {
	// Verify returns nil if the module may be admitted as far as signatures
	// go, or an error saying why not.
	Verify(ctx context.Context, req Request) error
}

// Check is the outcome of one check.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Report says what admission found out about a module. Checks lists the
// checks that ran, in order; on rejection the last one failed.
type Report struct {
	Digest types.Digest
	Checks []Check
	// MinHost is the oldest Envoy that provides everything the module
	// imports (abi.HostEnvoy133 or abi.HostPR533).
	MinHost    string
	ABIVersion string
	Imports    abi.ImportReport
	// Exports are the proxy-wasm callbacks (proxy_on_*) the module exports.
	Exports []string
	// TrialRun is how long the trial run took (compile, instantiate,
	// vm_start, configure).
	TrialRun time.Duration
	// Cached is set when the result came from the cache without running
	// the checks again.
	Cached bool
}

// Admitter runs admission.
type Admitter interface {
	// Admit runs every check in order, stopping at the first failure. The
	// error (nil when admitted) wraps one of the exported sentinels and
	// reads "admission: <File>: <reason>". A cancelled ctx interrupts the
	// trial run; the error then wraps ctx's error and nothing is cached.
	// Safe for concurrent use; concurrent calls for the same module and
	// settings share one run.
	Admit(ctx context.Context, req Request) (Report, error)
}

// Config configures an Admitter. Zero or negative fields take the defaults.
type Config struct {
	MaxModuleBytes int64
	// TrialTimeout bounds the whole trial run.
	TrialTimeout time.Duration
	// TrialMemoryMiB caps the trial's linear memory when admission creates
	// its own runtime (Runtime nil); a given Runtime keeps its own limit.
	TrialMemoryMiB int
	// CacheEntries bounds the result cache (least recently used go first).
	CacheEntries int
	// Runtime runs the trials. Nil: the first trial creates an interpreter
	// runtime (it compiles a 2 MB module in ~60 ms; the trial checks
	// behaviour, not speed), which lives as long as the Admitter.
	Runtime *wasmhost.Runtime
	// Log is named "admission" here; nil discards.
	Log *zap.Logger
	// Verifier checks signatures; nil means no signature policy, except
	// that a filter with RequireSignature is refused.
	Verifier Verifier
}

// New returns an Admitter.
func New(cfg Config) Admitter {
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if cfg.TrialTimeout <= 0 {
		cfg.TrialTimeout = DefaultTrialTimeout
	}
	if cfg.TrialMemoryMiB <= 0 {
		cfg.TrialMemoryMiB = DefaultTrialMemoryMiB
	}
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &admitter{
		cfg:      cfg,
		log:      cfg.Log.Named("admission"),
		cache:    newLRU(cfg.CacheEntries),
		inflight: map[cacheKey]chan struct{}{},
	}
}

type admitter struct {
	cfg Config
	log *zap.Logger

	rtOnce sync.Once
	rt     *wasmhost.Runtime
	rtErr  error

	mu       sync.Mutex // guards cache and inflight
	cache    *lru
	inflight map[cacheKey]chan struct{}
}

var _ Admitter = (*admitter)(nil)

// redactedError is a rejection whose message went through Request.Redact;
// errors.Is still sees the sentinels under it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// result is what the cache keeps: the report and the reason for a
// rejection, without the file name (the same bytes may come from another
// file next time).
type result struct {
	report Report
	reason error
}

func (a *admitter) Admit(ctx context.Context, req Request) (Report, error) {
	log := a.log.With(zap.String("filter", req.Filter), zap.String("file", req.File))
	res := a.admit(ctx, req)
	if res.reason != nil {
		err := fmt.Errorf("admission: %s: %w", req.File, res.reason)
		if req.Redact != nil {
			err = &redactedError{msg: req.Redact(err.Error()), err: err}
		}
		log.Warn("module rejected", zap.String("digest", string(res.report.Digest)),
			zap.Bool("cached", res.report.Cached), zap.Error(err))
		return res.report, err
	}
	log.Info("module admitted", zap.String("digest", string(res.report.Digest)),
		zap.Bool("cached", res.report.Cached), zap.String("min_host", res.report.MinHost),
		zap.Duration("trial_run", res.report.TrialRun))
	return res.report, nil
}

func (a *admitter) admit(ctx context.Context, req Request) result {
	// The size check reads only the length: a 200 MB upload is refused
	// before anything touches its bytes.
	var r Report
	size := int64(len(req.Module))
	if size > a.cfg.MaxModuleBytes {
		r.Digest = req.Digest
		return r.fail(CheckSize, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, a.cfg.MaxModuleBytes))
	}
	r.pass(CheckSize, fmt.Sprintf("%d bytes of %d", size, a.cfg.MaxModuleBytes))

	r.Digest = types.DigestOf(req.Module)
	if req.Digest != "" && req.Digest != r.Digest {
		return r.fail(CheckDigest, fmt.Errorf("%w: given %s, the bytes hash to %s", ErrDigestMismatch, req.Digest, r.Digest))
	}
	r.pass(CheckDigest, "sha256:"+string(r.Digest))

	key := keyOf(r.Digest, req)
	for {
		a.mu.Lock()
		if cached, ok := a.cache.get(key); ok {
			a.mu.Unlock()
			cached.report = cached.report.clone()
			cached.report.Cached = true
			return cached
		}
		wait, busy := a.inflight[key]
		if !busy {
			a.inflight[key] = make(chan struct{})
			a.mu.Unlock()
			return a.lead(ctx, key, req, r)
		}
		a.mu.Unlock()
		select {
		case <-wait: // the result is cached now, or the run was interrupted: look again
		case <-ctx.Done():
			return r.fail(CheckTrialRun, fmt.Errorf("waiting for a trial run of the same module: %w", ctx.Err()))
		}
	}
}

// lead runs the checks for key while other callers wait, caches the result
// if it says something about the module, and releases the waiters.
func (a *admitter) lead(ctx context.Context, key cacheKey, req Request, r Report) (res result) {
	cacheable := false
	defer func() {
		a.mu.Lock()
		if cacheable {
			a.cache.put(key, res)
		}
		close(a.inflight[key])
		delete(a.inflight, key)
		a.mu.Unlock()
	}()
	res, cacheable = a.check(ctx, req, r)
	return res
}

// check runs the checks after the digest. cacheable is false when the
// outcome says nothing about the module (the caller's ctx ended).
func (a *admitter) check(ctx context.Context, req Request, r Report) (res result, cacheable bool) {
	info, err := abi.Inspect(req.Module)
	if err != nil {
		return r.fail(CheckStructure, err), true
	}
	r.pass(CheckStructure, fmt.Sprintf("%d imports, %d exports, %d sections", len(info.Imports), len(info.Exports), len(info.Sections)))

	exports := abi.CheckExports(info)
	r.ABIVersion, r.Exports = exports.ABIVersion, exports.Callbacks
	if err := exports.Err(); err != nil {
		return r.fail(CheckExports, err), true
	}
	entry := "no entry point"
	if exports.Entry != "" {
		entry = "entry " + exports.Entry
	}
	r.pass(CheckExports, fmt.Sprintf("proxy-wasm ABI %s, %d callbacks, %s", exports.ABIVersion, len(exports.Callbacks), entry))

	r.Imports = abi.CheckImports(info)
	r.MinHost = r.Imports.MinHost
	if err := r.Imports.Err(); err != nil {
		return r.fail(CheckImports, err), true
	}
	r.pass(CheckImports, fmt.Sprintf("needs %s: %d proxy-wasm, %d WASI, %d newer WASI imports",
		r.MinHost, len(r.Imports.Proxy), len(r.Imports.WASI), len(r.Imports.WASINewer)))

	if err := a.verify(ctx, req); err != nil {
		return r.fail(CheckSignature, err), ctx.Err() == nil
	} else if a.cfg.Verifier != nil {
		r.pass(CheckSignature, "verified")
	}

	start := time.Now()
	err = a.trial(ctx, req, r.Digest)
	r.TrialRun = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return r.fail(CheckTrialRun, fmt.Errorf("trial run interrupted: %w", ctx.Err())), false
		}
		return r.fail(CheckTrialRun, fmt.Errorf("%w: %w", ErrTrialRun, err)), true
	}
	r.pass(CheckTrialRun, fmt.Sprintf("instantiate, vm_start and configure in %s", r.TrialRun.Round(time.Millisecond)))
	return result{report: r}, true
}

func (a *admitter) verify(ctx context.Context, req Request) error {
	if a.cfg.Verifier == nil {
		if req.Settings.RequireSignature {
			return fmt.Errorf("%w: filter %s requires a signature but no trusted keys are configured", ErrSignature, req.Filter)
		}
		return nil
	}
	if err := a.cfg.Verifier.Verify(ctx, req); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}

// trial instantiates the module in a fresh plugin and brings it up to a
// configured root context, as Envoy does on an ECDS update, under the time
// limit. Nothing of it outlives the call.
func (a *admitter) trial(ctx context.Context, req Request, digest types.Digest) error {
	rt, err := a.runtime()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.TrialTimeout)
	defer cancel()
	mod, err := rt.Compile(ctx, req.Module)
	if err != nil {
		return err
	}
	defer mod.Close(context.WithoutCancel(ctx))
	guest := a.log.With(zap.String("filter", req.Filter), zap.String("digest", string(digest)))
	plugin, _ := req.Settings.PluginConfiguration()
	p, err := mod.NewPlugin(ctx, wasmhost.PluginConfig{
		Name:          req.Filter,
		RootID:        req.Settings.RootID,
		VMID:          req.Filter,
		VMConfig:      req.Settings.VMConfiguration(),
		Configuration: plugin,
		Env:           req.Settings.VM.Env,
		Log: func(level wasmhost.LogLevel, msg string) {
			if req.Redact != nil {
				msg = req.Redact(msg)
			}
			guest.Debug("trial run guest log", zap.Stringer("level", level), zap.String("msg", msg))
		},
	})
	if err != nil {
		return err
	}
	return p.Close(context.WithoutCancel(ctx))
}

func (a *admitter) runtime() (*wasmhost.Runtime, error) {
	if a.cfg.Runtime != nil {
		return a.cfg.Runtime, nil
	}
	a.rtOnce.Do(func() {
		a.rt, a.rtErr = wasmhost.NewRuntime(context.Background(), wasmhost.Config{
			Interpreter:    true,
			MemoryLimitMiB: a.cfg.TrialMemoryMiB,
		})
	})
	return a.rt, a.rtErr
}

// clone copies the report's slices, so a caller may change what it got
// without changing the cache.
func (r Report) clone() Report {
	r.Checks = slices.Clone(r.Checks)
	r.Exports = slices.Clone(r.Exports)
	r.Imports.Proxy = slices.Clone(r.Imports.Proxy)
	r.Imports.WASI = slices.Clone(r.Imports.WASI)
	r.Imports.WASINewer = slices.Clone(r.Imports.WASINewer)
	r.Imports.Unknown = slices.Clone(r.Imports.Unknown)
	return r
}

func (r *Report) pass(name, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: true, Detail: detail})
}

// fail records a failed check and returns the result for it.
func (r *Report) fail(name string, reason error) result {
	r.Checks = append(r.Checks, Check{Name: name, Detail: reason.Error()})
	return result{report: *r, reason: reason}
}
