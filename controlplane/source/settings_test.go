package source

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// TestDirSettingsBeforeTheirModule: a filter's settings file is reported
// before its module, both when both are there at start and when the
// settings file is still being written as the module settles, so the module
// is never admitted with other settings than the file's.
func TestDirSettingsBeforeTheirModule(t *testing.T) {
	a, _ := modules(t)
	settings := []byte("config: {greeting: written}\n")
	want := []string{`settings auth "config: {greeting: written}\n"`, changed("auth", a)}
	tests := []struct {
		name     string
		debounce time.Duration
		// write puts auth.wasm and auth.yaml into dir: before the
		// source starts when atStart is set, else while it runs.
		write   func(t *testing.T, dir string)
		atStart bool
	}{
		{
			name:    "both present at start",
			atStart: true,
			write: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "auth.wasm"), a)
				write(t, filepath.Join(dir, "auth.yaml"), settings)
			},
		},
		{
			name: "settings still being written when the module settles",
			// Long enough that the rewrites below, well inside it, keep the
			// settings file pending even on a loaded machine.
			debounce: 200 * time.Millisecond,
			write: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "auth.wasm"), a)
				for range 10 {
					write(t, filepath.Join(dir, "auth.yaml"), settings)
					time.Sleep(40 * time.Millisecond) // a slow writer, not a wait for the source
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "filters.d")
			mkdir(t, dir)
			if tt.atStart {
				tt.write(t, dir)
			}
			h := startDir(t, DirConfig{Dir: dir, Debounce: tt.debounce})
			if !tt.atStart {
				h.collect(t)
				tt.write(t, dir)
			}
			var got []string
			for _, ev := range h.waitFor(t, 2) {
				got = append(got, summary(ev))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("events in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestDirUnusableSettingsRemoved: a settings file reported unusable and then
// removed is reported removed, so the filter does not wait for it for ever;
// a good file after an unusable one is reported too.
func TestDirUnusableSettingsRemoved(t *testing.T) {
	h := startDir(t, DirConfig{})
	h.collect(t)
	path := filepath.Join(h.dir, "auth.yaml")
	mkdir(t, path)
	if got := summaries(h.collect(t)); len(got) != 1 || !strings.HasPrefix(got[0], "failed auth") {
		t.Fatalf("events = %q, want auth's settings failed", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := summaries(h.collect(t)); !slices.Equal(got, []string{"settings auth removed"}) {
		t.Fatalf("events after the removal = %q", got)
	}

	mkdir(t, path)
	h.collect(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write(t, path, []byte("failure_policy: FAIL_OPEN\n"))
	var evs []types.Event
	for _, ev := range h.collect(t) {
		if ev.Kind == types.SettingsChanged {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 || string(evs[len(evs)-1].Settings) != "failure_policy: FAIL_OPEN\n" {
		t.Fatalf("the good file was not reported: %q", summaries(evs))
	}
}
