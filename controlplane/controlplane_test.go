package controlplane

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// testConfig binds everything to loopback port 0 under a temp dir.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen = config.Listen{XDS: "127.0.0.1:0", Modules: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	cfg.WatchDir = filepath.Join(dir, "filters.d")
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Limits.Debounce = config.Duration(20 * time.Millisecond)
	return cfg
}

func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name  string
		field string
		set   func(*config.Config)
	}{
		{name: "xds", field: "listen.xds", set: func(c *config.Config) { c.Listen.XDS = taken.Addr().String() }},
		{name: "modules", field: "listen.modules", set: func(c *config.Config) { c.Listen.Modules = taken.Addr().String() }},
		{name: "admin", field: "listen.admin", set: func(c *config.Config) { c.Listen.Admin = taken.Addr().String() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.set(&cfg)
			_, err := New(Options{Config: cfg, Log: zaptest.NewLogger(t)})
			if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), taken.Addr().String()) {
				t.Fatalf("New = %v, want %v naming %s and the address", err, ErrListen, tt.field)
			}
			// Nothing may be left bound: the same config with the port freed works.
			cfg = testConfig(t)
			cp, err := New(Options{Config: cfg, Log: zaptest.NewLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			cp.close()
		})
	}
}

// configFile is a config file that a running control plane watches.
type configFile struct {
	path string
	// header is the part every version of the file shares: loopback
	// listeners on port 0 and directories under a temp dir.
	header string
	cfg    config.Config
}

func newConfigFile(t *testing.T) *configFile {
	t.Helper()
	cfg := testConfig(t)
	return &configFile{
		path: filepath.Join(t.TempDir(), "wasmfleet.yaml"),
		header: "watch_dir: " + cfg.WatchDir + "\ndata_dir: " + cfg.DataDir +
			"\nlisten: {xds: 127.0.0.1:0, modules: 127.0.0.1:0, admin: 127.0.0.1:0}\nlimits: {debounce: 20ms}\n",
		cfg: cfg,
	}
}

// write replaces the file with header+body, by write then rename as
// editors do.
func (f *configFile) write(t *testing.T, body string) {
	t.Helper()
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(f.header+body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
}

// start writes body, loads it and runs a control plane on it until the
// test ends.
func (f *configFile) start(t *testing.T, body string, log *zap.Logger) *ControlPlane {
	t.Helper()
	f.write(t, body)
	loaded, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := New(Options{Config: loaded, ConfigPath: f.path, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return cp
}

// TestConfigReload edits the config file of a running control plane: a valid
// edit reorders the chain, a broken one is refused and changes nothing.
func TestConfigReload(t *testing.T) {
	file := newConfigFile(t)
	cp := file.start(t, "filters: [{name: a}, {name: b}]\n", zaptest.NewLogger(t))

	module := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	// The directory source creates the directory when it starts, which may
	// not have happened yet; the files are read either way.
	if err := os.MkdirAll(file.cfg.WatchDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(file.cfg.WatchDir, name+".wasm"), module, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitOrder := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var got string
		for time.Now().Before(deadline) {
			var names []string
			for _, f := range cp.ctrl.Status() {
				if f.Position >= 0 {
					names = append(names, f.Name)
				}
			}
			if got = strings.Join(names, ","); got == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("chain order = %q, want %q", got, want)
	}
	waitOrder("a,b")

	file.write(t, "filters: [{name: b}, {name: a}]\n")
	waitOrder("b,a")

	// A typo and an invalid value are refused one after the other; the
	// running order stays. A later valid edit proves the watcher survived.
	for i, bad := range []string{
		"filterz: [{name: a}, {name: b}]\n",
		"filters: [{name: a}, {name: b, failure_policy: SOMETIMES}]\n",
	} {
		file.write(t, bad)
		waitCount(t, cp.metrics.ConfigReloads.WithLabelValues("refused"), float64(i+1))
		waitOrder("b,a")
	}
	file.write(t, "filters: [{name: a}, {name: b}]\n")
	waitOrder("a,b")
}

func waitCount(t *testing.T, c prometheus.Counter, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(c) < want {
		if time.Now().After(deadline) {
			t.Fatalf("counter = %v, want %v", testutil.ToFloat64(c), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetricsShowRolloutState: the admin API's /metrics carries each
// filter's rollout gauges, read from the controller's status, the build
// info and the push window's gauges.
func TestMetricsShowRolloutState(t *testing.T) {
	file := newConfigFile(t)
	cp := file.start(t, "filters: [{name: a}]\n", zaptest.NewLogger(t))
	if err := os.MkdirAll(file.cfg.WatchDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(file.cfg.WatchDir, "a.wasm"), wasmtest.Module(t, "internal/wasmtest/testdata/hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Admitted or not (a trial run can time out on a loaded machine), the
	// filter has a status, so it has its series.
	want := []string{`wasmfleet_rollout_candidate{filter="a"} `, `wasmfleet_filter_error{filter="a"} `, "wasmfleet_build_info{",
		"wasmfleet_xds_push_window_in_flight ", "wasmfleet_xds_push_window_queued "}
	deadline := time.Now().Add(time.Minute)
	for {
		body := get(t, "http://"+cp.Addrs().Admin+"/metrics")
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(body, w) })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
