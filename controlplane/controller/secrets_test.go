package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/secrets"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const echoGuest = "controlplane/controller/testdata/echoconfig"

// secretHarness starts a controller on the config file at path, with every
// log line of the controller and of admission (guest lines included, at
// debug level) kept in the returned observer.
func secretHarness(t *testing.T, path string) (*harness, *observer.ObservedLogs) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	h := newHarnessWith(t, cfg, fleet.Config{}, func(c *Config) {
		c.Log = log
		// The race detector slows the interpreter well past the default limit.
		c.Admitter = admission.New(admission.Config{Log: log, TrialTimeout: time.Minute})
	})
	return h, logs
}

// ecds returns node's ECDS resources as JSON and their version.
func (h *harness) ecds(node string) (string, string) {
	h.t.Helper()
	snap, err := h.cache.GetSnapshot(node)
	if err != nil {
		h.t.Fatal(err)
	}
	var out strings.Builder
	for _, r := range snap.GetResources(resourcev3.ExtensionConfigType) {
		js, err := protojson.Marshal(r)
		if err != nil {
			h.t.Fatal(err)
		}
		out.Write(js)
	}
	return out.String(), snap.GetVersion(resourcev3.ExtensionConfigType)
}

// served is everything the control plane shows of itself: what the admin
// API serves (GET /api/v1/status is the controller's status and the fleet's
// nodes; history is the store's; /metrics the registry), every log line
// with its fields, and the files it persists.
func (h *harness) served(logs *observer.ObservedLogs, filters ...string) string {
	h.t.Helper()
	var out bytes.Buffer
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			h.t.Fatal(err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	add(struct {
		Filters []FilterStatus     `json:"filters"`
		Nodes   []fleet.NodeStatus `json:"nodes"`
	}{h.ctrl.Status(), h.fleet.Nodes()})
	for _, f := range filters {
		hist, err := h.store.History(f)
		if err != nil {
			h.t.Fatal(err)
		}
		add(hist)
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&out, mf)
	}
	for _, e := range logs.All() {
		fmt.Fprintf(&out, "%s %s ", e.Level, e.Message)
		add(e.ContextMap())
	}
	filepath.WalkDir(h.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			out.Write(b)
		}
		return nil
	})
	return out.String()
}

// TestSecretsReachOnlyTheFleet: a config file refers to a secret file and a
// variable; their values reach the node's ECDS config and the trial run,
// and nothing the control plane serves, logs or stores, even when a guest
// echoes its configuration into a rejection. A rotated file reaches the
// fleet when settings are applied again, with a new config version.
func TestSecretsReachOnlyTheFleet(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hs256.key")
	const fileSecret, envSecret, rotated = "c2VjcmV0LWZyb20tYS1maWxl-9f2b", "secret-from-the-env-71c4", "cm90YXRlZC1zZWNyZXQ-33ad"
	if err := os.WriteFile(keyFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WASMFLEET_TEST_HS256", envSecret)
	cfgFile := filepath.Join(dir, "wasmfleet.yaml")
	cfgYAML := fmt.Sprintf(`
filters:
  - name: echo
    config:
      realm: visible
      key: {$secret: {file: %s}}
      also: [{$secret: {env: WASMFLEET_TEST_HS256}}]
`, keyFile)
	if err := os.WriteFile(cfgFile, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	h, logs := secretHarness(t, cfgFile)
	h.connect("n1")
	v1 := h.drop("echo", wasmtest.Module(t, echoGuest))
	h.respond("n1", "echo", v1, "")
	h.wait("v1 stable", func() bool { return h.status("echo").Stable == v1 })

	ecds, version := h.ecds("n1")
	for _, want := range []string{fileSecret, envSecret, "visible"} {
		if !strings.Contains(ecds, want) {
			t.Errorf("the node's ECDS config lacks %q: %s", want, ecds)
		}
	}
	if strings.Contains(ecds, "$secret") {
		t.Errorf("the node was sent a reference: %s", ecds)
	}

	// Settings the running module refuses, which it refuses by echoing
	// them (secrets included) in an error log: the error says so without
	// the secrets, and the running settings stay.
	h.events <- types.Event{Kind: types.SettingsChanged, Filter: "echo", Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/echo.yaml"},
		Settings: fmt.Appendf(nil, "config:\n  fail: true\n  key: {$secret: {file: %s}}\n  also: [{$secret: {env: WASMFLEET_TEST_HS256}}]\n", keyFile)}
	h.wait("the refusal", func() bool { return strings.Contains(h.status("echo").LastError, "does not accept these settings") })
	if e := h.status("echo").LastError; !strings.Contains(e, "refusing configuration") || !strings.Contains(e, secrets.Redacted) {
		t.Errorf("last error %q: want the guest's message with the secrets redacted", e)
	}

	// A settings file in the watch directory may not name other secrets.
	h.events <- types.Event{Kind: types.SettingsChanged, Filter: "echo", Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/echo.yaml"},
		Settings: []byte("config:\n  key: {$secret: {env: HOME}}\n")}
	h.wait("the refusal of another secret", func() bool { return strings.Contains(h.status("echo").LastError, "env HOME") })
	if e := h.status("echo").LastError; !strings.Contains(e, "config.key") || !strings.Contains(e, ErrSecretNotInConfig.Error()) {
		t.Errorf("last error %q: want the path, the variable and why", e)
	}

	// A secret that cannot be read: the reload names the filter, the path
	// and the file, and the running settings stay.
	missing := keyFile + ".gone"
	if err := os.Rename(keyFile, missing); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	err = h.ctrl.Reconfigure(context.Background(), cfg)
	if !errors.Is(err, secrets.ErrUnavailable) || !strings.Contains(err.Error(), "filter echo") ||
		!strings.Contains(err.Error(), "config.key") || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("reload with a missing secret file: %v", err)
	}
	if _, v := h.ecds("n1"); v != version {
		t.Error("a refused reload changed what the node is sent")
	}

	// A rotated secret goes through the trial run like any settings: one
	// the running module refuses is refused.
	const refused = "rotated-but-fail-8e0b"
	if err := os.WriteFile(keyFile, []byte(refused), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.ctrl.Reconfigure(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "does not accept these settings") {
		t.Errorf("reload with a secret the module refuses: %v", err)
	}
	if _, v := h.ecds("n1"); v != version {
		t.Error("a refused secret changed what the node is sent")
	}

	// Rotation: the file's new content goes out when settings are applied
	// again (here a reload of the same config), under a new version.
	if err := os.WriteFile(keyFile, []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.ctrl.Reconfigure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.wait("the rotated secret to reach n1", func() bool { got, _ := h.ecds("n1"); return strings.Contains(got, rotated) })
	if _, v := h.ecds("n1"); v == version {
		t.Errorf("ECDS version %s did not change with the secret", v)
	}

	all := h.served(logs, "echo")
	if !strings.Contains(all, "trial run guest log") || !strings.Contains(all, "realm") {
		t.Fatal("the guest's debug lines were not observed; the test would prove nothing")
	}
	for _, s := range []string{fileSecret, envSecret, rotated, refused} {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("secret %q is served or logged: ...%s...", s, all[max(0, i-200):min(len(all), i+len(s)+50)])
		}
	}
}

// TestSecretNACKReasonRedacted: a node that echoes the configuration in its
// NACK does not put a secret into the filter's status or the history of
// bad versions.
func TestSecretNACKReasonRedacted(t *testing.T) {
	const secret = "nack-echoed-secret-5d1e"
	t.Setenv("WASMFLEET_TEST_NACK", secret)
	cfgFile := filepath.Join(t.TempDir(), "wasmfleet.yaml")
	if err := os.WriteFile(cfgFile, []byte("filters:\n  - name: echo\n    config: {key: {$secret: {env: WASMFLEET_TEST_NACK}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, logs := secretHarness(t, cfgFile)
	h.connect("n1")
	echo := wasmtest.Module(t, echoGuest)
	v1 := h.drop("echo", echo)
	h.respond("n1", "echo", v1, "")
	h.wait("v1 stable", func() bool { return h.status("echo").Stable == v1 })
	v2 := h.drop("echo", variant(echo, 2))
	h.respond("n1", "echo", v2, "bad configuration {\"key\":\""+secret+"\"}")
	h.wait("v2 rolled back", func() bool { return len(h.status("echo").Bad) == 1 })
	if r := h.status("echo").Bad[0].Reason; strings.Contains(r, secret) || !strings.Contains(r, secrets.Redacted) {
		t.Errorf("bad mark reason %q", r)
	}
	var ctrlLogs strings.Builder
	for _, e := range logs.FilterLoggerName("controller").All() {
		b, _ := json.Marshal(e.ContextMap())
		fmt.Fprintf(&ctrlLogs, "%s %s\n", e.Message, b)
	}
	if strings.Contains(ctrlLogs.String(), secret) {
		t.Errorf("the controller logged the secret: %s", ctrlLogs.String())
	}
}

// TestUnreadableSecretRefusedAtStart: the config file's secrets are read
// when the controller starts; one that cannot be is an error naming it.
func TestUnreadableSecretRefusedAtStart(t *testing.T) {
	cfg, err := config.Parse([]byte("filters:\n  - name: auth\n    config: {jwt: {k: {$secret: {env: WASMFLEET_TEST_UNSET}}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Config: cfg, Log: zaptest.NewLogger(t)})
	if !errors.Is(err, secrets.ErrUnavailable) || !strings.Contains(err.Error(), "filter auth: config.jwt.k: $secret env WASMFLEET_TEST_UNSET") {
		t.Errorf("New = %v", err)
	}
}
