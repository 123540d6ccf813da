// Package wasmbuild compiles a Go main package into a proxy-wasm module with
// the standard Go toolchain (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared: a
// WASI reactor, which is what Envoy >= 1.33 loads). TinyGo is not used: see
// ../../shared/FACTS.md and the README.
package wasmbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Build compiles the main package pkg (an import path or a ./relative
// directory, resolved from dir; empty dir is the current one) to out.
func Build(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("wasmbuild: %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	return nil
}
