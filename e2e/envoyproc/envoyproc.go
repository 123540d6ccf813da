package envoyproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
)

// EnvVar names the envoy binary to use instead of "envoy" from PATH.
const EnvVar = "WASMFLEET_ENVOY"

// Defaults.
const (
	DefaultStartTimeout = 30 * time.Second
	adminTimeout        = 2 * time.Second
	stopGrace           = 10 * time.Second
)

// Errors of New and Start.
var (
	// ErrNoEnvoy: no envoy binary was found; tests skip on it.
	ErrNoEnvoy = errors.New("envoyproc: no envoy binary on PATH or in $" + EnvVar)
	// ErrListenOverride: a real Envoy binds what LDS says; the control
	// plane must send the address instead.
	ErrListenOverride = errors.New("envoyproc: listen address overrides need the stand-in; send the address in LDS")
	// ErrAdmin: Envoy did not publish its admin address in time.
	ErrAdmin = errors.New("envoyproc: envoy admin did not come up")
)

// Config configures an Envoy process.
type Config struct {
	dataplane.Config
	// Binary is the envoy executable; empty means Binary().
	Binary string
	// Dir holds the bootstrap, the admin address file and envoy.log; empty
	// means a new temporary directory, removed when Start returns.
	Dir string
	// StartTimeout bounds how long Envoy may take to open its admin port.
	StartTimeout time.Duration
	Log          *zap.Logger
}

// Binary finds the envoy binary: $WASMFLEET_ENVOY, else envoy on PATH.
func Binary() (string, error) {
	if b := os.Getenv(EnvVar); b != "" {
		return b, nil
	}
	b, err := exec.LookPath("envoy")
	if err != nil {
		return "", ErrNoEnvoy
	}
	return b, nil
}

type proc struct {
	cfg Config
	log *zap.Logger

	mu    sync.Mutex
	admin string // host:port, once known
	logs  []dataplane.LogLine
}

var _ dataplane.Node = (*proc)(nil)

// New checks cfg and finds the binary; Start runs Envoy.
func New(cfg Config) (dataplane.Node, error) {
	if err := cfg.Config.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.ListenAddrs) > 0 {
		return nil, ErrListenOverride
	}
	if cfg.Binary == "" {
		b, err := Binary()
		if err != nil {
			return nil, err
		}
		cfg.Binary = b
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &proc{cfg: cfg, log: cfg.Log.Named("envoyproc").With(zap.String("node", cfg.NodeID))}, nil
}

// Start writes the bootstrap, runs Envoy until ctx ends (then stops it with
// SIGTERM, SIGKILL after a grace period) and returns nil, or the error that
// kept it from starting or made it exit early.
func (p *proc) Start(ctx context.Context) error {
	dir := p.cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "envoyproc-*")
		if err != nil {
			return fmt.Errorf("envoyproc: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	boot, err := Bootstrap(p.cfg.NodeID, p.cfg.Cluster, p.cfg.XDSAddr, p.cfg.Delta)
	if err != nil {
		return err
	}
	bootPath, adminPath := filepath.Join(dir, "bootstrap.yaml"), filepath.Join(dir, "admin.address")
	if err := os.WriteFile(bootPath, boot, 0o644); err != nil {
		return fmt.Errorf("envoyproc: %w", err)
	}
	logFile, err := os.Create(filepath.Join(dir, "envoy.log"))
	if err != nil {
		return fmt.Errorf("envoyproc: %w", err)
	}
	defer logFile.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(runCtx, p.cfg.Binary,
		"-c", bootPath,
		"--admin-address-path", adminPath,
		"--use-dynamic-base-id",
		"--log-level", "info",
		"--component-log-level", "wasm:trace",
	)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("envoyproc: %w", err)
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("envoyproc: %s: %w", p.cfg.Binary, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.readLog(io.TeeReader(stderr, logFile))
	}()
	adminErr := p.awaitAdmin(ctx, adminPath)
	if adminErr != nil {
		stop()
	}
	wg.Wait() // the pipe closes when Envoy exits
	err = cmd.Wait()
	switch {
	case adminErr != nil && ctx.Err() == nil:
		return fmt.Errorf("%w (see %s): %w", adminErr, logFile.Name(), err)
	case ctx.Err() != nil:
		return nil
	}
	return fmt.Errorf("envoyproc: envoy exited (see %s): %w", logFile.Name(), err)
}

// awaitAdmin polls for the admin address file Envoy writes once its admin
// listener is up.
func (p *proc) awaitAdmin(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	err := dataplane.Await(ctx, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return false
		}
		p.mu.Lock()
		p.admin = strings.TrimSpace(string(b))
		p.mu.Unlock()
		return true
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAdmin, err)
	}
	return nil
}

func (p *proc) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l, ok := parseLogLine(sc.Text()); ok {
			p.mu.Lock()
			p.logs = append(p.logs, l)
			p.mu.Unlock()
		}
	}
}

// get fetches an admin path; it fails when the admin address is not known.
func (p *proc) get(path string) ([]byte, error) {
	p.mu.Lock()
	admin := p.admin
	p.mu.Unlock()
	if admin == "" {
		return nil, ErrAdmin
	}
	c := http.Client{Timeout: adminTimeout}
	resp, err := c.Get("http://" + admin + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("envoyproc: admin %s: status %d", path, resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

func (p *proc) Listeners() map[string]string {
	b, err := p.get("/listeners?format=json")
	if err != nil {
		return map[string]string{}
	}
	ls, err := parseListeners(b)
	if err != nil {
		p.log.Warn("admin listeners", zap.Error(err))
		return map[string]string{}
	}
	return ls
}

func (p *proc) Status() dataplane.Status {
	empty := dataplane.Status{Types: map[string]dataplane.TypeStatus{}, Extensions: map[string]dataplane.ExtensionStatus{}}
	b, err := p.get("/config_dump")
	if err != nil {
		return empty
	}
	st, err := parseConfigDump(b)
	if err != nil {
		p.log.Warn("admin config_dump", zap.Error(err))
		return empty
	}
	if b, err := p.get("/stats"); err == nil {
		parseStats(b).apply(&st)
	}
	return st
}

// AdminAddr is Envoy's admin address, once it has published it.
func (p *proc) AdminAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admin
}

func (p *proc) Logs() []dataplane.LogLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]dataplane.LogLine(nil), p.logs...)
}

func (p *proc) Drains() int {
	b, err := p.get("/stats?filter=^listener_manager%5C.listener_(modified|removed)$")
	if err != nil {
		return 0
	}
	return parseStats(b).drains()
}
