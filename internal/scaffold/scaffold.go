// Package scaffold writes a new filter as a Go module of its own, outside
// wasmfleet's repository: a main package on wasmfleet's sdk, a test that
// runs its cases natively and as the compiled module (sdk/sdktest), its
// settings file, a manifest and a README (`wasmfleet new`).
//
// wasmfleet has no published release yet, so the new module reaches the sdk
// through a replace directive to a local checkout; the versions of the
// modules the sdk builds on are taken from that checkout's go.mod, so the
// new filter compiles against exactly what wasmfleet tests.
package scaffold

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
)

// wasmfleetModule is the module path of the checkout the scaffold points to.
const wasmfleetModule = "github.com/wasmfleet/wasmfleet"

// proxyWasmSDK is the module the generated filter imports beside the sdk.
const proxyWasmSDK = "github.com/proxy-wasm/proxy-wasm-go-sdk"

//go:embed template/*.tmpl
var templates embed.FS

// Options say what to create.
type Options struct {
	// Name is the filter's name: the module file is NAME.wasm, its settings
	// NAME.yaml, and wasmfleet's rules for filter names apply.
	Name string
	// Dir is the new module's directory; it must not exist or be empty.
	Dir string
	// Module is the Go module path; empty means example.com/NAME.
	Module string
	// Wasmfleet is the directory of a wasmfleet checkout (its go.mod
	// declares github.com/wasmfleet/wasmfleet).
	Wasmfleet string
}

// Create writes the new module and returns the paths it wrote. It writes no
// go.sum: run `go mod tidy` in Dir next (the CLI does).
func Create(opts Options) ([]string, error) {
	if !config.ValidFilterName(opts.Name) {
		return nil, fmt.Errorf("scaffold: filter name %q: want a lowercase letter, then up to 62 lowercase letters, digits, '-' or '_'", opts.Name)
	}
	if opts.Module == "" {
		opts.Module = "example.com/" + opts.Name
	}
	if strings.ContainsAny(opts.Module, " \t\n\"'`") {
		return nil, fmt.Errorf("scaffold: module path %q", opts.Module)
	}
	wf, err := filepath.Abs(opts.Wasmfleet)
	if err != nil {
		return nil, fmt.Errorf("scaffold: %w", err)
	}
	goVersion, sdkVersion, err := readCheckout(wf)
	if err != nil {
		return nil, err
	}
	if err := emptyDir(opts.Dir); err != nil {
		return nil, err
	}
	data := map[string]string{
		"Name": opts.Name, "Title": title(opts.Name), "Module": opts.Module,
		"GoVersion": goVersion, "ProxyWasmVersion": sdkVersion, "Wasmfleet": wf,
	}
	names, err := fs.Glob(templates, "template/*.tmpl")
	if err != nil {
		return nil, err
	}
	var written []string
	for _, name := range names {
		// [[ ]]: the Go templates hold composite literals ({{...}}).
		t, err := template.New(filepath.Base(name)).Delims("[[", "]]").ParseFS(templates, name)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("scaffold: %s: %w", name, err)
		}
		file := strings.TrimSuffix(filepath.Base(name), ".tmpl")
		if file == "settings.yaml" {
			file = opts.Name + ".yaml" // what the control plane reads beside NAME.wasm
		}
		path := filepath.Join(opts.Dir, file)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return written, fmt.Errorf("scaffold: %w", err)
		}
		written = append(written, path)
	}
	return written, nil
}

// readCheckout returns the Go version and the proxy-wasm-go-sdk version
// the wasmfleet checkout at dir requires, as the go command reads its
// go.mod.
func readCheckout(dir string) (goVersion, sdkVersion string, err error) {
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("scaffold: wasmfleet checkout %s: go mod edit -json: %w", dir, err)
	}
	var mod struct {
		Module  struct{ Path string }
		Go      string
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", "", fmt.Errorf("scaffold: %s: %w", dir, err)
	}
	if mod.Module.Path != wasmfleetModule {
		return "", "", fmt.Errorf("scaffold: %s is not a wasmfleet checkout: its module is %q, want %s", dir, mod.Module.Path, wasmfleetModule)
	}
	for _, r := range mod.Require {
		if r.Path == proxyWasmSDK {
			return mod.Go, r.Version, nil
		}
	}
	return "", "", fmt.Errorf("scaffold: %s/go.mod does not require %s", dir, proxyWasmSDK)
}

// FindCheckout returns the wasmfleet checkout that dir is in: the
// directory of the go.mod the go command finds from dir, when it is
// wasmfleet's.
func FindCheckout(dir string) (string, error) {
	cmd := exec.Command("go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scaffold: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("scaffold: %s is not in a wasmfleet checkout", dir)
	}
	checkout := filepath.Dir(gomod)
	if _, _, err := readCheckout(checkout); err != nil {
		return "", err
	}
	return checkout, nil
}

// emptyDir creates dir, or accepts it when it exists and is empty, so that
// nothing of the user's is ever overwritten.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("scaffold: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("scaffold: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("scaffold: %s is not empty", dir)
	}
	return nil
}

// title is name as a Go identifier's tail: "rate-limit" -> "RateLimit".
func title(name string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
