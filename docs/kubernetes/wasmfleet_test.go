package kubernetes

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/envoy"
)

// TestControlPlaneConfig parses the wasmfleet.yaml the control plane reads,
// from the ConfigMap mounted where --config points, with the project's own
// config package, and checks that its paths and ports are the ones the
// Deployment mounts and exposes, and that its admin token is the Secret's.
func TestControlPlaneConfig(t *testing.T) {
	s := newSet(t)
	d, c, _, cmName, text := s.fileFlag(t, "wasmfleet", "--config")
	pod := &d.Spec.Template.Spec
	where := fmt.Sprintf("wasmfleet-config.yaml: ConfigMap %s: wasmfleet.yaml", cmName)
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	// The token is the Secret's, never the ConfigMap's.
	if cfg.AdminToken != "" {
		t.Errorf("%s: sets admin_token, which belongs in the Secret wasmfleet-admin-token (admin_token_file)", where)
	}
	if dir, ok := mountOf(pod, c, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "wasmfleet-admin-token"
	}); !ok || cfg.AdminTokenFile != dir+"/token" {
		t.Errorf("%s: admin_token_file %q, but Secret wasmfleet-admin-token's key token is mounted at %q", where, cfg.AdminTokenFile, dir+"/token")
	}

	if got, ok := mountOf(pod, c, func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }); !ok || got != cfg.DataDir {
		t.Errorf("%s: data_dir %q, but the PersistentVolumeClaim is mounted at %q", where, cfg.DataDir, got)
	}
	if got, ok := mountOf(pod, c, func(v corev1.Volume) bool {
		return v.ConfigMap != nil && v.ConfigMap.Name == "wasmfleet-filters"
	}); !ok || got != cfg.WatchDir {
		t.Errorf("%s: watch_dir %q, but ConfigMap wasmfleet-filters is mounted at %q", where, cfg.WatchDir, got)
	}
	for field, addr := range map[string]string{"xds": cfg.Listen.XDS, "modules": cfg.Listen.Modules, "admin": cfg.Listen.Admin} {
		host, port, _ := net.SplitHostPort(addr)
		if host != "0.0.0.0" {
			t.Errorf("%s: listen.%s %q: a pod is reached on its pod IP, so bind 0.0.0.0", where, field, addr)
		}
		if p, ok := containerPort([]corev1.Container{*c}, field); !ok || strconv.Itoa(int(p.ContainerPort)) != port {
			t.Errorf("%s: listen.%s port %s, but container port %q is %d", where, field, port, field, p.ContainerPort)
		}
	}
	if host, port, ok := s.serviceFor(d, "modules"); !ok {
		t.Errorf("%s: module_base_url %q: no Service reaches container port modules", where, cfg.ModuleBaseURL)
	} else if u, err := url.Parse(cfg.ModuleBaseURL); err != nil || u.Host != net.JoinHostPort(host, strconv.Itoa(int(port))) {
		t.Errorf("%s: module_base_url %q, want http://%s:%d (the Service that reaches the module server)", where, cfg.ModuleBaseURL, host, port)
	}

	// The watched directory: settings files only, each valid for its filter.
	filters := s.configMaps["wasmfleet-filters"]
	size := 0
	for key, data := range filters.Data {
		size += len(key) + len(data)
		file := "wasmfleet-filters.yaml: ConfigMap wasmfleet-filters: " + key
		name, ok := strings.CutSuffix(key, ".yaml")
		if !ok {
			t.Errorf("%s: only NAME.yaml settings belong here (modules come from a registry: a ConfigMap holds at most 1 MiB)", file)
			continue
		}
		base := config.Filter{Name: name}
		for _, f := range cfg.Filters {
			if f.Name == name {
				base = f
			}
		}
		f, err := config.ParseFilterSettings(file, base, []byte(data))
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if f.Source != base.Source {
			t.Errorf("%s: source %q: only wasmfleet.yaml sets a filter's source (%q there)", file, f.Source, base.Source)
		}
		if !strings.HasPrefix(base.Source, "oci://") {
			t.Errorf("%s: filter %s has no oci:// source in wasmfleet.yaml: its module cannot come from this ConfigMap", file, name)
		}
	}
	if size >= 1<<20 {
		t.Errorf("wasmfleet-filters.yaml: ConfigMap wasmfleet-filters holds %d bytes; the API server refuses more than 1 MiB", size)
	}
}

// fileFlag finds the Deployment and container named name, the file its
// flag names, and that file's text in the ConfigMap mounted there; it fails
// t, naming the manifest, when any of them is missing.
func (s *set) fileFlag(t *testing.T, name, flag string) (d *appsv1.Deployment, c *corev1.Container, path, cmName, text string) {
	t.Helper()
	d, c = s.find(t, name)
	o := s.where[d]
	path, ok := flagValue(c.Args, flag)
	if !ok {
		t.Fatalf("%s: container %s: args %q have no %s", o, name, c.Args, flag)
	}
	cmName, text, ok = s.configMapFile(&d.Spec.Template.Spec, c, path)
	if !ok {
		t.Fatalf("%s: container %s: %s %s is no key of a ConfigMap mounted there", o, name, flag, path)
	}
	return d, c, path, cmName, text
}

// TestEnvoyBootstrap parses the Envoys' bootstrap with the project's
// loader (strict, and the Envoy API's own validation) and checks that it
// reaches the control plane's xDS port through its Service and that each
// pod has its own node id.
func TestEnvoyBootstrap(t *testing.T) {
	s := newSet(t)
	d, c, path, cmName, text := s.fileFlag(t, "envoy", "-c")
	o := s.where[d]
	where := fmt.Sprintf("envoy-bootstrap.yaml: ConfigMap %s: %s", cmName, filepath.Base(path))
	file := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := envoy.LoadBootstrap(file)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}

	cp, _ := s.find(t, "wasmfleet")
	host, port, ok := s.serviceFor(cp, "xds")
	if !ok {
		t.Fatal("no Service reaches the control plane's xds port")
	}
	ads := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()
	if len(ads) != 1 {
		t.Fatalf("%s: dynamic_resources.ads_config has %d gRPC services, want 1", where, len(ads))
	}
	xds := ads[0].GetEnvoyGrpc().GetClusterName()
	found := false
	for _, cl := range b.GetStaticResources().GetClusters() {
		if cl.GetName() != xds {
			continue
		}
		found = true
		sa := cl.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if sa.GetAddress() != host || sa.GetPortValue() != uint32(port) {
			t.Errorf("%s: cluster %s: address %s:%d, want the control plane's xDS Service %s:%d", where, xds, sa.GetAddress(), sa.GetPortValue(), host, port)
		}
		if cl.GetType().String() != "STRICT_DNS" {
			t.Errorf("%s: cluster %s: type %s, want STRICT_DNS (a Service name, resolved again when the control plane's pod moves)", where, xds, cl.GetType())
		}
	}
	if !found {
		t.Errorf("%s: ads_config names cluster %q, which static_resources does not define", where, xds)
	}

	// node.id from the pod's name: --service-node $(POD_NAME), with
	// POD_NAME from the Downward API.
	node, ok := flagValue(c.Args, "--service-node")
	if !ok || !strings.HasPrefix(node, "$(") || !strings.HasSuffix(node, ")") {
		t.Fatalf("%s: container envoy: --service-node %q, want $(VAR) from the pod's name", o, node)
	}
	env := strings.TrimSuffix(strings.TrimPrefix(node, "$("), ")")
	fromName := false
	for _, e := range c.Env {
		if e.Name == env && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			fromName = true
		}
	}
	if !fromName {
		t.Errorf("%s: container envoy: env %s is not the pod's metadata.name (Downward API), so nodes would share an id", o, env)
	}
	checkListenerPort(t, s, c, o)
}

// checkListenerPort checks that Envoy's container port "http" is the port of
// the listener wasmfleet.yaml gives the fleet.
func checkListenerPort(t *testing.T, s *set, c *corev1.Container, o *object) {
	t.Helper()
	cm := s.configMaps["wasmfleet-config"]
	cfg, err := config.Parse([]byte(cm.Data["wasmfleet.yaml"]))
	if err != nil {
		t.Fatalf("wasmfleet-config.yaml: ConfigMap wasmfleet-config: wasmfleet.yaml: %v", err)
	}
	if len(cfg.Managed.Listeners) == 0 {
		t.Fatal("wasmfleet-config.yaml: ConfigMap wasmfleet-config: wasmfleet.yaml: no managed listener for the Envoys")
	}
	_, port, _ := net.SplitHostPort(cfg.Managed.Listeners[0].Address)
	if p, ok := containerPort([]corev1.Container{*c}, "http"); !ok || strconv.Itoa(int(p.ContainerPort)) != port {
		t.Errorf("%s: container envoy: port http is %d, but wasmfleet.yaml's listener %s listens on %s", o, p.ContainerPort, cfg.Managed.Listeners[0].Name, port)
	}
}
