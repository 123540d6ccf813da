package controlplane

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/modserver"
	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
	"github.com/wasmfleet/wasmfleet/controlplane/server"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/source"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/controlplane/xdscache"
)

// ErrListen is returned when one of the three addresses cannot be bound.
var ErrListen = errors.New("cannot listen")

// shutdownGrace bounds how long HTTP servers wait for requests in flight.
const shutdownGrace = 5 * time.Second

// Options configures a control plane.
type Options struct {
	Config config.Config
	// ConfigPath, when set, is the file Config was loaded from: it is watched
	// and a valid edit is applied without a restart.
	ConfigPath string
	Log        *zap.Logger
	// Registry receives the metrics; nil means a new one.
	Registry *prometheus.Registry
	// Unsequenced is for tests only: it sends each node's snapshot whole, as
	// wasmfleet did before make-before-break sequencing, so that the bypass
	// scenarios can show what the sequencing prevents. Never set it in
	// production: Envoy applies RDS before ECDS and a route can then enable
	// a slot that holds no filter yet.
	Unsequenced bool
}

// ControlPlane is a whole wasmfleet control plane.
type ControlPlane struct {
	cfg      config.Config
	log      *zap.Logger
	xdsLn    net.Listener
	modLn    net.Listener
	adminLn  net.Listener
	store    store.Store
	runtime  *wasmhost.Runtime
	dir      *source.Dir
	ctrl     *controller.Controller
	xds      *server.Server
	modHTTP  *http.Server
	adminSrv *http.Server
	reload   *configWatcher
	metrics  *metrics.Metrics
	// registries polls the oci:// sources and follows config reloads.
	registries *registrySet
}

// Addrs are the addresses the control plane is bound to (useful with port 0).
type Addrs struct {
	XDS, Modules, Admin string
}

// New binds the listeners, opens the store and builds every stage. Errors
// name the config field or path at fault; nothing is left open on error.
func New(opts Options) (_ *ControlPlane, err error) {
	cfg := opts.Config
	if err := admin.CheckToken(admin.Config{TokenFile: cfg.AdminTokenFile}); err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	log := opts.Log
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cp := &ControlPlane{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			cp.close()
		}
	}()
	for _, l := range []struct {
		field, addr string
		ln          *net.Listener
	}{
		{"listen.xds", cfg.Listen.XDS, &cp.xdsLn},
		{"listen.modules", cfg.Listen.Modules, &cp.modLn},
		{"listen.admin", cfg.Listen.Admin, &cp.adminLn},
	} {
		if *l.ln, err = net.Listen("tcp", l.addr); err != nil {
			return nil, fmt.Errorf("controlplane: %s: %w %s: %w", l.field, ErrListen, l.addr, err)
		}
	}
	var xdsTLS, modTLS *tls.Config
	var identity *mtls.NodeIdentity
	if cfg.TLS.Enabled() {
		reloader, err := mtls.NewReloader(mtls.Files{Cert: cfg.TLS.CertFile, Key: cfg.TLS.KeyFile, ClientCA: cfg.TLS.ClientCAFile}, log)
		if err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		id, err := mtls.ParseNodeIdentity(cmp.Or(cfg.TLS.NodeIdentity, config.DefaultNodeIdentity))
		if err != nil {
			return nil, fmt.Errorf("controlplane: tls.node_identity: %w", err)
		}
		identity = &id
		xdsTLS = reloader.ServerConfig("h2")
		modTLS = reloader.ServerConfig("http/1.1")
		cp.modLn = tls.NewListener(cp.modLn, modTLS)
	}
	if cfg.ModuleBaseURL == "" {
		scheme := "http://"
		if modTLS != nil {
			scheme = "https://"
		}
		cfg.ModuleBaseURL = scheme + cp.modLn.Addr().String()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("controlplane: data_dir: %w", err)
	}
	if cp.store, err = store.Open(cfg.DataDir, log.Named("store")); err != nil {
		return nil, fmt.Errorf("controlplane: data_dir %s: %w", cfg.DataDir, err)
	}
	m := metrics.New(reg)
	cp.metrics = m
	if cp.runtime, err = wasmhost.NewRuntime(context.Background(), wasmhost.Config{
		Interpreter: true, MemoryLimitMiB: cfg.Limits.TrialMemoryMiB,
	}); err != nil {
		return nil, fmt.Errorf("controlplane: wasm runtime: %w", err)
	}
	verifier, err := signature.ForTrust(cfg.Trust)
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	admitter := admission.New(admission.Config{
		MaxModuleBytes: cfg.Limits.MaxModuleBytes,
		TrialTimeout:   time.Duration(cfg.Limits.TrialTimeout),
		TrialMemoryMiB: cfg.Limits.TrialMemoryMiB,
		Runtime:        cp.runtime,
		Log:            log,
		Verifier:       verifier,
	})
	events := make(chan types.Event, 64)
	cp.dir = source.NewDir(source.DirConfig{
		Dir: cfg.WatchDir, Debounce: time.Duration(cfg.Limits.Debounce), MaxModuleBytes: cfg.Limits.MaxModuleBytes,
		FollowOutsideSymlinks: cfg.Limits.FollowOutsideSymlinks, Log: log.Named("source"),
	}, events)
	cp.registries = newRegistrySet(cfg, events, log)
	snapCache, err := xdscache.New(xdscache.Config{
		ADS: cfg.Mode == config.ModeManaged, PushWindow: cfg.Limits.PushWindow,
		HoldTimeout: time.Duration(cfg.Limits.PushHoldTimeout), Log: server.Logger(log),
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	registry := fleet.New(fleet.Config{Log: log, Metrics: m})
	cp.xds = server.New(server.Config{Listener: cp.xdsLn, Cache: snapCache, Fleet: registry, Log: log, TLS: xdsTLS, NodeIdentity: identity})
	if cp.ctrl, err = controller.New(controller.Config{
		Config: cfg, Store: cp.store, Admitter: admitter, Builder: snapshot.NewBuilder(),
		Cache: snapCache, Fleet: registry, Events: events, Metrics: m, Log: log, Unsequenced: opts.Unsequenced,
	}); err != nil {
		return nil, err
	}
	metrics.RegisterRollouts(reg, func() []metrics.Rollout { return rolloutGauges(admin.Filters(cp.ctrl.Status())) })
	build := admin.Build()
	metrics.RegisterBuildInfo(reg, build.Version, build.Revision, build.GoVersion)
	metrics.RegisterPushWindow(reg, snapCache.Window)
	cp.modHTTP = &http.Server{Handler: countCodes(modserver.New(cp.store, log), m), ReadHeaderTimeout: 10 * time.Second,
		// Refused TLS handshakes land here, named rather than on stderr.
		ErrorLog: zap.NewStdLog(log.Named("modules"))}
	if opts.ConfigPath != "" {
		initial, err := os.ReadFile(opts.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("controlplane: %w", err)
		}
		// The controller first: a module from a new registry source is
		// admitted with its filter's new settings.
		cp.reload = newConfigWatcher(opts.ConfigPath, initial, []reconfigurer{cp.ctrl, cp.registries}, m, log)
	}
	adminCfg := admin.Config{
		Controller: cp.ctrl, Fleet: registry, History: cp.store, Gatherer: reg, Token: cfg.AdminToken,
		TokenFile: cfg.AdminTokenFile, MetricsOpen: cfg.AdminMetricsOpen, Log: log,
	}
	if cp.reload != nil { // a nil *configWatcher would be a Reloads that is not nil
		adminCfg.Reloads = cp.reload
	}
	cp.adminSrv = admin.NewServer(adminCfg)
	cp.cfg = cfg
	return cp, nil
}

// rolloutGauges is what the rollout gauges show of the filters' status.
func rolloutGauges(filters []api.Filter) []metrics.Rollout {
	out := make([]metrics.Rollout, 0, len(filters))
	for _, f := range filters {
		r := metrics.Rollout{Filter: f.Name, Candidate: f.Candidate != "", Paused: f.Paused, Failing: f.LastError != ""}
		if r.Candidate {
			r.Percent, r.Step, r.StepSince = f.Percent, f.Step, f.StepSince
		}
		out = append(out, r)
	}
	return out
}

// Addrs returns the bound addresses.
func (cp *ControlPlane) Addrs() Addrs {
	return Addrs{XDS: cp.xdsLn.Addr().String(), Modules: cp.modLn.Addr().String(), Admin: cp.adminLn.Addr().String()}
}

// Start runs every stage until ctx ends or one of them fails, then stops the
// rest and closes the store.
func (cp *ControlPlane) Start(ctx context.Context) error {
	defer cp.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := cp.Addrs()
	cp.log.Info("wasmfleet serving",
		zap.String("xds", a.XDS), zap.String("modules", a.Modules), zap.String("admin", a.Admin),
		zap.String("watch_dir", cp.cfg.WatchDir), zap.String("data_dir", cp.cfg.DataDir), zap.String("mode", string(cp.cfg.Mode)),
		zap.Bool("tls", cp.cfg.TLS.Enabled()))
	if cp.cfg.Listen.Insecure && !cp.cfg.TLS.Enabled() {
		cp.log.Warn("INSECURE: xDS and the module server run without TLS (listen.insecure): anyone who reaches them can claim any node id, read every filter's configuration and NACK on any node's behalf",
			zap.String("xds", a.XDS), zap.String("modules", a.Modules))
	}

	runners := []runner{
		{"controller", cp.ctrl.Start},
		{"source", cp.dir.Start},
		{"xds", cp.xds.Start},
		{"modules", httpRunner(cp.modHTTP, cp.modLn)},
		{"admin", httpRunner(cp.adminSrv, cp.adminLn)},
		{"registries", cp.registries.Start},
	}
	if cp.reload != nil {
		runners = append(runners, runner{"config", cp.reload.Start})
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.run(ctx); err != nil && ctx.Err() == nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("controlplane: %s: %w", r.name, err) })
				cancel()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// runner is a long-running part: run blocks until ctx ends.
type runner struct {
	name string
	run  func(context.Context) error
}

// httpRunner serves srv on ln until ctx ends, then shuts it down gracefully.
func httpRunner(srv *http.Server, ln net.Listener) func(context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			return srv.Shutdown(sctx)
		}
	}
}

func (cp *ControlPlane) close() {
	for _, ln := range []net.Listener{cp.xdsLn, cp.modLn, cp.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if cp.runtime != nil {
		cp.runtime.Close(context.Background())
	}
	if cp.store != nil {
		cp.store.Close()
	}
}

// countCodes counts module server responses by status code.
func countCodes(next http.Handler, m *metrics.Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.ModuleFetches.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	})
}

type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (r *codeRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
