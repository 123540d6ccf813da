package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"go.uber.org/zap/zaptest"
	"sigs.k8s.io/yaml"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/envoy"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// The compose file's parts the checks read. Unknown keys are errors, so a
// key this struct lacks must be added here, where the checks can see it.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build,omitempty"`
	Image     string   `json:"image,omitempty"`
	Command   []string `json:"command,omitempty"`
	Volumes   []string `json:"volumes,omitempty"`
	Ports     []string `json:"ports,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`
}

// composeService names in docker-compose.yaml.
const (
	controlPlaneService = "wasmfleet"
	upstreamService     = "upstream"
)

// minEnvoy is the oldest Envoy that loads Go wasip1 reactor modules.
var minEnvoy = [2]int{1, 33}

// mount is one entry of a service's volumes.
type mount struct{ source, target string }

func (s composeService) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out = append(out, mount{source: parts[0], target: parts[1]})
		}
	}
	return out
}

// flag returns the value after name in the command ("-c", "--config", ...).
func (s composeService) flag(name string) string {
	if i := slices.Index(s.Command, name); i >= 0 && i+1 < len(s.Command) {
		return s.Command[i+1]
	}
	return ""
}

// published maps each published container port to its host port, from
// "HOST:CONTAINER" specs.
func (s composeService) published() map[int]int {
	out := map[int]int{}
	for _, p := range s.Ports {
		parts := strings.Split(p, ":")
		host, _ := strconv.Atoi(parts[0])
		ctr, _ := strconv.Atoi(parts[len(parts)-1])
		out[ctr] = host
	}
	return out
}

// composeWorld is docker-compose.yaml with the files it names, loaded.
type composeWorld struct {
	root      string
	compose   composeFile
	cp        composeService
	cpConfig  config.Config
	envoys    map[string]composeService
	bootstrap *bootstrapv3.Bootstrap
	// bootstrapPath is the host path of the bootstrap every Envoy mounts.
	bootstrapPath string
}

func loadCompose(t *testing.T) composeWorld {
	t.Helper()
	w := composeWorld{root: wasmtest.Root(), envoys: map[string]composeService{}}
	raw, err := os.ReadFile(filepath.Join(w.root, "docker-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &w.compose); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	var ok bool
	if w.cp, ok = w.compose.Services[controlPlaneService]; !ok {
		t.Fatalf("docker-compose.yaml: no %q service", controlPlaneService)
	}
	cfgPath := w.hostPath(t, w.cp, w.cp.flag("--config"))
	if w.cpConfig, err = config.Load(cfgPath); err != nil {
		t.Fatalf("control plane config: %v", err)
	}
	for name, s := range w.compose.Services {
		if strings.HasPrefix(s.Image, "envoyproxy/envoy:") {
			w.envoys[name] = s
		}
	}
	for name, s := range w.envoys {
		p := w.hostPath(t, s, s.flag("-c"))
		if w.bootstrapPath != "" && p != w.bootstrapPath {
			t.Fatalf("%s runs bootstrap %s, the others %s", name, p, w.bootstrapPath)
		}
		w.bootstrapPath = p
	}
	if w.bootstrapPath != "" {
		w.bootstrap = loadBootstrap(t, w.bootstrapPath)
	}
	return w
}

// hostPath returns the host file a service mounts at target.
func (w composeWorld) hostPath(t *testing.T, s composeService, target string) string {
	t.Helper()
	for _, m := range s.mounts() {
		if m.target == target {
			return filepath.Join(w.root, m.source)
		}
	}
	t.Fatalf("nothing is mounted at %q (volumes %v)", target, s.Volumes)
	return ""
}

func loadBootstrap(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := envoy.LoadBootstrap(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func splitPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return host, n
}

// TestCompose checks that docker-compose.yaml, the control plane's config
// and the Envoy bootstrap it mounts agree with each other and with the
// config defaults, since nothing here can run Docker.
func TestCompose(t *testing.T) {
	w := loadCompose(t)
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"the build context leaves out history, build output and local state", func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(w.root, ".dockerignore"))
			if err != nil {
				t.Fatal(err)
			}
			var patterns []string
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					patterns = append(patterns, strings.Trim(l, "/"))
				}
			}
			for _, want := range []string{".git", "bin", config.DefaultWatchDir, config.DefaultDataDir} {
				if !slices.Contains(patterns, strings.TrimPrefix(want, "./")) {
					t.Errorf(".dockerignore does not leave out %s (patterns %v)", want, patterns)
				}
			}
			for _, p := range patterns {
				for _, need := range []string{"go.mod", "go.sum", "cmd", "controlplane", "internal", "sdk"} {
					if ok, _ := filepath.Match(p, need); ok {
						t.Errorf(".dockerignore pattern %q leaves out %s, which the image build needs", p, need)
					}
				}
			}
		}},
		{"auth's demo settings are admitted with the key the instructions send", func(t *testing.T) {
			const key = "compose-demo-key"
			raw, err := os.ReadFile(filepath.Join(w.root, "docker-compose.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range []string{"cp envoy/compose/auth.yaml filters.d/", "x-api-key: " + key} {
				if !bytes.Contains(raw, []byte(step)) {
					t.Errorf("docker-compose.yaml's instructions lack %q", step)
				}
			}
			path := filepath.Join(w.root, "envoy", "compose", "auth.yaml")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			settings, err := config.ParseFilterSettings(path, config.Filter{Name: "auth"}, b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(settings.Config, []byte(sha256Hex(key))) {
				t.Errorf("%s does not hold the SHA-256 of %q: %s", path, key, settings.Config)
			}
			admitAuth(t, path, settings)
		}},
		{"every file it names exists", func(t *testing.T) {
			if w.cp.Build == nil {
				t.Fatalf("%s has no build", controlPlaneService)
			}
			dockerfile := filepath.Join(w.root, w.cp.Build.Context, w.cp.Build.Dockerfile)
			if _, err := os.Stat(dockerfile); err != nil {
				t.Error(err)
			}
			for name, s := range w.compose.Services {
				for _, m := range s.mounts() {
					switch {
					case !strings.HasPrefix(m.source, "."):
						if _, ok := w.compose.Volumes[m.source]; !ok {
							t.Errorf("%s mounts volume %q, which is not declared", name, m.source)
						}
					case name == controlPlaneService && m.target == w.cpConfig.WatchDir:
						// The watched directory is the user's (mkdir -p filters.d).
					default:
						if _, err := os.Stat(filepath.Join(w.root, m.source)); err != nil {
							t.Errorf("%s mounts %s: %v", name, m.source, err)
						}
					}
				}
				for _, d := range s.DependsOn {
					if _, ok := w.compose.Services[d]; !ok {
						t.Errorf("%s depends on %q, which is not a service", name, d)
					}
				}
			}
		}},
		{"the control plane's directories are mounted", func(t *testing.T) {
			byTarget := map[string]string{}
			for _, m := range w.cp.mounts() {
				byTarget[m.target] = m.source
			}
			if src := byTarget[w.cpConfig.WatchDir]; src != "./"+config.DefaultWatchDir {
				t.Errorf("watch_dir %s is mounted from %q, want ./%s", w.cpConfig.WatchDir, src, config.DefaultWatchDir)
			}
			if src := byTarget[w.cpConfig.DataDir]; src == "" || strings.HasPrefix(src, ".") {
				t.Errorf("data_dir %s is mounted from %q, want a named volume", w.cpConfig.DataDir, src)
			}
		}},
		{"control plane ports are the defaults and reachable by name", func(t *testing.T) {
			for field, pair := range map[string][2]string{
				"listen.xds":     {w.cpConfig.Listen.XDS, config.DefaultXDSAddr},
				"listen.modules": {w.cpConfig.Listen.Modules, config.DefaultModulesAddr},
				"listen.admin":   {w.cpConfig.Listen.Admin, config.DefaultAdminAddr},
			} {
				host, got := splitPort(t, pair[0])
				_, want := splitPort(t, pair[1])
				if got != want || host != "0.0.0.0" {
					t.Errorf("%s = %s, want 0.0.0.0 on the default port %d", field, pair[0], want)
				}
			}
			u, err := url.Parse(w.cpConfig.ModuleBaseURL)
			if err != nil {
				t.Fatal(err)
			}
			_, modPort := splitPort(t, w.cpConfig.Listen.Modules)
			if u.Hostname() != controlPlaneService || u.Port() != strconv.Itoa(modPort) {
				t.Errorf("module_base_url %s, want http://%s:%d", w.cpConfig.ModuleBaseURL, controlPlaneService, modPort)
			}
			_, adminPort := splitPort(t, w.cpConfig.Listen.Admin)
			if _, ok := w.cp.published()[adminPort]; !ok {
				t.Errorf("admin port %d is not published (ports %v)", adminPort, w.cp.Ports)
			}
			if w.cpConfig.AdminToken == "" {
				t.Error("the admin API binds beyond loopback without admin_token")
			}
		}},
		{"bootstrap reaches the control plane's xDS port by name", func(t *testing.T) {
			if w.bootstrap == nil {
				t.Fatal("no Envoy service mounts a bootstrap")
			}
			var xds *clusterv3.Cluster
			for _, c := range w.bootstrap.GetStaticResources().GetClusters() {
				if c.GetName() == "wasmfleet_xds" {
					xds = c
				}
			}
			if xds == nil {
				t.Fatal("bootstrap has no wasmfleet_xds cluster")
			}
			sa := xds.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			_, xdsPort := splitPort(t, w.cpConfig.Listen.XDS)
			if sa.GetAddress() != controlPlaneService || int(sa.GetPortValue()) != xdsPort {
				t.Errorf("wasmfleet_xds goes to %s:%d, want %s:%d", sa.GetAddress(), sa.GetPortValue(), controlPlaneService, xdsPort)
			}
			if xds.GetType() != clusterv3.Cluster_STRICT_DNS {
				t.Errorf("wasmfleet_xds is %v, want STRICT_DNS (a service name)", xds.GetType())
			}
			if ads := w.bootstrap.GetDynamicResources(); ads.GetLdsConfig().GetAds() == nil || ads.GetCdsConfig().GetAds() == nil {
				t.Error("bootstrap does not take LDS and CDS from ADS (managed mode)")
			}
		}},
		{"at least three Envoys, each its own node, new enough", func(t *testing.T) {
			if len(w.envoys) < 3 {
				t.Errorf("%d Envoy services, want at least 3", len(w.envoys))
			}
			nodes := map[string]string{}
			re := regexp.MustCompile(`^envoyproxy/envoy:v(\d+)\.(\d+)`)
			for name, s := range w.envoys {
				id := s.flag("--service-node")
				if id == "" {
					t.Errorf("%s has no --service-node", name)
				} else if other, dup := nodes[id]; dup {
					t.Errorf("%s and %s are both node %q", name, other, id)
				}
				nodes[id] = name
				m := re.FindStringSubmatch(s.Image)
				if m == nil {
					t.Errorf("%s: image %q has no vMAJOR.MINOR tag", name, s.Image)
					continue
				}
				major, _ := strconv.Atoi(m[1])
				minor, _ := strconv.Atoi(m[2])
				if major < minEnvoy[0] || major == minEnvoy[0] && minor < minEnvoy[1] {
					t.Errorf("%s: Envoy %d.%d cannot load Go wasip1 filters; want >= %d.%d", name, major, minor, minEnvoy[0], minEnvoy[1])
				}
			}
		}},
		{"Envoys publish the managed listener's port", func(t *testing.T) {
			for _, l := range w.cpConfig.Managed.Listeners {
				_, port := splitPort(t, l.Address)
				hosts := map[int]string{}
				for name, s := range w.envoys {
					host, ok := s.published()[port]
					if !ok {
						t.Errorf("%s does not publish listener %s's port %d (ports %v)", name, l.Name, port, s.Ports)
					} else if other, dup := hosts[host]; dup {
						t.Errorf("%s and %s both publish host port %d", name, other, host)
					}
					hosts[host] = name
				}
			}
		}},
		{"upstream clusters name services on the ports they listen on", func(t *testing.T) {
			for _, c := range w.cpConfig.Managed.Clusters {
				for _, ep := range c.Endpoints {
					host, port := splitPort(t, ep)
					s, ok := w.compose.Services[host]
					if !ok {
						t.Errorf("cluster %s endpoint %s is not a service", c.Name, ep)
						continue
					}
					if !slices.Contains(s.Command, fmt.Sprintf("-listen=:%d", port)) {
						t.Errorf("cluster %s endpoint %s: service %s does not listen on :%d (command %v)", c.Name, ep, host, port, s.Command)
					}
				}
			}
			if _, ok := w.compose.Services[upstreamService]; !ok {
				t.Errorf("no %q service", upstreamService)
			}
		}},
		{"the Dockerfile builds with the go.mod Go version", func(t *testing.T) {
			want := goVersion(t, filepath.Join(w.root, "go.mod"))
			b, err := os.ReadFile(filepath.Join(w.root, w.cp.Build.Context, w.cp.Build.Dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("FROM golang:"+want+" ")) {
				t.Errorf("Dockerfile does not build FROM golang:%s (go.mod's go directive)", want)
			}
			if !bytes.Contains(b, []byte("./cmd/wasmfleet")) {
				t.Error("Dockerfile does not build ./cmd/wasmfleet")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}

// goVersion is go.mod's go directive as MAJOR.MINOR.
func goVersion(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go "); ok {
			parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
			if len(parts) >= 2 {
				return parts[0] + "." + parts[1]
			}
		}
	}
	t.Fatalf("%s: no go directive", path)
	return ""
}

// admitAuth runs admission, trial run included, on the auth module with
// settings, as the control plane would when auth.wasm is dropped beside
// them.
func admitAuth(t *testing.T, file string, settings config.Filter) {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	adm := admission.New(admission.Config{TrialTimeout: trialTimeout, Runtime: rt, Log: zaptest.NewLogger(t)})
	if _, err := adm.Admit(ctx, admission.Request{File: file, Filter: "auth", Module: wasmtest.Module(t, "filters/auth"), Settings: settings}); err != nil {
		t.Errorf("auth with %s: %v", file, err)
	}
}
