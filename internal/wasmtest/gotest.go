package wasmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RunTests runs tests of package pkg (a path relative to the module root,
// such as "filters/auth/internal/pubkey") compiled to GOOS=wasip1
// GOARCH=wasm, as Go's own wasip1 port runs its tests: `go test -c` builds
// the test binary (once per test binary, as Module builds a filter) and the
// wazero CLI of the wazero version in go.mod runs it with its optimizing
// compiler, the runtime proxies run filters on here, with -test.run set to
// run. The package's directory is mounted read-only as the guest's working
// directory, so testdata/ resolves as it does natively. The guest's output
// is logged; a failing guest test fails tb with that output.
//
// The CLI runs in a process of its own because under -race wazero's
// compiler takes ten times longer (about a minute for a test binary).
//
// It is for code that filters run in their guest (digests, signature
// checks, parsers): the native run gives readable failures, this one proves
// the same code right on the target. The test that calls it must not be
// compiled into the guest: give its file a `//go:build !wasip1` line.
func RunTests(tb testing.TB, pkg, run string) {
	tb.Helper()
	wasm := filepath.Join(tb.TempDir(), filepath.Base(pkg)+".test.wasm")
	if err := os.WriteFile(wasm, testBinary(tb, pkg), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("go", "run", "github.com/tetratelabs/wazero/cmd/wazero", "run",
		"-timeout=10m", "-mount="+filepath.Join(Root(), pkg)+":/:ro", "-env=PWD=/",
		wasm, "-test.run="+run, "-test.v")
	cmd.Dir = Root()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		tb.Fatalf("wasmtest: %s tests, compiled to wasip1 under wazero: %v\n%s", pkg, err, out.Bytes())
	}
	if !strings.Contains(out.String(), "--- PASS") {
		tb.Fatalf("wasmtest: %s: no test matched %q in the wasip1 run:\n%s", pkg, run, out.Bytes())
	}
	tb.Logf("%s tests, compiled to wasip1 under wazero:\n%s", pkg, out.Bytes())
}

// testBinary returns the wasip1 test binary of pkg, built once per test
// binary.
func testBinary(tb testing.TB, pkg string) []byte {
	tb.Helper()
	mu.Lock()
	b, ok := builds["test:"+pkg]
	if !ok {
		b = &build{}
		builds["test:"+pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.wasm, b.err = compileTests(pkg) })
	if b.err != nil {
		tb.Fatalf("wasmtest: %v", b.err)
	}
	return b.wasm
}

func compileTests(pkg string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "wasmtest-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "test.wasm")
	cmd := exec.Command("go", "test", "-c", "-o", out, "./"+pkg)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -c %s for wasip1: %w\n%s", pkg, err, stderr.Bytes())
	}
	return os.ReadFile(out)
}
