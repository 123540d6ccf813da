package source

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Closes end waits on Linux only (closes_linux.go); these tests set a quiet
// period of an hour, which only a close can cut short.

// TestDirCloseEndsTheWait: a file its writer closed, or one renamed into
// place, is read without waiting for the quiet period (an hour here).
func TestDirCloseEndsTheWait(t *testing.T) {
	a, _ := modules(t)
	tests := []struct {
		name  string
		write func(t *testing.T, dir string)
	}{
		{name: "written and closed", write: func(t *testing.T, dir string) { write(t, filepath.Join(dir, "auth.wasm"), a) }},
		{name: "renamed into place", write: func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, ".auth.wasm.tmp"), a)
			if err := os.Rename(filepath.Join(dir, ".auth.wasm.tmp"), filepath.Join(dir, "auth.wasm")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startDir(t, DirConfig{Debounce: time.Hour})
			h.up(t)
			tt.write(t, h.dir)
			if s := summaries(h.waitFor(t, 1)); !slices.Equal(s, []string{changed("auth", a)}) {
				t.Fatalf("events: %v, want the module", s)
			}
		})
	}
}

// TestDirOpenWriterKeepsWaiting: a module whose writer still has it open is
// not read, although its bytes already look whole, until the writer closes
// it (the quiet period is an hour here). A file written and closed after it
// is reported first.
func TestDirOpenWriterKeepsWaiting(t *testing.T) {
	a, b := modules(t)
	h := startDir(t, DirConfig{Debounce: time.Hour})
	h.up(t)
	f, err := os.Create(filepath.Join(h.dir, "auth.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(a); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(h.dir, "other.wasm"), b)
	if s := summaries(h.waitFor(t, 1)); !slices.Equal(s, []string{changed("other", b)}) {
		t.Fatalf("first event: %v, want only the module written and closed", s)
	}
	if _, err := f.Write([]byte{0, 3, 1, 'x', 'y'}); err != nil { // a custom section "x"
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	whole := withCustomSection(a, "x", []byte("y"))
	if s := summaries(h.waitFor(t, 1)); !slices.Equal(s, []string{changed("auth", whole)}) {
		t.Fatalf("after the close: %v, want the whole module", s)
	}
}
