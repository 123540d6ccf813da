package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The OpenAPI schemas in testdata/openapi come from Kubernetes' OpenAPI v3
// documents that k8s.io/kube-openapi keeps as test data, at this version
// (the one go.mod pins). Those are the only copies of Kubernetes' schemas
// that reach this machine (through the Go module proxy); they are older
// than k8s.io/api (see testdata/openapi/README.md), which is why the
// strict decoding into the current types runs as well.
const kubeOpenAPIVersion = "v0.0.0-20260821135717-be32def86098"

var updateOpenAPI = flag.Bool("update-openapi", false,
	"rewrite testdata/openapi from k8s.io/kube-openapi@"+kubeOpenAPIVersion+" (go mod download)")

// openAPIDocs says where each trimmed schema document comes from and which
// kinds it must keep (with everything they refer to).
var openAPIDocs = []struct {
	file  string // in testdata/openapi
	src   string // in the kube-openapi module
	roots []string
}{
	{
		file: "api__v1.json",
		src:  "pkg/openapiconv/testdata_generated_from_k8s/v3_api.v1.json",
		roots: []string{
			"io.k8s.api.core.v1.ConfigMap", "io.k8s.api.core.v1.Namespace",
			"io.k8s.api.core.v1.PersistentVolumeClaim", "io.k8s.api.core.v1.Secret",
			"io.k8s.api.core.v1.Service", "io.k8s.api.core.v1.ServiceAccount",
		},
	},
	{
		file:  "apis__apps__v1.json",
		src:   "pkg/spec3/testdata/appsv1spec.json",
		roots: []string{"io.k8s.api.apps.v1.Deployment"},
	},
}

const schemaPrefix = "#/components/schemas/"

// TestUpdateOpenAPI rewrites testdata/openapi when run with -update-openapi:
// each document keeps the schemas reachable from its roots, without their
// descriptions (prose, and most of the size). IntOrString is rewritten to
// the oneOf that later schema generators emit (apis__apps__v1's source
// already has it): as "type: string" a port number would be refused.
func TestUpdateOpenAPI(t *testing.T) {
	if !*updateOpenAPI {
		t.Skip("run with -update-openapi to rewrite testdata/openapi")
	}
	out, err := exec.Command("go", "mod", "download", "-json", "k8s.io/kube-openapi@"+kubeOpenAPIVersion).Output()
	if err != nil {
		t.Fatalf("go mod download: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: no module directory in %s (%v)", out, err)
	}
	for _, d := range openAPIDocs {
		raw, err := os.ReadFile(filepath.Join(mod.Dir, d.src))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Components struct {
				Schemas map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", d.src, err)
		}
		kept := map[string]any{}
		var keep func(name string)
		keep = func(name string) {
			if _, ok := kept[name]; ok {
				return
			}
			s, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("%s: no schema %s", d.src, name)
			}
			s = dropDescriptions(s, false)
			if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString" {
				s = map[string]any{"format": "int-or-string", "oneOf": []any{
					map[string]any{"type": "integer"}, map[string]any{"type": "string"},
				}}
			}
			kept[name] = s
			for _, ref := range refs(s) {
				keep(strings.TrimPrefix(ref, schemaPrefix))
			}
		}
		for _, r := range d.roots {
			keep(r)
		}
		trimmed := map[string]any{
			"openapi": "3.0.0",
			"info": map[string]any{
				"title":   "Kubernetes (trimmed; see README.md)",
				"version": "k8s.io/kube-openapi@" + kubeOpenAPIVersion + " " + d.src,
			},
			"components": map[string]any{"schemas": kept},
		}
		b, err := json.MarshalIndent(trimmed, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "openapi", d.file), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d of %d schemas", d.file, len(kept), len(doc.Components.Schemas))
	}
}

// dropDescriptions removes "description" from every schema in v. Inside a
// "properties" map the keys are field names, where "description" would be
// a field, so it stays there.
func dropDescriptions(v any, inProperties bool) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range v {
			if _, isString := e.(string); k == "description" && isString && !inProperties {
				continue
			}
			m[k] = dropDescriptions(e, k == "properties" && !inProperties)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = dropDescriptions(e, false)
		}
		return l
	}
	return v
}

// refs lists every $ref in v.
func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok {
			out = append(out, r)
		}
		for _, e := range v {
			out = append(out, refs(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, refs(e)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var (
	schemasOnce sync.Once
	compiler    *jsonschema.Compiler
	schemasErr  error
)

// schemaFor compiles the OpenAPI schema named (io.k8s.api.apps.v1.Deployment)
// from the document that holds it.
func schemaFor(name string) (*jsonschema.Schema, error) {
	schemasOnce.Do(func() {
		compiler = jsonschema.NewCompiler()
		for _, d := range openAPIDocs {
			b, err := os.ReadFile(filepath.Join("testdata", "openapi", d.file))
			if err != nil {
				schemasErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				schemasErr = fmt.Errorf("testdata/openapi/%s: %w", d.file, err)
				return
			}
			if err := compiler.AddResource(docURL(d.file), doc); err != nil {
				schemasErr = err
				return
			}
		}
	})
	if schemasErr != nil {
		return nil, schemasErr
	}
	for _, d := range openAPIDocs {
		if slices.Contains(d.roots, name) {
			return compiler.Compile(docURL(d.file) + schemaPrefix + name)
		}
	}
	return nil, fmt.Errorf("no OpenAPI document in testdata/openapi keeps %s (add it to openAPIDocs and run -update-openapi)", name)
}

func docURL(file string) string { return "file:///testdata/openapi/" + file }

// validateSchema checks a document (as JSON) against the OpenAPI schema of
// its kind.
func validateSchema(schemaName string, js []byte) error {
	sch, err := schemaFor(schemaName)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	err = sch.Validate(inst)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	// The error's own text is a tree of every schema that failed; its
	// leaves name each field and what is wrong with it.
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		ptr := "/" + strings.Join(e.InstanceLocation, "/")
		msg := strings.TrimPrefix(e.Error(), "at '"+ptr+"': ")
		msgs = append(msgs, fieldPath(ptr)+": "+msg)
	}
	walk(ve)
	slices.Sort(msgs)
	return errors.New(strings.Join(slices.Compact(msgs), "; "))
}

// fieldPath writes a JSON pointer (/spec/ports/0/port) the way kubectl
// names fields (spec.ports[0].port).
func fieldPath(ptr string) string {
	var b strings.Builder
	for _, p := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if p == "" {
			continue
		}
		if _, err := strconv.Atoi(p); err == nil {
			fmt.Fprintf(&b, "[%s]", p)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.NewReplacer("~1", "/", "~0", "~").Replace(p))
	}
	if b.Len() == 0 {
		return "(document)"
	}
	return b.String()
}
