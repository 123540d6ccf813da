package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// TestPrune: each filter keeps the modules of its newest versions and of
// the versions pinned for it; a module two filters share stays while one of
// them keeps it; a module no history names goes; every history record
// stays, and a temp file being written is left alone. Pruning again removes
// nothing, and a restart sees the same.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	add := func(filter string, i int) types.Digest {
		t.Helper()
		d := put(t, s, []byte(fmt.Sprintf("%s module %d", filter, i)))
		if err := s.AddVersion(types.Version{Filter: filter, Digest: d}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	var auth []types.Digest
	for i := range 6 {
		auth = append(auth, add("auth", i))
	}
	shared := auth[1]
	if err := s.AddVersion(types.Version{Filter: "logging", Digest: shared}); err != nil {
		t.Fatal(err)
	}
	logging := add("logging", 1) // logging's newest; shared is its older one
	orphan := put(t, s, []byte("stored, never a version"))
	temp := filepath.Join(dir, filepath.FromSlash(modulesDir), tmpPrefix+"being-written")
	if err := os.WriteFile(temp, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}

	// auth: newest two (4, 5) and pinned 0 (stable) and 2 (marked bad).
	pinned := map[string][]types.Digest{"auth": {auth[0], auth[2], ""}}
	removed, err := s.Prune(2, pinned)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []types.Digest{auth[3], orphan}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want auth's version 3 and the orphan %v", short(removed), short(want))
	}
	check := func(s Store) {
		t.Helper()
		for _, d := range []types.Digest{auth[0], shared, auth[2], auth[4], auth[5], logging} {
			if _, ok, err := s.Module(d); !ok || err != nil {
				t.Errorf("module %s gone (err %v), want it kept", d.Short(), err)
			}
		}
		for _, d := range want {
			if _, ok, _ := s.Module(d); ok {
				t.Errorf("module %s still stored", d.Short())
			}
			if _, ok := s.ModulePath(d); ok {
				t.Errorf("module server still finds %s", d.Short())
			}
		}
		if h, err := s.History("auth"); err != nil || len(h) != 6 {
			t.Errorf("auth history: %d records (err %v), want all 6", len(h), err)
		}
		if _, err := os.Stat(temp); err != nil {
			t.Errorf("temp file: %v", err)
		}
	}
	check(s)
	if again, err := s.Prune(2, pinned); err != nil || len(again) != 0 {
		t.Fatalf("second prune removed %v (err %v), want nothing", short(again), err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if err := os.WriteFile(temp, []byte("half"), 0o644); err != nil { // Open removes leftovers
		t.Fatal(err)
	}
	check(s)
}

func short(ds []types.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Short()
	}
	return out
}
