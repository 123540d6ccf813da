package source

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	helloPkg = "internal/wasmtest/testdata/hello"
	// testDebounce keeps tests quick; the logic does not depend on its size.
	testDebounce = 20 * time.Millisecond
	// eventWait bounds every wait for an event (generous: -race, 2 shared cores).
	eventWait = 15 * time.Second
	// barrierPrefix starts the name of every barrier filter (see collect);
	// it sorts after every filter the tests use.
	barrierPrefix = "zzbarrier"
)

// modules returns two different real modules: the compiled hello filter and
// the same with a custom section appended (still a valid module).
func modules(t testing.TB) (a, b []byte) {
	a = wasmtest.Module(t, helloPkg)
	return a, withCustomSection(a, "wasmfleet-test", []byte("v2"))
}

func withCustomSection(mod []byte, name string, payload []byte) []byte {
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := append(slices.Clone(mod), 0)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// harness runs a Dir on a real directory and reads its events.
type harness struct {
	dir      string
	events   chan types.Event
	barriers int
	watching chan struct{} // closed once Start watches the directory
}

// up waits until Start watches the directory: what is written after that is
// seen as written, not found by the first scan (which waits a quiet period).
func (h *harness) up(t *testing.T) {
	t.Helper()
	select {
	case <-h.watching:
	case <-time.After(eventWait):
		t.Fatalf("not watching within %v", eventWait)
	}
}

func startDir(t *testing.T, cfg DirConfig) *harness {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "filters.d")
		mkdir(t, cfg.Dir)
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = testDebounce
	}
	h := &harness{dir: cfg.Dir, events: make(chan types.Event, 64), watching: make(chan struct{})}
	var once sync.Once
	cfg.Log = zaptest.NewLogger(t, zaptest.WrapOptions(zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "watching" {
			once.Do(func() { close(h.watching) })
		}
		return nil
	})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	d := NewDir(cfg, h.events)
	go func() { done <- d.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start returned %v", err)
		}
	})
	return h
}

// next returns the next event, failing the test if none comes in time. Every
// module event must carry exactly the bytes its digest names.
func (h *harness) next(t *testing.T) types.Event {
	t.Helper()
	select {
	case ev := <-h.events:
		if ev.Kind == types.ModuleChanged && types.DigestOf(ev.Module) != ev.Digest {
			t.Fatalf("%s: event digest %s is not the sha256 of its %d bytes", ev.Filter, ev.Digest.Short(), len(ev.Module))
		}
		return ev
	case <-time.After(eventWait):
		t.Fatalf("no event within %v", eventWait)
		return types.Event{}
	}
}

// collect returns the events caused by what the test did so far. It writes a
// settings file for a barrier filter whose name sorts last and waits for its
// event: the barrier's quiet period starts after every earlier write, so
// earlier files are settled and reported first. The barrier file stays open
// until then: a close would end its wait early (see Dir.closedFile), before
// the quiet period of a file removed just before it, say.
//
// Each barrier is a filter the source has never seen. Reusing one name is
// not a barrier: a rescan (the directory removed, say) can leave that name
// pending already, and the source may then settle it, reading the new
// barrier file, before it has even seen the writes made before it.
func (h *harness) collect(t *testing.T) []types.Event {
	t.Helper()
	h.barriers++
	barrier := fmt.Sprintf("%s%d", barrierPrefix, h.barriers)
	f, err := os.Create(filepath.Join(h.dir, barrier+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("barrier: true\n")); err != nil {
		t.Fatal(err)
	}
	var got []types.Event
	for {
		ev := h.next(t)
		if ev.Filter == barrier && ev.Kind == types.SettingsChanged && ev.Settings != nil {
			return got
		}
		if !isBarrier(ev) {
			got = append(got, ev)
		}
	}
}

// waitFor reads events until n have arrived that are not about a barrier.
func (h *harness) waitFor(t *testing.T, n int) []types.Event {
	t.Helper()
	var got []types.Event
	for len(got) < n {
		if ev := h.next(t); !isBarrier(ev) {
			got = append(got, ev)
		}
	}
	return got
}

// isBarrier reports whether ev is about one of collect's barrier filters,
// for instance an old barrier file vanishing with the directory.
func isBarrier(ev types.Event) bool { return strings.HasPrefix(ev.Filter, barrierPrefix) }

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// summary is an event as one comparable line.
func summary(ev types.Event) string {
	switch ev.Kind {
	case types.ModuleChanged:
		s := fmt.Sprintf("changed %s %s", ev.Filter, ev.Digest.Short())
		if ev.Signature != nil {
			s += fmt.Sprintf(" sig=%q", ev.Signature)
		}
		if ev.Manifest != nil {
			s += fmt.Sprintf(" manifest=%s@%s", ev.Manifest.Name, ev.Manifest.Version)
		}
		return s
	case types.SettingsChanged:
		if ev.Settings == nil {
			return fmt.Sprintf("settings %s removed", ev.Filter)
		}
		return fmt.Sprintf("settings %s %q", ev.Filter, ev.Settings)
	case types.SourceFailed:
		return fmt.Sprintf("failed %s: %v", ev.Filter, ev.Err)
	}
	return fmt.Sprintf("%s %s", ev.Kind, ev.Filter)
}

func summaries(evs []types.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, summary(ev))
	}
	slices.Sort(out)
	return out
}

func changed(filter string, mod []byte) string {
	return fmt.Sprintf("changed %s %s", filter, types.DigestOf(mod).Short())
}

func TestDirReportsFilesPresentAtStart(t *testing.T) {
	a, b := modules(t)
	dir := filepath.Join(t.TempDir(), "filters.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"auth.wasm":           a,
		"auth.wasm.sig":       []byte("SIG"),
		"auth.manifest.json":  []byte(`{"name":"auth","version":"1.2.0","capabilities":["http_call"]}`),
		"auth.yaml":           []byte("failure_policy: FAIL_OPEN\n"),
		"logging.wasm":        b,
		"empty.yaml":          {},
		".auth.wasm.swp":      []byte("\x00asm"),
		"auth.wasm~":          a[:100],
		"4913":                nil,
		".#auth.wasm":         a[:100],
		"auth.tmp":            a[:100],
		"Auth.wasm":           a,
		"README.md":           []byte("hi"),
		"notes.wasm.bak":      a,
		"1st.wasm":            a,
		"auth.manifest.json~": []byte("{"),
	}
	for name, content := range files {
		write(t, filepath.Join(dir, name), content)
	}
	h := startDir(t, DirConfig{Dir: dir})
	got := h.collect(t)
	want := []string{
		changed("auth", a) + ` sig="SIG" manifest=auth@1.2.0`,
		changed("logging", b),
		`settings auth "failure_policy: FAIL_OPEN\n"`,
		`settings empty ""`,
	}
	slices.Sort(want)
	if s := summaries(got); !slices.Equal(s, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}
	for _, ev := range got {
		if ev.Kind == types.ModuleChanged && ev.Filter == "auth" {
			if string(ev.Module) != string(a) {
				t.Fatal("auth event does not carry the file's bytes")
			}
			if ev.Origin != (types.Origin{Kind: types.OriginFile, Ref: filepath.Join(dir, "auth.wasm")}) {
				t.Fatalf("origin = %+v", ev.Origin)
			}
			if !slices.Equal(ev.Manifest.Capabilities, []string{"http_call"}) {
				t.Fatalf("manifest = %+v", ev.Manifest)
			}
		}
		if ev.Kind == types.SettingsChanged && ev.Settings == nil {
			t.Fatalf("%s: settings of an existing (maybe empty) file must not be nil", ev.Filter)
		}
	}
}

// TestDirChanges walks one directory through a sequence of changes; each
// step lists exactly the events it must cause.
func TestDirChanges(t *testing.T) {
	a, b := modules(t)
	h := startDir(t, DirConfig{})
	p := func(name string) string { return filepath.Join(h.dir, name) }
	h.collect(t) // the watcher is up
	steps := []struct {
		name string
		do   func(t *testing.T)
		want []string
	}{
		{
			name: "new module",
			do:   func(t *testing.T) { write(t, p("auth.wasm"), a) },
			want: []string{changed("auth", a)},
		},
		{
			name: "touch is not a change",
			do: func(t *testing.T) {
				later := time.Now().Add(time.Hour)
				if err := os.Chtimes(p("auth.wasm"), later, later); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "rewriting identical bytes is not a change",
			do:   func(t *testing.T) { write(t, p("auth.wasm"), a) },
		},
		{
			name: "atomic rename into place",
			do: func(t *testing.T) {
				write(t, p("auth.wasm.tmp"), b)
				if err := os.Rename(p("auth.wasm.tmp"), p("auth.wasm")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{changed("auth", b)},
		},
		{
			name: "editor files are ignored",
			do: func(t *testing.T) {
				for _, name := range []string{".auth.wasm.swp", "auth.wasm~", "4913", ".#auth.wasm", "x.tmp", "auth.yaml.swp"} {
					write(t, p(name), a[:4096])
				}
				// vim's write test file comes and goes.
				if err := os.Remove(p("4913")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "settings appear",
			do:   func(t *testing.T) { write(t, p("auth.yaml"), []byte("required: true\n")) },
			want: []string{`settings auth "required: true\n"`},
		},
		{
			name: "settings change",
			do:   func(t *testing.T) { write(t, p("auth.yaml"), []byte("required: false\n")) },
			want: []string{`settings auth "required: false\n"`},
		},
		{
			name: "settings removed",
			do: func(t *testing.T) {
				if err := os.Remove(p("auth.yaml")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"settings auth removed"},
		},
		{
			name: "a signature added later reports the module again with it",
			do:   func(t *testing.T) { write(t, p("auth.wasm.sig"), []byte("SIG")) },
			want: []string{changed("auth", b) + ` sig="SIG"`},
		},
		{
			name: "module removed",
			do: func(t *testing.T) {
				if err := os.Remove(p("auth.wasm")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"module-removed auth"},
		},
		{
			name: "the same bytes returning are reported again",
			do:   func(t *testing.T) { write(t, p("auth.wasm"), b) },
			want: []string{changed("auth", b) + ` sig="SIG"`},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			got := summaries(h.collect(t))
			if !slices.Equal(got, st.want) {
				t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(st.want, "\n"))
			}
		})
	}
}

// TestDirBurst rewrites a module many times in a row, alternating two
// versions: whatever the watcher catches in between must be a whole module,
// and the last event must be the last version written.
func TestDirBurst(t *testing.T) {
	a, b := modules(t)
	h := startDir(t, DirConfig{})
	path := filepath.Join(h.dir, "auth.wasm")
	write(t, path, b)
	h.collect(t)
	for i := range 31 {
		write(t, path, [][]byte{a, b}[i%2])
	}
	got := h.collect(t)
	if len(got) == 0 {
		t.Fatal("no event for the burst")
	}
	for _, ev := range got {
		if ev.Kind != types.ModuleChanged || (ev.Digest != types.DigestOf(a) && ev.Digest != types.DigestOf(b)) {
			t.Fatalf("event %s is not one of the versions written", summary(ev))
		}
	}
	if last := got[len(got)-1]; last.Digest != types.DigestOf(a) {
		t.Fatalf("last event %s, want the last version written %s", summary(last), types.DigestOf(a).Short())
	}
}

// TestDirSlowCopy writes a module in pieces with pauses longer than the
// debounce, as a slow network copy does, and checks that no event ever
// carries part of it.
func TestDirSlowCopy(t *testing.T) {
	a, _ := modules(t)
	tests := []struct {
		name  string
		chunk int
		pause time.Duration
	}{
		{name: "100 kB pieces, pauses of 3 quiet periods", chunk: 100_003, pause: 3 * testDebounce},
		{name: "1 MB pieces, pauses of 5 quiet periods", chunk: 1_000_003, pause: 5 * testDebounce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startDir(t, DirConfig{})
			h.collect(t)
			f, err := os.Create(filepath.Join(h.dir, "auth.wasm"))
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(a); off += tt.chunk {
				if _, err := f.Write(a[off:min(off+tt.chunk, len(a))]); err != nil {
					t.Fatal(err)
				}
				// The slow writer under test, not a wait for a result.
				time.Sleep(tt.pause)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			got := h.collect(t)
			if s := summaries(got); !slices.Equal(s, []string{changed("auth", a)}) {
				t.Fatalf("events: %v, want one whole module", s)
			}
		})
	}
}

// TestDirNotWasmIsReportedAfterAWhile: bytes that never look like a whole
// module are still reported once they stop changing, for admission to refuse
// with its own reason.
func TestDirNotWasmIsReportedAfterAWhile(t *testing.T) {
	h := startDir(t, DirConfig{})
	junk := []byte("this is not wasm")
	write(t, filepath.Join(h.dir, "auth.wasm"), junk)
	got := h.waitFor(t, 1)
	if s := summaries(got); !slices.Equal(s, []string{changed("auth", junk)}) {
		t.Fatalf("events: %v", s)
	}
}

func TestDirBadFiles(t *testing.T) {
	a, _ := modules(t)
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string)
		max      int64
		skip     string
		wantErr  error
		wantText string
		filters  []string
	}{
		{
			name:    "directory named like a module",
			setup:   func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "auth.wasm")) },
			wantErr: ErrNotRegular, wantText: "a directory", filters: []string{"auth"},
		},
		{
			name: "FIFO named like a module does not block the watcher",
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "auth.wasm"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: ErrNotRegular, wantText: "a named pipe", filters: []string{"auth"},
		},
		{
			name: "symlink loop",
			setup: func(t *testing.T, dir string) {
				symlink(t, "b.wasm", filepath.Join(dir, "a.wasm"))
				symlink(t, "a.wasm", filepath.Join(dir, "b.wasm"))
			},
			wantErr: syscall.ELOOP, filters: []string{"a", "b"},
		},
		{
			name: "over the size limit is refused by its size, unread",
			setup: func(t *testing.T, dir string) {
				f, err := os.Create(filepath.Join(dir, "auth.wasm"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := f.Truncate(200 << 20); err != nil { // sparse: cheap
					t.Fatal(err)
				}
			},
			max:     64 << 20,
			wantErr: ErrTooLarge, wantText: "209715200 bytes, limit 67108864", filters: []string{"auth"},
		},
		{
			name: "unreadable file",
			skip: "root reads mode 000 files; the directory and FIFO cases cover unreadable paths",
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "auth.wasm"), a)
				if err := os.Chmod(filepath.Join(dir, "auth.wasm"), 0); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: os.ErrPermission, filters: []string{"auth"},
		},
		{
			name: "bad manifest holds the module back",
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "auth.wasm"), a)
				write(t, filepath.Join(dir, "auth.manifest.json"), []byte(`{"name": 1`))
			},
			wantErr: ErrBadManifest, filters: []string{"auth"},
		},
		{
			name:    "settings that are a directory",
			setup:   func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "auth.yaml")) },
			wantErr: ErrNotRegular, filters: []string{"auth"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" && os.Geteuid() == 0 {
				t.Skip(tt.skip)
			}
			h := startDir(t, DirConfig{MaxModuleBytes: tt.max})
			h.collect(t)
			tt.setup(t, h.dir)
			got := h.collect(t) // also proves the watcher is still running
			var filters []string
			for _, ev := range got {
				if ev.Kind != types.SourceFailed {
					t.Fatalf("unexpected event %s", summary(ev))
				}
				filters = append(filters, ev.Filter)
				if !errors.Is(ev.Err, tt.wantErr) {
					t.Errorf("%s: err = %v, want %v", ev.Filter, ev.Err, tt.wantErr)
				}
				if !strings.Contains(ev.Err.Error(), h.dir+string(filepath.Separator)) || !strings.Contains(ev.Err.Error(), tt.wantText) {
					t.Errorf("%s: error %q should name the file and say %q", ev.Filter, ev.Err, tt.wantText)
				}
				if ev.Origin.Ref == "" || !strings.HasPrefix(ev.Err.Error(), "source: "+ev.Origin.Ref+": ") {
					t.Errorf("%s: error %q does not start with its file %q", ev.Filter, ev.Err, ev.Origin.Ref)
				}
			}
			slices.Sort(filters)
			if !slices.Equal(filters, tt.filters) {
				t.Fatalf("failed filters = %v, want %v", filters, tt.filters)
			}
		})
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// swapSymlink points link at target atomically, as kubelet does for a
// ConfigMap volume: a new symlink renamed over the old one.
func swapSymlink(t *testing.T, target, link string) {
	t.Helper()
	tmp := link + "_tmp"
	symlink(t, target, tmp)
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

func TestDirRemovedAndRecreated(t *testing.T) {
	a, b := modules(t)
	tests := []struct {
		name   string
		remove func(t *testing.T, dir string)
	}{
		{name: "removed", remove: func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "renamed away", remove: func(t *testing.T, dir string) {
			if err := os.Rename(dir, dir+".old"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startDir(t, DirConfig{})
			write(t, filepath.Join(h.dir, "auth.wasm"), a)
			write(t, filepath.Join(h.dir, "logging.yaml"), []byte("required: true\n"))
			h.collect(t)

			tt.remove(t, h.dir)
			got := summaries(h.waitFor(t, 2))
			want := []string{"module-removed auth", "settings logging removed"}
			if !slices.Equal(got, want) {
				t.Fatalf("after removal: %v, want %v", got, want)
			}

			mkdir(t, h.dir)
			write(t, filepath.Join(h.dir, "transform.wasm"), b)
			write(t, filepath.Join(h.dir, "auth.wasm"), a)
			got = summaries(h.collect(t))
			want = []string{changed("auth", a), changed("transform", b)}
			if !slices.Equal(got, want) {
				t.Fatalf("after recreation: %v, want %v", got, want)
			}
		})
	}
}

func TestDirSymlinks(t *testing.T) {
	a, b := modules(t)
	t.Run("module symlinked to a file elsewhere, when allowed", func(t *testing.T) {
		elsewhere := t.TempDir()
		write(t, filepath.Join(elsewhere, "auth-1.0.wasm"), a)
		h := startDir(t, DirConfig{FollowOutsideSymlinks: true})
		h.collect(t)
		symlink(t, filepath.Join(elsewhere, "auth-1.0.wasm"), filepath.Join(h.dir, "auth.wasm"))
		if got := summaries(h.collect(t)); !slices.Equal(got, []string{changed("auth", a)}) {
			t.Fatalf("events: %v", got)
		}
	})

	t.Run("link inside the directory is followed", func(t *testing.T) {
		h := startDir(t, DirConfig{})
		mkdir(t, filepath.Join(h.dir, "builds"))
		write(t, filepath.Join(h.dir, "builds", "auth-1.0.wasm"), a)
		symlink(t, "builds/auth-1.0.wasm", filepath.Join(h.dir, "auth.wasm"))
		symlink(t, filepath.Join(h.dir, "builds", "auth-1.0.wasm"), filepath.Join(h.dir, "logging.wasm"))
		if got := summaries(h.collect(t)); !slices.Equal(got, []string{changed("auth", a), changed("logging", a)}) {
			t.Fatalf("events: %v", got)
		}
	})

	t.Run("links that leave the directory are refused by default", func(t *testing.T) {
		elsewhere := t.TempDir()
		const secret = "root:$y$j9T$not-for-the-status-page:19000:0:99999:7:::\n"
		write(t, filepath.Join(elsewhere, "shadow"), []byte(secret))
		write(t, filepath.Join(elsewhere, "auth-1.0.wasm"), a)
		h := startDir(t, DirConfig{})
		h.collect(t)
		symlink(t, filepath.Join(elsewhere, "shadow"), filepath.Join(h.dir, "auth.wasm"))
		up, err := filepath.Rel(h.dir, filepath.Join(elsewhere, "shadow")) // "../../..."
		if err != nil {
			t.Fatal(err)
		}
		symlink(t, up, filepath.Join(h.dir, "auth.yaml"))
		// Through a symlinked directory inside the watched one.
		symlink(t, elsewhere, filepath.Join(h.dir, "lib"))
		symlink(t, "lib/auth-1.0.wasm", filepath.Join(h.dir, "logging.wasm"))
		got := h.collect(t)
		var files []string
		for _, ev := range got {
			if ev.Kind != types.SourceFailed || !errors.Is(ev.Err, ErrOutsideDir) {
				t.Fatalf("unexpected event %s, want every link refused with ErrOutsideDir", summary(ev))
			}
			msg := ev.Err.Error()
			if !strings.HasPrefix(msg, "source: "+ev.Origin.Ref+": ") || !strings.Contains(msg, elsewhere) || strings.Contains(msg, "not-for-the-status-page") {
				t.Errorf("error %q should name the link %s and where it leads, and nothing it holds", msg, ev.Origin.Ref)
			}
			files = append(files, filepath.Base(ev.Origin.Ref))
		}
		slices.Sort(files)
		if want := []string{"auth.wasm", "auth.yaml", "logging.wasm"}; !slices.Equal(files, want) {
			t.Fatalf("refused %v, want %v", files, want)
		}
	})

	t.Run("a link retargeted outside keeps the module reported before", func(t *testing.T) {
		h := startDir(t, DirConfig{})
		write(t, filepath.Join(h.dir, "auth-1.0.wasm"), a)
		symlink(t, "auth-1.0.wasm", filepath.Join(h.dir, "auth.wasm"))
		if got := summaries(h.collect(t)); !slices.Equal(got, []string{changed("auth", a)}) {
			t.Fatalf("events: %v", got)
		}
		elsewhere := t.TempDir()
		write(t, filepath.Join(elsewhere, "auth-2.0.wasm"), b)
		swapSymlink(t, filepath.Join(elsewhere, "auth-2.0.wasm"), filepath.Join(h.dir, "auth.wasm"))
		got := h.collect(t)
		if len(got) != 1 || got[0].Kind != types.SourceFailed || !errors.Is(got[0].Err, ErrOutsideDir) {
			t.Fatalf("after the swap: %v, want one refusal", summaries(got))
		}
	})

	t.Run("ConfigMap volume swaps ..data", func(t *testing.T) {
		h := startDir(t, DirConfig{})
		// kubelet's layout: NAME -> ..data/NAME, ..data -> ..<timestamp>.
		mkdir(t, filepath.Join(h.dir, "..2026_11_25_1"))
		write(t, filepath.Join(h.dir, "..2026_11_25_1", "auth.wasm"), a)
		write(t, filepath.Join(h.dir, "..2026_11_25_1", "auth.yaml"), []byte("required: true\n"))
		symlink(t, "..2026_11_25_1", filepath.Join(h.dir, "..data"))
		symlink(t, "..data/auth.wasm", filepath.Join(h.dir, "auth.wasm"))
		symlink(t, "..data/auth.yaml", filepath.Join(h.dir, "auth.yaml"))
		got := summaries(h.collect(t))
		want := []string{changed("auth", a), `settings auth "required: true\n"`}
		if !slices.Equal(got, want) {
			t.Fatalf("first version: %v, want %v", got, want)
		}

		mkdir(t, filepath.Join(h.dir, "..2026_11_25_2"))
		write(t, filepath.Join(h.dir, "..2026_11_25_2", "auth.wasm"), b)
		write(t, filepath.Join(h.dir, "..2026_11_25_2", "auth.yaml"), []byte("required: true\n"))
		swapSymlink(t, "..2026_11_25_2", filepath.Join(h.dir, "..data"))
		if err := os.RemoveAll(filepath.Join(h.dir, "..2026_11_25_1")); err != nil {
			t.Fatal(err)
		}
		if got := summaries(h.collect(t)); !slices.Equal(got, []string{changed("auth", b)}) {
			t.Fatalf("after the swap: %v, want only the new module", got)
		}
	})

	t.Run("watched directory is a symlink that is swapped", func(t *testing.T) {
		base := t.TempDir()
		v1, v2 := filepath.Join(base, "v1"), filepath.Join(base, "v2")
		mkdir(t, v1)
		mkdir(t, v2)
		write(t, filepath.Join(v1, "auth.wasm"), a)
		write(t, filepath.Join(v1, "logging.wasm"), a)
		write(t, filepath.Join(v2, "auth.wasm"), b)
		link := filepath.Join(base, "filters.d")
		symlink(t, v1, link)
		h := startDir(t, DirConfig{Dir: link})
		got := summaries(h.collect(t))
		want := []string{changed("auth", a), changed("logging", a)}
		if !slices.Equal(got, want) {
			t.Fatalf("before the swap: %v, want %v", got, want)
		}

		swapSymlink(t, v2, link)
		got = summaries(h.collect(t))
		want = []string{changed("auth", b), "module-removed logging"}
		if !slices.Equal(got, want) {
			t.Fatalf("after the swap: %v, want %v", got, want)
		}
	})
}

func TestDirStartCreatesDir(t *testing.T) {
	a, _ := modules(t)
	dir := filepath.Join(t.TempDir(), "not", "yet", "filters.d")
	h := startDir(t, DirConfig{Dir: dir})
	for deadline := time.Now().Add(eventWait); ; {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created", dir)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	write(t, filepath.Join(dir, "auth.wasm"), a)
	if got := summaries(h.collect(t)); !slices.Equal(got, []string{changed("auth", a)}) {
		t.Fatalf("events: %v", got)
	}
}

func TestDirStartFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "filters.d")
	write(t, file, nil)
	err := NewDir(DirConfig{Dir: file, Log: zaptest.NewLogger(t)}, make(chan types.Event)).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Start on a regular file = %v, want an error naming it", err)
	}
}

// BenchmarkDirWriteToEvent measures from writing a 2 MB module (a new one
// each time) to its event on the channel, with a 5 ms debounce included.
func BenchmarkDirWriteToEvent(b *testing.B) {
	const debounce = 5 * time.Millisecond
	base := wasmtest.Module(b, helloPkg)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "warmup.wasm"), base, 0o644); err != nil {
		b.Fatal(err)
	}
	events := make(chan types.Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewDir(DirConfig{Dir: dir, Debounce: debounce}, events).Start(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// A file present at start is reported once the watch is up.
	select {
	case <-events:
	case <-time.After(eventWait):
		b.Fatal("no event for the module present at start")
	}
	b.SetBytes(int64(len(base)))
	i := 0
	for b.Loop() {
		i++
		mod := withCustomSection(base, "n", []byte(fmt.Sprint(i)))
		if err := os.WriteFile(filepath.Join(dir, "auth.wasm"), mod, 0o644); err != nil {
			b.Fatal(err)
		}
		select {
		case ev := <-events:
			if ev.Digest != types.DigestOf(mod) {
				b.Fatalf("event for %s, want %s", ev.Digest.Short(), types.DigestOf(mod).Short())
			}
		case <-time.After(eventWait):
			b.Fatal("no event")
		}
	}
}
