package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNew scaffolds a filter from inside this checkout (found by the
// command, as for a user who runs it from a clone) and checks that the
// module was tidied; a name wasmfleet would refuse is refused.
func TestNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tagger")
	code, stdout, stderr := wasmfleet(t, "new", "tagger", dir, "--module", "example.com/tagger")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"go.mod", "go.sum", "main.go", "filter.go", "filter_test.go", "tagger.yaml", "manifest.json", "README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(stdout, "go test ./...") {
		t.Errorf("no next steps in:\n%s", stdout)
	}

	code, _, stderr = wasmfleet(t, "new", "Tagger", filepath.Join(t.TempDir(), "x"))
	if code != exitFailed || !strings.Contains(stderr, `filter name "Tagger"`) {
		t.Errorf("new Tagger: exit %d, stderr %q; want %d naming the name", code, stderr, exitFailed)
	}
}
