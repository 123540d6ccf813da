package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestValidateOutput: validate checks a real module and a file that is no
// module, and prints both as a table or as a list for scripts; one rejected
// module makes the exit code 1.
func TestValidateOutput(t *testing.T) {
	module := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "hello.wasm"), filepath.Join(dir, "junk.wasm")
	if err := os.WriteFile(good, module, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The trial run of a 2 MB module in the interpreter takes seconds under
	// -race on shared cores: more than the default limit.
	cfg := filepath.Join(dir, "wasmfleet.yaml")
	if err := os.WriteFile(cfg, []byte("limits:\n  trial_timeout: 2m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := wasmfleet(t, "validate", "-c", cfg, good, bad, "-o", "json")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d: %s", code, exitFailed, stderr)
	}
	var got []validation
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v in\n%s", err, stdout)
	}
	if len(got) != 2 || !got[0].Admitted || got[0].SHA256 != types.DigestOf(module) || len(got[0].Checks) == 0 ||
		got[1].Admitted || got[1].Error == "" || got[1].Filter != "junk" {
		t.Fatalf("validate -o json = %+v", got)
	}
	code, stdout, _ = wasmfleet(t, "validate", "-c", cfg, good)
	if code != exitOK || !strings.Contains(stdout, "filter hello  sha256:"+string(types.DigestOf(module))) || !strings.HasSuffix(stdout, "admitted\n\n") {
		t.Fatalf("validate (exit %d):\n%s", code, stdout)
	}
}

// TestBuildOutDir: build's directory is --out-dir; -o DIR, from when -o
// was the directory, still works with a warning, and is a failure of the
// build (exit 1) here, not a usage error, because the filter is missing.
func TestBuildOutDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nofilter")
	tests := []struct {
		name   string
		args   []string
		want   int
		warned bool
	}{
		{name: "legacy -o DIR", args: []string{"build", "-o", t.TempDir(), missing}, want: exitFailed, warned: true},
		{name: "--out-dir and -o json", args: []string{"build", "--out-dir", t.TempDir(), "-o", "json", missing}, want: exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := wasmfleet(t, tt.args...)
			if code != tt.want || strings.Contains(stderr, "deprecated: use --out-dir") != tt.warned {
				t.Fatalf("exit %d, stderr %q; want exit %d, warned %v", code, stderr, tt.want, tt.warned)
			}
		})
	}
}

// TestListenAddr: serve's --admin takes what the clients' --admin takes.
func TestListenAddr(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "127.0.0.1:18002", want: "127.0.0.1:18002"},
		{in: "http://0.0.0.0:9000", want: "0.0.0.0:9000"},
		{in: "http://[::1]:9000/", want: "[::1]:9000"},
		{in: "https://0.0.0.0:9000", wantErr: "plain HTTP"},
		{in: "http://0.0.0.0:9000/admin", wantErr: "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := listenAddr(tt.in)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("listenAddr(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
