package wasmtest

import (
	"bytes"
	"testing"
)

func TestModuleBuildsOnce(t *testing.T) {
	a := Module(t, "internal/wasmtest/testdata/hello")
	if !bytes.HasPrefix(a, []byte("\x00asm")) {
		t.Fatalf("not a wasm module: % x", a[:8])
	}
	b := Module(t, "internal/wasmtest/testdata/hello")
	if &a[0] != &b[0] {
		t.Fatal("second call rebuilt the module")
	}
}
