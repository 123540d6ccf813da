package xdscheck

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"sigs.k8s.io/yaml"

	"github.com/wasmfleet/wasmfleet/controlplane"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
	"github.com/wasmfleet/wasmfleet/internal/cptest"
)

// run is one control plane with one recording node.
type run struct {
	t          *testing.T
	phaseStart time.Time
	phase      string
	cfg        config.Config
	configPath string
	addrs      controlplane.Addrs
	rec        *Recorder
}

// start runs a control plane and one recording node until the test ends.
func start(t *testing.T, unsequenced bool, fails Fails) *run {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	cfg := config.Default()
	cfg.Listen = config.Listen{XDS: "127.0.0.1:0", Modules: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	cfg.WatchDir = t.TempDir()
	cfg.DataDir = t.TempDir()
	cfg.Limits.Debounce = config.Duration(20 * time.Millisecond)
	cfg.Limits.TrialTimeout = config.Duration(60 * time.Second)
	cfg.Filters = []config.Filter{
		// Inline code: a module is loaded when its update arrives, so a
		// load failure is a NACK (docs/xds-resources.md).
		{Name: "auth", Required: true, Code: config.CodeInline, Config: authConfig},
		{Name: "logging", Code: config.CodeInline, Config: json.RawMessage(`{"sample_rate": 1}`)},
		{Name: "transform", Code: config.CodeInline, Config: json.RawMessage(`{"request": {"headers": {"set": [{"name": "x-transformed", "value": "1"}]}}}`)},
	}
	r := &run{t: t, cfg: cfg, configPath: filepath.Join(t.TempDir(), "wasmfleet.yaml"), rec: NewRecorder(fails)}
	r.writeConfig(cfg.Filters...)
	loaded, err := config.Load(r.configPath)
	if err != nil {
		t.Fatal(err)
	}
	cp := cptest.Start(t, controlplane.Options{
		Config: loaded, ConfigPath: r.configPath, Log: log.Named("cp"), Unsequenced: unsequenced,
	})
	r.addrs = cp.Addrs()
	// Later writes keep the bound addresses, as a restart-only field would.
	r.cfg.Listen = config.Listen{XDS: r.addrs.XDS, Modules: r.addrs.Modules, Admin: r.addrs.Admin}

	client, err := ads.New(ads.Config{
		Node:        &core.Node{Id: "xdscheck-node", Cluster: "xdscheck"},
		Addr:        r.addrs.XDS,
		Wildcard:    []string{ClusterType, ListenerType},
		Named:       []string{RouteType, ExtensionType},
		Handler:     r.rec,
		BackoffBase: 10 * time.Millisecond,
		BackoffMax:  100 * time.Millisecond,
		Log:         log.Named("ads"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- client.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-clientDone; err != nil {
			t.Errorf("ads client: %v", err)
		}
	})
	return r
}

// authConfig accepts one API key (the auth filter refuses a config
// without keys).
var authConfig = json.RawMessage(`{"realm": "xdscheck", "api_keys": {"name_header": "x-auth-key", "keys": [` +
	`{"name": "k", "sha256": "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"}]}}`)

// withCustomSection appends a custom section to a wasm module: a valid
// module that behaves the same, with another digest.
func withCustomSection(mod []byte, name, payload string) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := append(slices.Clip(mod), 0) // section id 0: custom
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// mark starts a phase: the recording gets a mark, the log the time the
// phase before took.
func (r *run) mark(phase string) {
	r.t.Helper()
	if r.phase != "" {
		r.t.Logf("phase %q took %v", r.phase, time.Since(r.phaseStart).Round(time.Millisecond))
	}
	r.phase, r.phaseStart = phase, time.Now()
	r.rec.Mark(phase)
}

// writeConfig writes the config file with filters in this chain order
// (temporary file, then rename); the running control plane reloads it.
func (r *run) writeConfig(filters ...config.Filter) {
	r.t.Helper()
	r.cfg.Filters = filters
	b, err := yaml.Marshal(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	tmp := r.configPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.configPath); err != nil {
		r.t.Fatal(err)
	}
}

// writeModule drops a module into the watched directory, renamed into
// place so the control plane never reads half a file.
func (r *run) writeModule(name string, b []byte) {
	r.t.Helper()
	tmp := filepath.Join(r.cfg.WatchDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.cfg.WatchDir, name)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *run) removeModule(name string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.cfg.WatchDir, name)); err != nil {
		r.t.Fatal(err)
	}
}

// await polls the node's view until cond holds or awaitTimeout passes.
func (r *run) await(what string, cond func(View) bool) {
	r.t.Helper()
	r.awaitErr(what, func() error {
		if !cond(r.rec.View()) {
			return errors.New("not yet")
		}
		return nil
	})
}

func (r *run) awaitErr(what string, check func() error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	if err := dataplane.AwaitNil(ctx, check); err != nil {
		v := r.rec.View()
		for name, s := range v.Slots {
			r.t.Logf("  %s: %s (rejected %v)", name, s.Running, s.Rejected)
		}
		for name, slots := range v.Routes {
			r.t.Logf("  %s runs %v", name, slots)
		}
		r.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// awaitChain waits until the node's only route is stableRoute (no request
// split) and it runs these filters: pairs of plugin name and code digest
// ("" for any code). Which slots hold them is the control plane's choice.
func (r *run) awaitChain(pairs ...any) {
	r.t.Helper()
	r.awaitErr(fmt.Sprintf("the chain %v", pairs), func() error {
		v := r.rec.View()
		if len(v.Routes) != 1 {
			return fmt.Errorf("routes %v, want %s alone", v.Routes, stableRoute)
		}
		return routeRuns(v, stableRoute, pairs...)
	})
}

// routeRuns checks that route runs the filters pairs name (as awaitChain).
func routeRuns(v View, route string, pairs ...any) error {
	slots, ok := v.Routes[route]
	if !ok || 2*len(slots) != len(pairs) {
		return fmt.Errorf("%s runs %v, want %v", route, slots, pairs)
	}
	for i, slot := range slots {
		held := v.Slots[slot].Running
		plugin, code := fmt.Sprint(pairs[2*i]), fmt.Sprint(pairs[2*i+1])
		if held.Plugin != plugin || (code != "" && held.Code != code) {
			return fmt.Errorf("%s: %s holds %s, want %s@%.12s", route, slot, held, plugin, code)
		}
	}
	return nil
}

// rolledBack holds once digest d is marked bad and no candidate is left.
func rolledBack(d types.Digest) func(api.Filter) bool {
	return func(fs api.Filter) bool {
		return fs.Candidate == "" && slices.ContainsFunc(fs.Bad, func(b api.BadVersion) bool { return b.Digest == d })
	}
}

// adminClient reads the status (polled, so a slow answer is retried);
// commandClient posts commands, which wait for the controller's loop and
// are not retried.
var (
	adminClient   = &http.Client{Timeout: 5 * time.Second}
	commandClient = &http.Client{Timeout: awaitTimeout}
)

// awaitStatus polls the admin API until auth's status satisfies cond.
func (r *run) awaitStatus(what string, cond func(api.Filter) bool) {
	r.t.Helper()
	r.awaitErr(what, func() error {
		resp, err := adminClient.Get("http://" + r.addrs.Admin + "/api/v1/status")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var st api.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return err
		}
		for _, fs := range st.Filters {
			if fs.Name == "auth" {
				if cond(fs) {
					return nil
				}
				return fmt.Errorf("auth status %+v", fs)
			}
		}
		return errors.New("no auth in the status")
	})
}

// command posts a rollout command for filter.
func (r *run) command(filter, action string) {
	r.t.Helper()
	resp, err := commandClient.Post("http://"+r.addrs.Admin+"/api/v1/rollout/"+filter+"/"+action, "application/json", bytes.NewReader(nil))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		r.t.Fatalf("rollout %s %s: %s: %s", action, filter, resp.Status, b)
	}
}
