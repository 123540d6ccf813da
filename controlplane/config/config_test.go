package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErrs []error
		wantIn   []string
	}{
		{name: "empty file is the default", yaml: ""},
		{
			name: "full filter entry",
			yaml: `
filters:
  - name: auth
    required: true
    failure_policy: FAIL_OPEN
    config: {api_keys: {header: x-api-key}}
    rollout: {steps: [10, 50, 100], interval: 30s}
`,
		},
		{
			name:     "typo in a field is refused",
			yaml:     "filterz: []\n",
			wantErrs: []error{ErrUnknownField},
			wantIn:   []string{"filterz"},
		},
		{
			name: "every problem is listed with its field",
			yaml: `
listen: {xds: "nonsense"}
mode: both
filters:
  - name: Auth
    failure_policy: SOMETIMES
    rollout: {percent: 150, steps: [50, 20]}
  - name: log
    config: 42
managed:
  listeners: [{name: in, address: "0.0.0.0:10000", routes: [{prefix: "/", cluster: nowhere}]}]
`,
			wantErrs: []error{ErrAddress, ErrInvalidValue, ErrFilterName, ErrOutOfRange, ErrPluginConfig, ErrUnknownRef},
			wantIn: []string{"listen.xds", "mode", "filters[0].name", "filters[0].failure_policy",
				"filters[0].rollout.percent", "filters[0].rollout.steps[1]", "filters[1].config",
				"managed.listeners[0].routes[0].cluster"},
		},
		{
			name:     "environment names and values WASI cannot carry",
			yaml:     "filters: [{name: a, vm: {env: {\"\": x, \"A=B\": x, OK: \"a\\0b\"}}}]\n",
			wantErrs: []error{ErrInvalidValue},
			wantIn:   []string{`1:32: filters[0].vm.env[""]: invalid value`, `1:39: filters[0].vm.env["A=B"]`, `1:49: filters[0].vm.env.OK`},
		},
		{
			name:     "request split without our routes",
			yaml:     "mode: ecds\nfilters: [{name: a, rollout: {by: request, percent: 10}}]\n",
			wantErrs: []error{ErrInvalidValue},
			wantIn:   []string{"filters[0].rollout.by"},
		},
		{
			name:     "signature required without a trusted key",
			yaml:     "filters: [{name: a, require_signature: true}]\n",
			wantErrs: []error{ErrRequired},
			wantIn:   []string{"trust.keys"},
		},
		{
			name:     "registry reference without a tag",
			yaml:     "filters: [{name: a, source: \"oci://registry.example.com/filters/a\"}]\n",
			wantErrs: []error{ErrInvalidValue},
			wantIn:   []string{"filters[0].source"},
		},
		{
			name: "registry source",
			yaml: "insecure_registries: [\"127.0.0.1:5000\"]\nfilters: [{name: a, source: \"oci://127.0.0.1:5000/filters/a:1\"}]\n",
		},
		{
			name:     "no version kept",
			yaml:     "keep_versions: 0\n",
			wantErrs: []error{ErrOutOfRange},
		},
		{
			name:     "duplicate filter",
			yaml:     "filters: [{name: a}, {name: a}]\n",
			wantErrs: []error{ErrDuplicate},
		},
		{
			name:     "xds and modules beyond loopback without tls",
			yaml:     "listen: {xds: \"0.0.0.0:18000\", modules: \"[::]:18001\"}\n",
			wantErrs: []error{ErrInsecureBind},
			wantIn:   []string{"listen.xds", "listen.modules"},
		},
		{
			name: "beyond loopback with the escape hatch",
			yaml: "listen: {xds: \"0.0.0.0:18000\", modules: \"0.0.0.0:18001\", insecure: true}\n",
		},
		{
			name: "beyond loopback with tls",
			yaml: "listen: {xds: \"0.0.0.0:18000\", modules: \"0.0.0.0:18001\"}\ntls: {cert_file: s.crt, key_file: s.key, client_ca_file: ca.crt, node_identity: \"{node}.nodes.example.org\"}\n",
		},
		{
			name:     "tls half configured",
			yaml:     "tls: {cert_file: s.crt}\n",
			wantErrs: []error{ErrRequired},
			wantIn:   []string{"tls.key_file", "tls.client_ca_file"},
		},
		{
			name:     "tls with insecure, an http module url and a bad identity",
			yaml:     "listen: {insecure: true}\nmodule_base_url: http://cp:18001\ntls: {cert_file: s.crt, key_file: s.key, client_ca_file: ca.crt, node_identity: \"spiffe://x/node\"}\n",
			wantErrs: []error{ErrInvalidValue},
			wantIn:   []string{"listen.insecure", "module_base_url", "tls.node_identity"},
		},
		{
			name:     "envoy module tls without https",
			yaml:     "managed: {modules_tls: {cert_file: n.crt, key_file: n.key}}\n",
			wantErrs: []error{ErrRequired, ErrInvalidValue},
			wantIn:   []string{"managed.modules_tls.ca_file", "managed.modules_tls: "},
		},
		{
			name:     "admin beyond loopback without a token",
			yaml:     "listen: {admin: \"0.0.0.0:18002\"}\n",
			wantErrs: []error{ErrInsecureAdmin},
		},
		{
			// The default cluster's endpoint must not leak into the file's.
			name:     "a cluster without endpoints",
			yaml:     "managed: {clusters: [{name: upstream}]}\n",
			wantErrs: []error{ErrRequired},
			wantIn:   []string{"managed.clusters[0].endpoints"},
		},
		{
			name: "admin beyond loopback with a token file",
			yaml: "listen: {admin: \"0.0.0.0:18002\"}\nadmin_token_file: /var/run/secrets/wasmfleet/token\n",
		},
		{
			name:     "a token and a token file",
			yaml:     "admin_token: x\nadmin_token_file: /t\n",
			wantErrs: []error{ErrInvalidValue},
			wantIn:   []string{"admin_token_file"},
		},
		{
			name: "routes by path, regex, headers, host and with metadata",
			yaml: `
managed:
  clusters: [{name: upstream, endpoints: ["127.0.0.1:8080"]}, {name: canary, endpoints: ["127.0.0.1:8081"]}]
  listeners:
    - name: in
      address: "0.0.0.0:10000"
      routes:
        - {path: /healthz, cluster: upstream}
        - {safe_regex: "/v[0-9]+/items/[^/]+", cluster: canary, metadata: {acme.auth: {scope: items, level: 2}}}
        - prefix: /
          cluster: canary
          headers: [{name: x-canary, exact: "1"}, {name: x-debug, present: false}, {name: user-agent, regex: ".*bot.*", invert: true}]
        - {prefix: /, cluster: upstream}
      virtual_hosts:
        - {name: api, hosts: [api.example.com, "*.api.example.com", "api.*"], routes: [{prefix: /, cluster: canary}]}
`,
		},
		{
			name: "bad route matches name their field",
			yaml: `
managed:
  listeners:
    - name: in
      address: "0.0.0.0:10000"
      routes:
        - {cluster: upstream}
        - {prefix: /, path: /x, cluster: upstream}
        - {safe_regex: "/(unclosed", cluster: upstream}
        - prefix: /
          cluster: upstream
          headers: [{name: a, exact: x, prefix: "p"}, {name: b}, {name: c, regex: "(?<!x)"}, {name: d, contains: ""}, {name: "", present: true}]
        - {path: nope, cluster: upstream, metadata: {"": {a: 1}}}
`,
			wantErrs: []error{ErrRequired, ErrAmbiguous, ErrRegex, ErrInvalidValue},
			wantIn: []string{"managed.listeners[0].routes[0]: required: one of prefix, path or safe_regex",
				"managed.listeners[0].routes[1]: ambiguous: prefix and path",
				"managed.listeners[0].routes[2].safe_regex: not an RE2",
				"managed.listeners[0].routes[3].headers[0]: ambiguous: exact and prefix",
				"managed.listeners[0].routes[3].headers[1]: required",
				"managed.listeners[0].routes[3].headers[2].regex: not an RE2",
				"managed.listeners[0].routes[3].headers[3].contains: invalid value",
				"managed.listeners[0].routes[3].headers[4].name: invalid value",
				"managed.listeners[0].routes[4].path: invalid value",
				"managed.listeners[0].routes[4].metadata: invalid value"},
		},
		{
			name: "bad virtual hosts",
			yaml: `
managed:
  listeners:
    - name: in
      address: "0.0.0.0:10000"
      routes: [{prefix: /, cluster: upstream}]
      virtual_hosts:
        - {name: in, hosts: ["*"], routes: [{prefix: /, cluster: upstream}]}
        - {name: a, hosts: ["a.*.com", "*b*", "x.com", "X.com"], routes: []}
        - {name: b, hosts: []}
`,
			wantErrs: []error{ErrRequired, ErrDuplicate, ErrInvalidValue},
			wantIn: []string{"managed.listeners[0].virtual_hosts[0].name: duplicate name",
				`managed.listeners[0].virtual_hosts[0].hosts[0]: duplicate name: "*" is served by managed.listeners[0].routes`,
				"managed.listeners[0].virtual_hosts[1].hosts[0]: invalid value", "managed.listeners[0].virtual_hosts[1].hosts[1]: invalid value",
				`managed.listeners[0].virtual_hosts[1].hosts[3]: duplicate name: "X.com"`,
				"managed.listeners[0].virtual_hosts[1].routes: required", "managed.listeners[0].virtual_hosts[2].hosts: required"},
		},
		{
			name:     "a listener without routes or virtual hosts",
			yaml:     "managed: {listeners: [{name: in, address: \"0.0.0.0:10000\"}]}\n",
			wantErrs: []error{ErrRequired},
			wantIn:   []string{"managed.listeners[0].routes: required: routes or virtual_hosts"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not wrap %v", err, want)
				}
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not name %q:\n%v", s, err)
				}
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmfleet.yaml")
	if err := os.WriteFile(path, []byte("mode: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("Load error = %v, want it to name %s and the field", err, path)
	}
}

func TestWithDefaults(t *testing.T) {
	f := Filter{Name: "auth", Rollout: Rollout{Steps: []int{10, 100}}}.WithDefaults()
	if *f.Rollout.Percent != 10 || f.FailurePolicy != FailClosed || f.Code != CodeInline || f.Rollout.By != ByNode {
		t.Fatalf("WithDefaults = %+v", f)
	}
	if g := (Filter{Name: "x"}).WithDefaults(); *g.Rollout.Percent != 100 {
		t.Fatalf("default percent = %d, want 100", *g.Rollout.Percent)
	}
}

// TestVMEnvDefaults: every filter's VMs get DefaultGOGC unless its own
// settings name GOGC; other variables are kept, and the caller's map is
// not written into.
func TestVMEnvDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{name: "none", want: map[string]string{"GOGC": DefaultGOGC}},
		{name: "others kept", env: map[string]string{"GOMEMLIMIT": "8MiB"}, want: map[string]string{"GOGC": DefaultGOGC, "GOMEMLIMIT": "8MiB"}},
		{name: "own GOGC wins", env: map[string]string{"GOGC": "100"}, want: map[string]string{"GOGC": "100"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := maps.Clone(tc.env)
			got := Filter{Name: "a", VM: VM{Env: in}}.WithDefaults().VM.Env
			if !maps.Equal(got, tc.want) {
				t.Fatalf("env %v, want %v", got, tc.want)
			}
			if !maps.Equal(in, tc.env) {
				t.Fatalf("WithDefaults changed the caller's map to %v", in)
			}
		})
	}
}

// TestFilterSettingsVM: NAME.yaml sets the two Wasm plugin settings over the
// main config's entry (variables merge), without touching that entry.
func TestFilterSettingsVM(t *testing.T) {
	cfg, err := Parse([]byte("filters: [{name: transform, vm: {env: {GOGC: \"50\"}}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := cfg.FilterByName("transform")
	f, err := ParseFilterSettings("transform.yaml", base, []byte("allow_on_headers_stop_iteration: true\nvm: {env: {GOMEMLIMIT: 16MiB}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GOGC": "50", "GOMEMLIMIT": "16MiB"}
	if !f.AllowOnHeadersStopIteration || !maps.Equal(f.VM.Env, want) {
		t.Fatalf("allow %v env %v, want true %v", f.AllowOnHeadersStopIteration, f.VM.Env, want)
	}
	if base.AllowOnHeadersStopIteration || len(base.VM.Env) != 1 {
		t.Fatalf("base changed: %+v", base)
	}
}

func TestParseFilterSettings(t *testing.T) {
	base := Filter{Name: "auth", Required: true}
	f, err := ParseFilterSettings("filters.d/auth.yaml", base, []byte("config: {a: 1}\nfailure_policy: FAIL_OPEN\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Required || f.FailurePolicy != FailOpen || string(f.Config) != `{"a":1}` {
		t.Fatalf("got %+v config %s", f, f.Config)
	}
	_, err = ParseFilterSettings("filters.d/auth.yaml", base, []byte("failur_policy: x\n"))
	if err == nil || !strings.Contains(err.Error(), "filters.d/auth.yaml") {
		t.Fatalf("typo error = %v, want it to name the file", err)
	}
}

func TestFilterOrder(t *testing.T) {
	cfg := Default()
	cfg.Filters = []Filter{{Name: "transform"}, {Name: "auth"}, {Name: "missing"}}
	got := cfg.FilterOrder([]string{"zeta", "auth", "logging", "transform"})
	want := []string{"transform", "auth", "logging", "zeta"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("FilterOrder = %v, want %v", got, want)
	}
}

// TestDefaultNodeIdentity ties the config default to the one mtls documents.
func TestDefaultNodeIdentity(t *testing.T) {
	if DefaultNodeIdentity != mtls.DefaultNodeIdentity {
		t.Fatalf("config %q, mtls %q", DefaultNodeIdentity, mtls.DefaultNodeIdentity)
	}
}

// TestExampleFile keeps the documented reference in docs/ parseable.
func TestExampleFile(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "docs", "wasmfleet.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Filters) != 3 || !cfg.Filters[0].Required || cfg.Managed.FilterSlots != DefaultFilterSlots {
		t.Fatalf("example parsed into something unexpected: %+v", cfg)
	}
	if cfg.TLS != Default().TLS || cfg.Listen.Insecure {
		t.Fatalf("example tls %+v (insecure %v), want the defaults it documents", cfg.TLS, cfg.Listen.Insecure)
	}
	if cfg.Limits != Default().Limits {
		t.Fatalf("example limits %+v, want the defaults it documents %+v", cfg.Limits, Default().Limits)
	}
}

// TestSafeByDefault: symlinks that leave watch_dir are refused and /metrics
// follows admin_token unless a file says otherwise.
func TestSafeByDefault(t *testing.T) {
	if d := Default(); d.Limits.FollowOutsideSymlinks || d.AdminMetricsOpen {
		t.Fatalf("default follows outside symlinks (%v) or opens metrics (%v)", d.Limits.FollowOutsideSymlinks, d.AdminMetricsOpen)
	}
	cfg, err := Parse([]byte("limits: {follow_outside_symlinks: true}\nadmin_token: t\nadmin_metrics_open: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Limits.FollowOutsideSymlinks || !cfg.AdminMetricsOpen {
		t.Fatalf("parsed %+v, admin_metrics_open %v; want both switches on", cfg.Limits, cfg.AdminMetricsOpen)
	}
}

// TestParseFilterSettingsLeavesBaseAlone: the base is the running config's
// entry; decoding a NAME.yaml must not write into it.
func TestParseFilterSettingsLeavesBaseAlone(t *testing.T) {
	p := 50
	base := Filter{Name: "auth", Config: []byte(`{"realm":"0123456789"}`), Rollout: Rollout{Percent: &p, Steps: []int{10, 100}}}
	_, err := ParseFilterSettings("auth.yaml", base, []byte("config: {realm: x}\nrollout: {percent: 20, steps: [20, 100]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(base.Config) != `{"realm":"0123456789"}` || *base.Rollout.Percent != 50 || base.Rollout.Steps[0] != 10 {
		t.Fatalf("base changed: config %s, percent %d, steps %v", base.Config, *base.Rollout.Percent, base.Rollout.Steps)
	}
}
