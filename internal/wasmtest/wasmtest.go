// Package wasmtest gives tests real compiled proxy-wasm modules: it builds a
// Go main package of this module to .wasm once per test binary and hands out
// the bytes. Building takes seconds, so every test in a binary shares one build
// per package. RunTests runs a package's own tests compiled to wasip1, for
// guest code that is not a whole filter.
package wasmtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmbuild"
)

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

// Module returns the compiled module for pkg, a path relative to the module
// root such as "filters/auth" or "controlplane/wasmhost/testdata/guests/echo",
// or the absolute directory of a main package in any module (a filter in a
// module of its own, tested with sdk/sdktest). It fails the test if the
// build fails.
func Module(tb testing.TB, pkg string) []byte {
	tb.Helper()
	mu.Lock()
	b, ok := builds[pkg]
	if !ok {
		b = &build{}
		builds[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.wasm, b.err = compile(pkg) })
	if b.err != nil {
		tb.Fatalf("wasmtest: %v", b.err)
	}
	return b.wasm
}

// File writes the compiled module for pkg into dir under name and returns the path.
func File(tb testing.TB, pkg, dir, name string) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, Module(tb, pkg), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func compile(pkg string) ([]byte, error) {
	root, target := Root(), "./"+pkg
	if filepath.IsAbs(pkg) {
		// Built from its own directory, so that its own go.mod applies.
		root, target = pkg, "."
	}
	tmp, err := os.MkdirTemp("", "wasmtest-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "module.wasm")
	if err := wasmbuild.Build(context.Background(), root, target, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// Root is the repository root (the directory holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
