package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// TestProblems: a refused file lists every problem, schema and value alike,
// each with file, line, column and field path, in line order.
func TestProblems(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		want   string // the whole report; empty: the file is accepted
		wantIs []error
	}{
		{
			name: "unknown field with a suggestion",
			yaml: `filters:
  - name: auth
  - name: log
    rollout:
      intervall: 5m
`,
			want:   `wasmfleet.yaml:5:7: filters[1].rollout.intervall: unknown field (did you mean "interval"?)`,
			wantIs: []error{ErrUnknownField},
		},
		{
			name: "wrong types at nested paths",
			yaml: `listen: [a]
filters:
  - name: a
    required: maybe
    rollout: {percent: ten, interval: 30}
`,
			want: `wasmfleet.yaml:1:9: listen: wrong type: want a mapping, got a list
wasmfleet.yaml:4:15: filters[0].required: wrong type: want true or false, got "maybe"
wasmfleet.yaml:5:24: filters[0].rollout.percent: wrong type: want an integer, got "ten"
wasmfleet.yaml:5:39: filters[0].rollout.interval: invalid value: want a duration such as "5s", got 30`,
			wantIs: []error{ErrType, ErrInvalidValue},
		},
		{
			name: "every problem in line order, schema and value alike",
			yaml: `listen:
  xds: nonsense
filters:
  - name: auth
  - name: log
    rollout:
      intervall: 5m
      percent: 150
      steps: [10, "50", 100]
mode: both
limits: {debounce: 5 s}
`,
			want: `wasmfleet.yaml:2:3: listen.xds: invalid address: "nonsense": address nonsense: missing port in address
wasmfleet.yaml:7:7: filters[1].rollout.intervall: unknown field (did you mean "interval"?)
wasmfleet.yaml:8:7: filters[1].rollout.percent: out of range: 150 (0..100)
wasmfleet.yaml:9:19: filters[1].rollout.steps[1]: wrong type: want an integer, got "50"
wasmfleet.yaml:10:1: mode: invalid value: "both" (want "managed" or "ecds")
wasmfleet.yaml:11:20: limits.debounce: invalid value: time: unknown unit " s" in duration "5 s"`,
			wantIs: []error{ErrAddress, ErrUnknownField, ErrOutOfRange, ErrType, ErrInvalidValue},
		},
		{
			name: "push window limits",
			yaml: `limits:
  push_window: 0
  push_hold_timeout: 0s
`,
			want: `wasmfleet.yaml:2:3: limits.push_window: out of range: 0: at least 1
wasmfleet.yaml:3:3: limits.push_hold_timeout: out of range: must be positive`,
			wantIs: []error{ErrOutOfRange},
		},
		{
			name: "push window set, the other limits kept",
			yaml: "limits: {push_window: 8}\n",
		},
		{
			name:   "syntax error with its line",
			yaml:   "listen:\n  xds: 127.0.0.1:18000\n\tadmin: 127.0.0.1:18002\n",
			want:   `wasmfleet.yaml:3:1: not valid YAML: found a tab character that violates indentation`,
			wantIs: []error{ErrSyntax},
		},
		{
			name: "duplicate keys, in the plugin configuration too",
			yaml: `mode: ecds
mode: managed
filters: [{name: a, config: {k: 1, k: 2}}]
`,
			want: `wasmfleet.yaml:2:1: mode: duplicate key (first at line 1)
wasmfleet.yaml:3:36: filters[0].config.k: duplicate key (first at line 3)`,
			wantIs: []error{ErrDuplicateKey},
		},
		{
			name: "value problems at their field, or the closest one written",
			yaml: `trust:
  require_signature: true
managed:
  listeners:
    - {name: in, address: "0.0.0.0:10000", routes: [{prefix: "/", cluster: nowhere}]}
`,
			want: `wasmfleet.yaml:1:1: trust.keys: required: a signature is required but no key is trusted
wasmfleet.yaml:5:67: managed.listeners[0].routes[0].cluster: refers to an undefined name: "nowhere"`,
			wantIs: []error{ErrRequired, ErrUnknownRef},
		},
		{
			name: "what follows from a refused value is not reported again",
			yaml: "filters: [auth, {name: log}]\n",
			want: `wasmfleet.yaml:1:11: filters[0]: wrong type: want a mapping, got "auth"`,
		},
		{
			name: "YAML 1.1 booleans and numbers as strings mean what they always did",
			yaml: "filters: [{name: a, required: yes, root_id: 123, vm: {env: {GOGC: 50}}}]\n",
		},
		{
			name: "the plugin configuration is free-form",
			yaml: "filters: [{name: a, config: {anything: {nested: [1, {x: y}]}, intervall: on}}]\n",
		},
		{
			name: "merge keys are checked as the entry they merge into",
			yaml: `filters:
  - &base {name: a, rollout: {steps: [10, 100]}}
  - <<: *base
    name: b
  - <<: *base
    nme: c
`,
			want: `wasmfleet.yaml:6:5: filters[2].nme: unknown field (did you mean "name"?)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile("wasmfleet.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want:\n%s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tt.want)
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("error does not wrap %v", want)
				}
			}
		})
	}
}

// TestLoadProblems: Load names the file on every line.
func TestLoadProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmfleet.yaml")
	if err := os.WriteFile(path, []byte("mode: nope\nwatch_dirr: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + `:1:1: mode: invalid value: "nope" (want "managed" or "ecds")` + "\n" +
		path + `:2:1: watch_dirr: unknown field (did you mean "watch_dir"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestFilterSettingsProblems: a NAME.yaml's problems name that file and the
// fields as the file writes them (no filters[i] prefix).
func TestFilterSettingsProblems(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{
			name: "schema and value problems",
			yaml: "name: other\nfailur_policy: FAIL_OPEN\nrollout:\n  percent: 250\n  by: everyone\n",
			want: `filters.d/auth.yaml:1:1: name: invalid value: "other", but the file names filter "auth"
filters.d/auth.yaml:2:1: failur_policy: unknown field (did you mean "failure_policy"?)
filters.d/auth.yaml:4:3: rollout.percent: out of range: 250 (0..100)
filters.d/auth.yaml:5:3: rollout.by: invalid value: "everyone" (want node or request)`,
		},
		{
			name: "wrong type",
			yaml: "vm: {env: [GOGC]}\npoll_interval: {s: 5}\n",
			want: `filters.d/auth.yaml:1:11: vm.env: wrong type: want a mapping, got a list
filters.d/auth.yaml:2:16: poll_interval: invalid value: want a duration such as "5s", got {"s":5}`,
		},
		{
			name: "syntax",
			yaml: "rollout:\n  percent: 10\n   by: node\n",
			want: `filters.d/auth.yaml:3:1: not valid YAML: mapping values are not allowed in this context`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFilterSettings("filters.d/auth.yaml", Filter{Name: "auth"}, []byte(tt.yaml))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

// FuzzParse: Parse never panics; whatever it refuses it refuses as
// Problems, and a problem about a field the document writes has a line;
// and what the decoder and Validate accepted before this check existed is
// still accepted.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "mode: ecds\n", "filters: [{name: a, rollout: {intervall: 5m}}]\n",
		"filters:\n  - &b {name: a}\n  - <<: *b\n    name: c\n",
		"filters: [{name: a, config: {k: [1, {x: y}]}}]\nlimits: {debounce: 1s}\n",
		"listen: [a]\nmode: [b]\n", "a: &a [*a]\n", "filters: [auth]\nmode: x\nmode: y\n",
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile(filepath.Join("..", "..", "docs", "wasmfleet.example.yaml")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse(b)
		old := Default()
		if yaml.UnmarshalStrict(b, &old) == nil && old.Validate() == nil && err != nil {
			t.Fatalf("refused what the decoder and Validate accept:\n%v", err)
		}
		if err == nil {
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("error is not Problems: %v", err)
		}
		var top map[string]any
		_ = yamlv3.Unmarshal(b, &top)
		for _, p := range ps {
			name, _, _ := strings.Cut(p.Path, ".")
			name, _, _ = strings.Cut(name, "[")
			_, written := top[name]
			schema := errors.Is(p, ErrUnknownField) || errors.Is(p, ErrType) || errors.Is(p, ErrDuplicateKey)
			if p.Line < 1 && (written || schema) {
				t.Fatalf("problem without a line: %q\nin:\n%s", p.Error(), b)
			}
		}
	})
}
