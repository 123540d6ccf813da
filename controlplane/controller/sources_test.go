package controller

import (
	"errors"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// settings sends a NAME.yaml event as the directory source would; nil
// settings report the file removed.
func (h *harness) settings(filter string, yaml []byte) {
	h.events <- types.Event{Kind: types.SettingsChanged, Filter: filter, Settings: yaml,
		Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/" + filter + ".yaml"}}
}

// settled waits until filter either has a candidate or its last error
// contains want, and returns its status.
func (h *harness) settled(filter, want string) FilterStatus {
	h.t.Helper()
	h.wait(filter+" admitted or refused", func() bool {
		st := h.status(filter)
		return st.Candidate != "" || strings.Contains(st.LastError, want)
	})
	return h.status(filter)
}

// TestRefusedSettingsFileHoldsTheModule: while the filter's NAME.yaml is
// refused, its module is not admitted with any other settings (for a new
// filter, the defaults), and the error naming the file stays in its status;
// once the file is fixed the module held back is admitted with exactly the
// settings written there.
func TestRefusedSettingsFileHoldsTheModule(t *testing.T) {
	tests := []struct {
		name    string
		refuse  func(h *harness)
		inError string
	}{
		{
			name:    "does not parse",
			refuse:  func(h *harness) { h.settings("hello", []byte("rollout: {percent: 250}\nfailur_policy: FAIL_OPEN\n")) },
			inError: "filters.d/hello.yaml:1:11: rollout.percent: out of range: 250 (0..100)\nfilters.d/hello.yaml:2:1: failur_policy: unknown field",
		},
		{
			name: "cannot be read",
			refuse: func(h *harness) {
				h.events <- types.Event{Kind: types.SourceFailed, Filter: "hello",
					Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/hello.yaml"},
					Err:    errors.New("source: filters.d/hello.yaml: file too large")}
			},
			inError: "file too large",
		},
		{
			name:    "changes the source",
			refuse:  func(h *harness) { h.settings("hello", []byte("source: oci://localhost:5000/hello:1\n")) },
			inError: "source",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, config.Default(), fleet.Config{})
			h.connect("n1")
			hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
			tt.refuse(h)
			d := h.drop("hello", hello)
			st := h.settled("hello", "not admitted")
			if st.Candidate != "" || st.Stable != "" {
				t.Fatalf("admitted although hello.yaml is refused: %+v", st)
			}
			for _, want := range []string{"filters.d/hello.wasm", "hello.yaml", tt.inError} {
				if !strings.Contains(st.LastError, want) {
					t.Fatalf("last error %q does not name %q", st.LastError, want)
				}
			}
			if h.planned("n1", d) {
				t.Fatal("the module reached a node")
			}
			// Another error meanwhile does not hide the one in force.
			h.events <- types.Event{Kind: types.ModuleRemoved, Filter: "hello",
				Origin: types.Origin{Kind: types.OriginOCI, Ref: "oci://localhost:5000/hello:1"}}
			st = h.settled("hello", "module-removed refused")
			if !strings.Contains(st.LastError, "hello.yaml") || !strings.Contains(st.LastError, tt.inError) {
				t.Fatalf("last error %q no longer names the refused settings file", st.LastError)
			}

			h.settings("hello", []byte("config: {greeting: written}\n"))
			h.wait("the held module admitted", func() bool { return h.status("hello").Candidate == d })
			if st := h.status("hello"); st.LastError != "" {
				t.Fatalf("last error %q after the file was fixed", st.LastError)
			}
			h.wait("the module with the file's settings on n1", func() bool {
				js, _ := h.ecds("n1")
				return h.planned("n1", d) && strings.Contains(js, "written")
			})
		})
	}
}

// TestOneOwningSource: a filter whose config gives a registry source takes
// modules only from that repository; a file of the same name in the watch
// directory neither replaces nor retires it, and a filter of the watch
// directory takes nothing from a registry. Each refusal names the filter and
// both sources.
func TestOneOwningSource(t *testing.T) {
	const ref = "oci://localhost:5000/filters/hello:1"
	cfg := config.Default()
	cfg.Filters = []config.Filter{{Name: "hello", Source: ref}}
	h := newHarness(t, cfg, fleet.Config{})
	h.connect("n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	fromRegistry := func(filter, ref string, module []byte) types.Digest {
		d := types.DigestOf(module)
		h.modules[d] = module
		h.events <- types.Event{Kind: types.ModuleChanged, Filter: filter, Module: module, Digest: d,
			Origin: types.Origin{Kind: types.OriginOCI, Ref: ref}}
		return d
	}
	v1 := fromRegistry("hello", "oci://localhost:5000/filters/hello@sha256:"+strings.Repeat("1", 64), hello)
	h.respond("n1", "hello", v1, "")
	h.wait("v1 stable", func() bool { return h.status("hello").Stable == v1 })

	stray := h.drop("hello", variant(hello, 2))
	st := h.settled("hello", "not the filter's source")
	if st.Candidate != "" || st.Stable != v1 {
		t.Fatalf("a stray file replaced the registry's version: %+v", st)
	}
	for _, want := range []string{"filters.d/hello.wasm", "filter hello", ref} {
		if !strings.Contains(st.LastError, want) {
			t.Fatalf("last error %q does not name %q", st.LastError, want)
		}
	}
	if h.planned("n1", stray) {
		t.Fatal("the stray module reached a node")
	}

	h.events <- types.Event{Kind: types.ModuleRemoved, Filter: "hello",
		Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/hello.wasm"}}
	h.settled("hello", "module-removed refused")
	if st := h.status("hello"); st.Retired || st.Stable != v1 {
		t.Fatalf("a stray file's removal retired the filter: %+v", st)
	}

	other := fromRegistry("hello", "oci://localhost:5000/filters/other@sha256:"+strings.Repeat("2", 64), variant(hello, 3))
	st = h.settled("hello", "filters/other")
	if st.Candidate != "" {
		t.Fatalf("another repository's module was admitted: %+v", st)
	}
	if h.planned("n1", other) {
		t.Fatal("another repository's module reached a node")
	}

	fromRegistry("logging", "oci://localhost:5000/filters/logging@sha256:"+strings.Repeat("3", 64), variant(hello, 4))
	st = h.settled("logging", "the watch directory")
	if st.Candidate != "" || !strings.Contains(st.LastError, "filter logging") {
		t.Fatalf("a registry module was admitted for a filter of the watch directory: %+v", st)
	}
}

// TestEnvOnlySettingsChangeIsAdmitted: the VM's environment feeds the trial
// run, so a settings file that changes only vm.env is checked against the
// running version like any other change: one it fails with is refused.
func TestEnvOnlySettingsChangeIsAdmitted(t *testing.T) {
	h := newHarness(t, config.Default(), fleet.Config{})
	h.connect("n1")
	h.settings("needsenv", []byte("vm: {env: {NEEDSENV: \"on\"}}\n"))
	h.drop("needsenv", wasmtest.Module(t, "controlplane/admission/testdata/guests/needsenv"))
	if st := h.settled("needsenv", "not admitted"); st.Candidate == "" {
		t.Fatalf("not admitted with NEEDSENV=on: %+v", st)
	}
	h.settings("needsenv", []byte("vm: {env: {NEEDSENV: \"off\"}}\n"))
	h.wait("the settings refused", func() bool {
		return strings.Contains(h.status("needsenv").LastError, "does not accept these settings")
	})
}
