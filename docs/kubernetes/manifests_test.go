package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// dir is where the manifests are read from: this directory, or a copy
// being edited (go test ./docs/kubernetes/ -args -dir /tmp/copy).
var dir = flag.String("dir", ".", "directory holding kustomization.yaml and the manifests")

// kind is what the test knows about one apiVersion and kind: the typed
// struct it decodes into and the OpenAPI schema that describes it.
type kind struct {
	schema string
	new    func() any
}

// kinds lists every kind the manifests may use. A kind missing here fails
// the test, so a new kind is decoded and validated like the others.
var kinds = map[string]kind{
	"v1/ConfigMap":             {"io.k8s.api.core.v1.ConfigMap", func() any { return new(corev1.ConfigMap) }},
	"v1/Namespace":             {"io.k8s.api.core.v1.Namespace", func() any { return new(corev1.Namespace) }},
	"v1/PersistentVolumeClaim": {"io.k8s.api.core.v1.PersistentVolumeClaim", func() any { return new(corev1.PersistentVolumeClaim) }},
	"v1/Secret":                {"io.k8s.api.core.v1.Secret", func() any { return new(corev1.Secret) }},
	"v1/Service":               {"io.k8s.api.core.v1.Service", func() any { return new(corev1.Service) }},
	"v1/ServiceAccount":        {"io.k8s.api.core.v1.ServiceAccount", func() any { return new(corev1.ServiceAccount) }},
	"apps/v1/Deployment":       {"io.k8s.api.apps.v1.Deployment", func() any { return new(appsv1.Deployment) }},
}

// object is one YAML document of a manifest file.
type object struct {
	file  string // base name
	index int    // document in the file, from 0
	kind  string // "Deployment"
	key   string // "apps/v1/Deployment"
	meta  metav1.ObjectMeta
	json  []byte
	typed any // *appsv1.Deployment, ...
}

// String names the object in messages: file, document, kind and name.
func (o *object) String() string {
	doc := ""
	if o.index > 0 {
		doc = fmt.Sprintf(" (document %d)", o.index+1)
	}
	return fmt.Sprintf("%s%s: %s %s", o.file, doc, o.kind, o.meta.Name)
}

// kustomization is the part of kustomize's Kustomization these manifests
// use. Decoded strictly: a field kustomize has but this test does not know
// (namespace:, patches:, generators) would change what is applied without
// the test seeing it.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// load reads kustomization.yaml and every document of the manifests it
// lists, decoding each strictly into its typed struct. It fails the test on
// anything it cannot decode.
func load(t *testing.T) []*object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(*dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(*dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			onDisk = append(onDisk, base)
		}
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(listed, onDisk) {
		t.Fatalf("kustomization.yaml: resources %v, but the directory holds %v (kubectl apply -k would skip or miss a file)", listed, onDisk)
	}

	var objs []*object
	for _, file := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(*dir, file))
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			o, err := decode(file, i, doc)
			if err != nil {
				t.Error(err)
				continue
			}
			if o != nil {
				objs = append(objs, o)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return objs
}

// decode turns one YAML document into an object, or nil for a document of
// comments only. Unknown fields, duplicate keys, fields in the wrong case
// and values of the wrong type are errors, as the API server's strict field
// validation makes them.
func decode(file string, index int, doc []byte) (*object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: document %d: %w", file, index+1, err)
	}
	if string(bytes.TrimSpace(js)) == "null" {
		return nil, nil
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, fmt.Errorf("%s: document %d: %w", file, index+1, err)
	}
	o := &object{file: file, index: index, kind: tm.Kind, key: tm.APIVersion + "/" + tm.Kind, json: js}
	k, ok := kinds[o.key]
	if !ok {
		return nil, fmt.Errorf("%s: document %d: apiVersion %q kind %q is not one the test knows (add it to kinds)", file, index+1, tm.APIVersion, tm.Kind)
	}
	o.typed = k.new()
	strict, err := sigsjson.UnmarshalStrict(js, o.typed, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	if err != nil {
		return nil, fmt.Errorf("%s: document %d: %s: %w", file, index+1, tm.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: document %d: %s: %w", file, index+1, tm.Kind, errors.Join(strict...))
	}
	o.meta = *o.typed.(metav1.ObjectMetaAccessor).GetObjectMeta().(*metav1.ObjectMeta)
	return o, nil
}

// TestDecodeStrictly decodes every document of every manifest into the
// k8s.io/api type of its kind (load fails the test otherwise) and checks
// the metadata every object needs.
func TestDecodeStrictly(t *testing.T) {
	objs := load(t)
	seen := map[string]*object{}
	for _, o := range objs {
		if o.meta.Name == "" {
			t.Errorf("%s: metadata.name is empty", o)
		}
		id := o.key + "/" + o.meta.Name
		if prev, ok := seen[id]; ok {
			t.Errorf("%s: %s %s is also defined in %s", o, o.kind, o.meta.Name, prev)
		}
		seen[id] = o
	}
}

// TestOpenAPI validates every document against the Kubernetes OpenAPI
// schema of its kind: required fields, types and enums that a Go struct
// does not hold.
func TestOpenAPI(t *testing.T) {
	for _, o := range load(t) {
		if err := validateSchema(kinds[o.key].schema, o.json); err != nil {
			t.Errorf("%s: OpenAPI schema %s: %v", o, kinds[o.key].schema, err)
		}
	}
}

// set is the manifests by kind, for the cross-reference checks.
type set struct {
	objs       []*object
	namespace  string
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	pvcs       map[string]*corev1.PersistentVolumeClaim
	accounts   map[string]bool
	services   []*corev1.Service
	deploys    []*appsv1.Deployment
	where      map[any]*object // typed object -> its document, for messages
}

func newSet(t *testing.T) *set {
	t.Helper()
	s := &set{
		objs:       load(t),
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
		pvcs:       map[string]*corev1.PersistentVolumeClaim{},
		accounts:   map[string]bool{},
		where:      map[any]*object{},
	}
	for _, o := range s.objs {
		s.where[o.typed] = o
		switch v := o.typed.(type) {
		case *corev1.Namespace:
			if s.namespace != "" {
				t.Fatalf("%s: a second Namespace (%s is the first)", o, s.namespace)
			}
			s.namespace = v.Name
		case *corev1.ConfigMap:
			s.configMaps[v.Name] = v
		case *corev1.Secret:
			s.secrets[v.Name] = v
		case *corev1.PersistentVolumeClaim:
			s.pvcs[v.Name] = v
		case *corev1.ServiceAccount:
			s.accounts[v.Name] = true
		case *corev1.Service:
			s.services = append(s.services, v)
		case *appsv1.Deployment:
			s.deploys = append(s.deploys, v)
		}
	}
	if s.namespace == "" {
		t.Fatal("no Namespace among the manifests")
	}
	return s
}

// externalSecrets are Secrets the manifests use but do not hold, because
// a secret value does not belong in a repository: the operator creates
// them, with the command the README gives (TestReferences checks that it
// does). Name -> the keys the pods read.
var externalSecrets = map[string][]string{
	"wasmfleet-admin-token": {"token"},
}

// TestReferences checks what the schemas cannot: that every name one object
// uses for another exists, that Services select pods and name their ports,
// and that probes name container ports.
func TestReferences(t *testing.T) {
	s := newSet(t)
	for _, o := range s.objs {
		if o.kind != "Namespace" && o.meta.Namespace != s.namespace {
			t.Errorf("%s: metadata.namespace %q, want %q (the Namespace in these manifests)", o, o.meta.Namespace, s.namespace)
		}
	}
	for _, d := range s.deploys {
		o := s.where[d]
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			t.Errorf("%s: spec.selector: %v", o, err)
		} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: spec.selector %v does not match spec.template.metadata.labels %v", o, sel, d.Spec.Template.Labels)
		}
		s.checkPod(t, o, &d.Spec.Template.Spec)
	}
	for _, svc := range s.services {
		o := s.where[svc]
		pods := s.selected(svc)
		if len(pods) == 0 {
			t.Errorf("%s: spec.selector %v matches the pods of no Deployment", o, svc.Spec.Selector)
			continue
		}
		for i, p := range svc.Spec.Ports {
			for _, d := range pods {
				if _, ok := containerPort(d.Spec.Template.Spec.Containers, p.TargetPort.String()); !ok {
					t.Errorf("%s: spec.ports[%d].targetPort %q is not a port of a container of Deployment %s", o, i, p.TargetPort.String(), d.Name)
				}
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, keys := range externalSecrets {
		for _, k := range keys {
			cmd := fmt.Sprintf("kubectl -n %s create secret generic %s --from-literal=%s=", s.namespace, name, k)
			if !bytes.Contains(readme, []byte(cmd)) {
				t.Errorf("README.md does not tell how to create Secret %s (want a %q command)", name, cmd)
			}
		}
	}
}

// checkPod checks the names a pod template uses.
func (s *set) checkPod(t *testing.T, o *object, pod *corev1.PodSpec) {
	t.Helper()
	if pod.ServiceAccountName != "" && !s.accounts[pod.ServiceAccountName] {
		t.Errorf("%s: spec.template.spec.serviceAccountName %q: no such ServiceAccount", o, pod.ServiceAccountName)
	}
	mounted := map[string]bool{}
	containers := slices.Concat(pod.InitContainers, pod.Containers)
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			mounted[m.Name] = true
			if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
				t.Errorf("%s: container %s: volumeMounts %q: no such volume", o, c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil {
				s.checkKey(t, o, "container "+c.Name+": env "+e.Name, "ConfigMap", r.ConfigMapKeyRef.Name, r.ConfigMapKeyRef.Key)
			}
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				s.checkKey(t, o, "container "+c.Name+": env "+e.Name, "Secret", r.SecretKeyRef.Name, r.SecretKeyRef.Key)
			}
		}
		for probe, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
			if p == nil {
				continue
			}
			var port string
			switch {
			case p.HTTPGet != nil:
				port = p.HTTPGet.Port.String()
			case p.TCPSocket != nil:
				port = p.TCPSocket.Port.String()
			case p.GRPC != nil:
				port = fmt.Sprint(p.GRPC.Port)
			default:
				continue
			}
			if _, ok := containerPort([]corev1.Container{c}, port); !ok {
				t.Errorf("%s: container %s: %s port %q is not one of the container's ports", o, c.Name, probe, port)
			}
		}
	}
	for _, v := range pod.Volumes {
		if !mounted[v.Name] {
			t.Errorf("%s: volume %q is mounted by no container", o, v.Name)
		}
		field := "volume " + v.Name
		switch {
		case v.ConfigMap != nil:
			s.checkKey(t, o, field, "ConfigMap", v.ConfigMap.Name, "")
			for _, it := range v.ConfigMap.Items {
				s.checkKey(t, o, field, "ConfigMap", v.ConfigMap.Name, it.Key)
			}
		case v.Secret != nil:
			s.checkKey(t, o, field, "Secret", v.Secret.SecretName, "")
			for _, it := range v.Secret.Items {
				s.checkKey(t, o, field, "Secret", v.Secret.SecretName, it.Key)
			}
		case v.PersistentVolumeClaim != nil:
			if _, ok := s.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("%s: %s: PersistentVolumeClaim %q: not in these manifests", o, field, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
}

// checkKey checks that a ConfigMap or Secret exists (and has key, if set).
func (s *set) checkKey(t *testing.T, o *object, field, kind, name, key string) {
	t.Helper()
	var keys []string
	switch kind {
	case "ConfigMap":
		cm, ok := s.configMaps[name]
		if !ok {
			t.Errorf("%s: %s: ConfigMap %q: not in these manifests", o, field, name)
			return
		}
		for k := range cm.Data {
			keys = append(keys, k)
		}
	case "Secret":
		if sec, ok := s.secrets[name]; ok {
			for k := range sec.Data {
				keys = append(keys, k)
			}
			for k := range sec.StringData {
				keys = append(keys, k)
			}
		} else if ext, ok := externalSecrets[name]; ok {
			keys = ext
		} else {
			t.Errorf("%s: %s: Secret %q: not in these manifests nor one the README has the operator create", o, field, name)
			return
		}
	}
	if key != "" && !slices.Contains(keys, key) {
		t.Errorf("%s: %s: %s %q has no key %q", o, field, kind, name, key)
	}
}

// selected returns the Deployments whose pods a Service selects.
func (s *set) selected(svc *corev1.Service) []*appsv1.Deployment {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range s.deploys {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

// containerPort finds a port by name or number among containers' ports.
func containerPort(cs []corev1.Container, port string) (corev1.ContainerPort, bool) {
	for _, c := range cs {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return p, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

// mountOf returns where container c mounts the volume that pick chooses.
func mountOf(pod *corev1.PodSpec, c *corev1.Container, pick func(corev1.Volume) bool) (string, bool) {
	for _, v := range pod.Volumes {
		if !pick(v) {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				return m.MountPath, true
			}
		}
	}
	return "", false
}

// find returns the Deployment holding a container named name, and it.
func (s *set) find(t *testing.T, name string) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	for _, d := range s.deploys {
		for i := range d.Spec.Template.Spec.Containers {
			if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
				return d, c
			}
		}
	}
	t.Fatalf("no Deployment has a container named %q", name)
	return nil, nil
}

// flagValue returns the value after flag in args.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// serviceFor returns the Service port that reaches containerPortName on
// the pods of d, and the Service's cluster DNS name.
func (s *set) serviceFor(d *appsv1.Deployment, containerPortName string) (host string, port int32, ok bool) {
	for _, svc := range s.services {
		if !slices.Contains(s.selected(svc), d) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() == containerPortName {
				return fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace), p.Port, true
			}
		}
	}
	return "", 0, false
}

// configMapFile finds the ConfigMap that c sees at path (a key of a
// ConfigMap mounted at path's directory) and returns its name and the key's
// value.
func (s *set) configMapFile(pod *corev1.PodSpec, c *corev1.Container, path string) (name, data string, ok bool) {
	for _, v := range pod.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name && m.MountPath == filepath.Dir(path) {
				cm := s.configMaps[v.ConfigMap.Name]
				if cm == nil {
					return v.ConfigMap.Name, "", false
				}
				data, ok := cm.Data[filepath.Base(path)]
				return cm.Name, data, ok
			}
		}
	}
	return "", "", false
}
