package scaffold

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestNewFilterBuildsTestsAndIsAdmitted does what a filter author outside
// the repository does: scaffold a module in an empty directory, go mod
// tidy, go vet, go test (its cases natively and compiled), build the module
// with the README's command, and has wasmfleet's admission, trial run
// included, accept it with the settings file written beside it.
func TestNewFilterBuildsTestsAndIsAdmitted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rate-tag")
	files, err := Create(Options{Name: "rate-tag", Dir: dir, Module: "example.com/team/ratetag", Wasmfleet: wasmtest.Root()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d files", len(files))
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("mod", "tidy")
	run("vet", "./...")
	run("test", "-count=1", "./...")

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const build = "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o rate-tag.wasm ."
	if !strings.Contains(string(readme), build) {
		t.Fatalf("README.md does not show %q", build)
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", "rate-tag.wasm", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	module, err := os.ReadFile(filepath.Join(dir, "rate-tag.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	settingsFile := filepath.Join(dir, "rate-tag.yaml")
	b, err := os.ReadFile(settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := config.ParseFilterSettings(settingsFile, config.Filter{Name: "rate-tag"}, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	adm := admission.New(admission.Config{TrialTimeout: time.Minute, Runtime: rt, Log: zaptest.NewLogger(t)})
	if _, err := adm.Admit(ctx, admission.Request{File: "rate-tag.wasm", Filter: "rate-tag", Module: module, Settings: settings}); err != nil {
		t.Fatalf("admission: %v", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"a name wasmfleet would refuse", Options{Name: "Auth", Dir: t.TempDir(), Wasmfleet: wasmtest.Root()}, `filter name "Auth"`},
		{"a directory with files in it", Options{Name: "tag", Dir: full, Wasmfleet: wasmtest.Root()}, "is not empty"},
		{"a checkout that is not wasmfleet", Options{Name: "tag", Dir: t.TempDir(), Wasmfleet: filepath.Join(wasmtest.Root(), "internal", "scaffold", "testdata", "othermodule")}, "not a wasmfleet checkout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Create(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create: %v, want an error with %q", err, tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir(full); len(entries) != 1 {
		t.Errorf("the non-empty directory was changed: %d entries", len(entries))
	}
}
