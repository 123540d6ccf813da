package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const helloPkg = "internal/wasmtest/testdata/hello"

func open(t testing.TB, dir string) Store {
	t.Helper()
	s, err := Open(dir, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func put(t testing.TB, s Store, b []byte) types.Digest {
	t.Helper()
	d, err := s.PutModule(b)
	if err != nil {
		t.Fatalf("PutModule: %v", err)
	}
	return d
}

func TestModuleRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte
	}{
		{name: "compiled module", bytes: wasmtest.Module(t, helloPkg)},
		{name: "small bytes", bytes: []byte("\x00asm\x01\x00\x00\x00")},
		{name: "empty", bytes: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			defer s.Close()

			d := put(t, s, tt.bytes)
			if want := types.DigestOf(tt.bytes); d != want {
				t.Fatalf("digest = %s, want %s", d, want)
			}
			if again := put(t, s, tt.bytes); again != d {
				t.Fatalf("second PutModule = %s, want %s", again, d)
			}
			got, ok, err := s.Module(d)
			if err != nil || !ok {
				t.Fatalf("Module = ok %v, err %v", ok, err)
			}
			if string(got) != string(tt.bytes) {
				t.Fatalf("Module returned %d bytes, want the %d stored", len(got), len(tt.bytes))
			}
			p, ok := s.ModulePath(d)
			if !ok {
				t.Fatal("ModulePath: miss")
			}
			onDisk, err := os.ReadFile(p)
			if err != nil || string(onDisk) != string(tt.bytes) {
				t.Fatalf("file at ModulePath differs (err %v)", err)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "modules", "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != string(d) {
				t.Fatalf("modules dir holds %v, want only %s", entries, d)
			}
		})
	}
}

// TestStageModule: a staged module is invisible until Commit stores it, and
// gone after Discard; committing bytes already stored keeps the stored copy.
func TestStageModule(t *testing.T) {
	mod := wasmtest.Module(t, helloPkg)
	d := types.DigestOf(mod)
	tests := []struct {
		name        string
		storedFirst bool
		commit      bool
	}{
		{name: "committed", commit: true},
		{name: "discarded"},
		{name: "committed when already stored", storedFirst: true, commit: true},
		{name: "discarded when already stored", storedFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			defer s.Close()
			if tt.storedFirst {
				put(t, s, mod)
			}
			st, err := s.StageModule(mod)
			if err != nil {
				t.Fatalf("StageModule: %v", err)
			}
			if st.Digest() != d {
				t.Fatalf("Digest = %s, want %s", st.Digest(), d)
			}
			if _, ok := s.ModulePath(d); ok != tt.storedFirst {
				t.Fatalf("staged: ModulePath ok = %v, want %v", ok, tt.storedFirst)
			}
			if !tt.storedFirst {
				if removed, err := s.Prune(0, nil); err != nil || len(removed) != 0 {
					t.Fatalf("Prune while staged = %v, %v; want nothing to prune", removed, err)
				}
			}
			if tt.commit {
				if err := st.Commit(); err != nil {
					t.Fatalf("Commit: %v", err)
				}
			} else {
				st.Discard()
			}
			got, ok, err := s.Module(d)
			if want := tt.commit || tt.storedFirst; err != nil || ok != want || (ok && string(got) != string(mod)) {
				t.Fatalf("Module = (%d bytes, %v, %v), want ok %v with the module", len(got), ok, err, want)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "modules", "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			var want []string
			if tt.commit || tt.storedFirst {
				want = []string{string(d)}
			}
			if !reflect.DeepEqual(names, want) {
				t.Fatalf("modules dir holds %v, want %v (no staged file left)", names, want)
			}
		})
	}
}

func TestModuleMiss(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	tests := []struct {
		name    string
		digest  types.Digest
		wantErr error
	}{
		{name: "valid digest not stored", digest: types.DigestOf([]byte("never stored"))},
		{name: "path traversal is not a digest", digest: "../state.db", wantErr: types.ErrBadDigest},
		{name: "upper case is not a digest", digest: types.Digest(strings.ToUpper(string(types.DigestOf(nil)))), wantErr: types.ErrBadDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok, err := s.Module(tt.digest)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Module err = %v, want %v", err, tt.wantErr)
			}
			if ok || b != nil {
				t.Fatalf("Module = (%d bytes, %v), want (nil, false)", len(b), ok)
			}
			if p, ok := s.ModulePath(tt.digest); ok {
				t.Fatalf("ModulePath = %q, want a miss", p)
			}
		})
	}
}

func TestCorruptedModule(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(path string) error
	}{
		{name: "flipped byte", corrupt: func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0xff
			return os.WriteFile(p, b, 0o644)
		}},
		{name: "truncated", corrupt: func(p string) error { return os.Truncate(p, 100) }},
	}
	mod := wasmtest.Module(t, helloPkg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			d := put(t, s, mod)
			p, _ := s.ModulePath(d)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tt.corrupt(p); err != nil {
				t.Fatal(err)
			}

			s = open(t, dir)
			defer s.Close()
			_, ok, err := s.Module(d)
			if !errors.Is(err, ErrCorrupt) || ok {
				t.Fatalf("Module = ok %v, err %v; want ErrCorrupt", ok, err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name %s", err, p)
			}
			if _, ok := s.ModulePath(d); ok {
				t.Fatal("ModulePath served a corrupted module")
			}
			// Putting the bytes again repairs the file.
			put(t, s, mod)
			if _, ok, err := s.Module(d); !ok || err != nil {
				t.Fatalf("after repair: Module = ok %v, err %v", ok, err)
			}
		})
	}
}

func TestLeftoverTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	d := put(t, s, []byte("kept"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	modules := filepath.Join(dir, "modules", "sha256")
	// What a crash between CreateTemp and Rename leaves behind.
	leftover := filepath.Join(modules, tmpPrefix+"123456")
	if err := os.WriteFile(leftover, []byte("\x00asm half"), 0o600); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	defer s.Close()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover temp file still there (stat err %v)", err)
	}
	if _, ok, err := s.Module(d); !ok || err != nil {
		t.Fatalf("stored module lost: ok %v, err %v", ok, err)
	}
}

func TestAddVersion(t *testing.T) {
	a, b := []byte("module a"), []byte("module b")
	da, db := types.DigestOf(a), types.DigestOf(b)
	missing := types.DigestOf([]byte("not stored"))
	tests := []struct {
		name    string
		add     []types.Digest
		filter  string
		wantErr error
		want    []types.Digest
	}{
		{name: "appends in order", add: []types.Digest{da, db}, want: []types.Digest{da, db}},
		{name: "same digest as newest is not repeated", add: []types.Digest{da, da, db, db}, want: []types.Digest{da, db}},
		{name: "going back to an older digest is a new entry", add: []types.Digest{da, db, da}, want: []types.Digest{da, db, da}},
		{name: "module must be stored", add: []types.Digest{missing}, wantErr: ErrModuleMissing},
		{name: "bad digest", add: []types.Digest{"sha256:zz"}, wantErr: types.ErrBadDigest},
		{name: "filter name required", filter: "-", add: []types.Digest{da}, wantErr: ErrNoFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			defer s.Close()
			put(t, s, a)
			put(t, s, b)
			filter := "auth"
			if tt.filter == "-" {
				filter = ""
			}
			var err error
			for i, d := range tt.add {
				err = s.AddVersion(types.Version{Filter: filter, Digest: d, AddedAt: time.Unix(int64(i), 0).UTC()})
				if err != nil {
					break
				}
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("AddVersion err = %v, want %v", err, tt.wantErr)
			}
			hist, err := s.History("auth")
			if err != nil {
				t.Fatal(err)
			}
			var got []types.Digest
			for _, v := range hist {
				got = append(got, v.Digest)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("history = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	mod := wasmtest.Module(t, helloPkg)
	d1 := put(t, s, mod)
	d2 := put(t, s, []byte("second"))
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	versions := []types.Version{
		{Filter: "logging", Digest: d2, Size: 6, Origin: types.Origin{Kind: types.OriginOCI, Ref: "oci://r/logging@sha256:" + string(d2)}, AddedAt: at},
		{Filter: "auth", Digest: d1, Size: int64(len(mod)), Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/auth.wasm"}, AddedAt: at,
			Manifest: &types.Manifest{Name: "auth", Version: "1.0.0", Capabilities: []string{"http_call"}}},
		{Filter: "auth", Digest: d2, Size: 6, Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/auth.wasm"}, AddedAt: at.Add(time.Minute)},
	}
	for _, v := range versions {
		if err := s.AddVersion(v); err != nil {
			t.Fatal(err)
		}
	}
	state := types.FilterState{
		Filter: "auth", Stable: d1, Candidate: d2, Step: 1, StepSince: at, Paused: true,
		Bad: []types.BadMark{{Digest: d2, Node: "envoy-1", Reason: "nack: bad config", At: at}},
	}
	if err := s.SetState(state); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	defer s.Close()
	filters, err := s.Filters()
	if err != nil || !reflect.DeepEqual(filters, []string{"auth", "logging"}) {
		t.Fatalf("Filters = %v, %v", filters, err)
	}
	for _, f := range filters {
		var want []types.Version
		for _, v := range versions {
			if v.Filter == f {
				want = append(want, v)
			}
		}
		got, err := s.History(f)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("History(%s) after restart = %+v, %v; want %+v", f, got, err, want)
		}
	}
	got, ok, err := s.State("auth")
	if err != nil || !ok || !reflect.DeepEqual(got, state) {
		t.Fatalf("State after restart = %+v, %v, %v; want %+v", got, ok, err, state)
	}
	if _, ok, err := s.State("logging"); ok || err != nil {
		t.Fatalf("State(logging) = ok %v, err %v; want a miss", ok, err)
	}
	if b, ok, err := s.Module(d1); !ok || err != nil || string(b) != string(mod) {
		t.Fatalf("module after restart: ok %v, err %v", ok, err)
	}
}

func TestSetState(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	tests := []struct {
		name    string
		st      types.FilterState
		wantErr error
	}{
		{name: "first state", st: types.FilterState{Filter: "auth", Stable: types.DigestOf([]byte("a"))}},
		{name: "replaces the previous one", st: types.FilterState{Filter: "auth", Retired: true}},
		{name: "filter name required", st: types.FilterState{Stable: types.DigestOf([]byte("a"))}, wantErr: ErrNoFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetState(tt.st)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("SetState err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			got, ok, err := s.State(tt.st.Filter)
			if err != nil || !ok || !reflect.DeepEqual(got, tt.st) {
				t.Fatalf("State = %+v, %v, %v; want %+v", got, ok, err, tt.st)
			}
		})
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	if s2, err := Open(dir, zaptest.NewLogger(t)); err == nil {
		s2.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

// TestHammer runs writers and readers of modules, versions and state at once;
// under -race it checks the store's locking, and afterwards its invariants.
func TestHammer(t *testing.T) {
	const (
		workers = 8
		rounds  = 60
		filters = 3
	)
	s := open(t, t.TempDir())
	defer s.Close()
	blobs := make([][]byte, 5)
	for i := range blobs {
		blobs[i] = []byte(strings.Repeat(fmt.Sprintf("blob %d ", i), 1000))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				b := blobs[(w+r)%len(blobs)]
				filter := fmt.Sprintf("f%d", (w*r)%filters)
				d, err := s.PutModule(b)
				if err != nil {
					errs <- err
					continue
				}
				if got, ok, err := s.Module(d); err != nil || !ok || string(got) != string(b) {
					errs <- fmt.Errorf("Module(%s): ok %v, err %v", d.Short(), ok, err)
				}
				if _, ok := s.ModulePath(d); !ok {
					errs <- fmt.Errorf("ModulePath(%s): miss", d.Short())
				}
				if err := s.AddVersion(types.Version{Filter: filter, Digest: d, AddedAt: time.Unix(int64(r), 0).UTC()}); err != nil {
					errs <- err
				}
				if _, err := s.History(filter); err != nil {
					errs <- err
				}
				if err := s.SetState(types.FilterState{Filter: filter, Stable: d, Step: r}); err != nil {
					errs <- err
				}
				if _, _, err := s.State(filter); err != nil {
					errs <- err
				}
				if _, err := s.Filters(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	names, err := s.Filters()
	if err != nil || len(names) != filters {
		t.Fatalf("Filters = %v, %v; want %d filters", names, err, filters)
	}
	for _, f := range names {
		hist, err := s.History(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(hist); i++ {
			if hist[i].Digest == hist[i-1].Digest {
				t.Fatalf("%s: entries %d and %d repeat digest %s", f, i-1, i, hist[i].Digest.Short())
			}
		}
	}
	entries, err := os.ReadDir(s.(*fileStore).modules)
	if err != nil || len(entries) != len(blobs) {
		t.Fatalf("modules dir has %d entries (err %v), want %d and no temp files", len(entries), err, len(blobs))
	}
}

func BenchmarkPutModule(b *testing.B) {
	mod := wasmtest.Module(b, helloPkg)
	b.Run("new", func(b *testing.B) {
		s := open(b, b.TempDir())
		defer s.Close()
		buf := append([]byte(nil), mod...)
		b.SetBytes(int64(len(buf)))
		i := 0
		for b.Loop() {
			// A distinct module each time, so every iteration writes.
			i++
			buf[len(buf)-1], buf[len(buf)-2], buf[len(buf)-3] = byte(i), byte(i>>8), byte(i>>16)
			if _, err := s.PutModule(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("existing", func(b *testing.B) {
		s := open(b, b.TempDir())
		defer s.Close()
		put(b, s, mod)
		b.SetBytes(int64(len(mod)))
		for b.Loop() {
			if _, err := s.PutModule(mod); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkModule(b *testing.B) {
	mod := wasmtest.Module(b, helloPkg)
	s := open(b, b.TempDir())
	defer s.Close()
	d := put(b, s, mod)
	b.SetBytes(int64(len(mod)))
	for b.Loop() {
		if _, ok, err := s.Module(d); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// TestActions: operator actions are kept per filter in order, repeats
// included, and survive a restart.
func TestActions(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	d := types.DigestOf([]byte("auth v2"))
	actions := []Action{
		{Filter: "auth", Action: "pause", Actor: "alice@ops-1", Digest: d, At: at},
		{Filter: "logging", Action: "reload", Actor: "config file", Reason: "rollout changed", At: at},
		{Filter: "auth", Action: "resume", Actor: "admin-api", Digest: d, At: at.Add(time.Minute)},
		{Filter: "auth", Action: "resume", Actor: "admin-api", Digest: d, At: at.Add(time.Minute)},
		{Filter: "auth", Action: "rollback", Actor: "bob@laptop", Reason: "p99 doubled", Digest: d, At: at.Add(2 * time.Minute)},
	}
	for _, a := range actions {
		if err := s.AddAction(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddAction(Action{Action: "pause"}); !errors.Is(err, ErrNoFilter) {
		t.Errorf("an action without a filter: %v, want %v", err, ErrNoFilter)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	for _, f := range []string{"auth", "logging", "none"} {
		var want []Action
		for _, a := range actions {
			if a.Filter == f {
				want = append(want, a)
			}
		}
		got, err := s.Actions(f)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Actions(%s) after restart = %+v, %v; want %+v", f, got, err, want)
		}
	}
}
