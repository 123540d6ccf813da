package snapshot

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// emptyModule is the smallest valid wasm module: magic and version only.
var emptyModule = []byte("\x00asm\x01\x00\x00\x00")

// typeOrder is the order types appear in golden files.
var typeOrder = []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.ExtensionConfigType}

// goldenCase is a testdata/*.yaml input: a wasmfleet config and one node's assignment.
type goldenCase struct {
	Config     json.RawMessage   `json:"config"`
	Assignment wtypes.Assignment `json:"assignment"`
}

// loadInput reads a golden input file into a builder input, through the same
// config parsing and defaulting as `wasmfleet serve`.
func loadInput(t testing.TB, path string) (Input, wtypes.Assignment) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var gc goldenCase
	if err := yaml.UnmarshalStrict(raw, &gc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cfg, err := config.Parse(gc.Config)
	if err != nil {
		t.Fatalf("%s: config: %v", path, err)
	}
	return inputFrom(cfg, map[wtypes.Digest][]byte{wtypes.DigestOf(emptyModule): emptyModule}), gc.Assignment
}

// inputFrom is how the control plane is expected to fill Input from its config.
func inputFrom(cfg config.Config, modules map[wtypes.Digest][]byte) Input {
	in := Input{Mode: cfg.Mode, Managed: cfg.Managed, ModuleURL: cfg.ModuleURL()}
	for _, f := range cfg.Filters {
		in.Filters = append(in.Filters, f.WithDefaults())
	}
	in.Inline = func(d wtypes.Digest) ([]byte, error) {
		if b, ok := modules[d]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("no module %s", d.Short())
	}
	return in
}

// render writes a snapshot as YAML, type by type, resources in the order built.
func render(t testing.TB, s *cache.Snapshot) []byte {
	t.Helper()
	type typeOut struct {
		Type      string            `json:"type"`
		Version   string            `json:"version"`
		Resources []json.RawMessage `json:"resources"`
	}
	var out []typeOut
	for _, typ := range typeOrder {
		items := s.GetResources(typ)
		if len(items) == 0 {
			continue
		}
		to := typeOut{Type: strings.TrimPrefix(typ, resource.APITypePrefix), Version: s.GetVersion(typ)}
		for _, name := range sortedNames(items) {
			b, err := protojson.Marshal(items[name])
			if err != nil {
				t.Fatalf("protojson %s: %v", name, err)
			}
			to.Resources = append(to.Resources, b)
		}
		out = append(out, to)
	}
	js, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// sortedNames orders resources so slots come in chain order (slot.10 after slot.9).
func sortedNames(items map[string]types.Resource) []string {
	names := make([]string, 0, len(items))
	for n := range items {
		names = append(names, n)
	}
	key := func(n string) string {
		var p int
		if _, err := fmt.Sscanf(n, "wasmfleet.slot.%d", &p); err == nil {
			return fmt.Sprintf("wasmfleet.slot.%04d%s", p, strings.TrimPrefix(n, fmt.Sprintf("wasmfleet.slot.%d", p)))
		}
		return n
	}
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && key(names[j]) < key(names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

// validate runs Envoy's own proto validation on every resource and
// go-control-plane's consistency check on the snapshot.
func validate(t testing.TB, s *cache.Snapshot) {
	t.Helper()
	for _, typ := range typeOrder {
		for name, r := range s.GetResources(typ) {
			v, ok := r.(interface{ ValidateAll() error })
			if !ok {
				t.Fatalf("%s: %T has no ValidateAll", name, r)
			}
			if err := v.ValidateAll(); err != nil {
				t.Errorf("%s: ValidateAll: %v", name, err)
			}
		}
	}
	if err := s.Consistent(); err != nil {
		t.Errorf("Consistent: %v", err)
	}
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, p := range inputs {
		if !strings.HasSuffix(p, ".golden.yaml") {
			cases = append(cases, p)
		}
	}
	if len(cases) < 6 {
		t.Fatalf("found %d golden inputs, want at least 6", len(cases))
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			in, a := loadInput(t, path)
			s, err := buildOne(NewBuilder(), in, a)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			validate(t, s)
			got := render(t, s)
			golden := strings.TrimSuffix(path, ".yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the build; run go test -update and review the diff.\ngot:\n%s", golden, got)
			}
		})
	}
}

// TestVersionsStable: building the same input again gives the same versions,
// even where a resource holds a map (vm.env's environment_variables, eight
// of them here), which proto writes in random order unless told otherwise.
// A version that changed by itself would re-send every node its config.
func TestVersionsStable(t *testing.T) {
	in, a := loadInput(t, "testdata/vm-settings.yaml")
	for i := range in.Filters {
		for k := range 8 {
			if in.Filters[i].VM.Env == nil {
				in.Filters[i].VM.Env = map[string]string{}
			}
			in.Filters[i].VM.Env[fmt.Sprintf("VAR%d", k)] = fmt.Sprint(k)
		}
	}
	first, err := buildOne(NewBuilder(), in, a)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		s, err := buildOne(NewBuilder(), in, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range typeOrder {
			if got, want := s.GetVersion(typ), first.GetVersion(typ); got != want {
				t.Fatalf("%s version %s, then %s for the same input", typ, want, got)
			}
		}
	}
}
