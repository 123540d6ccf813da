package config

import (
	"errors"
	"strings"
	"testing"
)

// TestGuestConfiguration: every form config: and vm.configuration take, the
// bytes the guest reads of each, and the refusals, each naming its field.
func TestGuestConfiguration(t *testing.T) {
	tests := []struct {
		name       string
		entry      string // the fields of filters[0] after name
		wantPlugin string
		wantBinary bool
		wantVM     string
		wantErr    error
		wantIn     string
	}{
		{name: "object as JSON", entry: "config: {header: x-id, count: 1}", wantPlugin: `{"count":1,"header":"x-id"}`},
		{name: "array as JSON", entry: "config: [a, 1]", wantPlugin: `["a",1]`},
		{name: "string as it is", entry: "config: echo", wantPlugin: "echo"},
		{name: "quoted JSON text stays text", entry: `config: '{"a": 1}'`, wantPlugin: `{"a": 1}`},
		{name: "block string", entry: "config: |\n      line one\n      line two", wantPlugin: "line one\nline two\n"},
		{name: "number quoted", entry: `config: "42"`, wantPlugin: "42"},
		{name: "bytes", entry: "config_base64: AP8KZWNobw==", wantPlugin: "\x00\xff\necho", wantBinary: true},
		{name: "no configuration", entry: "required: true"},
		{name: "vm string", entry: "vm: {configuration: warm}", wantVM: "warm"},
		{name: "vm object", entry: "vm: {configuration: {pool: 4}}", wantVM: `{"pool":4}`},
		{name: "number", entry: "config: 42", wantErr: ErrPluginConfig, wantIn: "filters[0].config: "},
		{name: "boolean", entry: "config: yes", wantErr: ErrPluginConfig, wantIn: "filters[0].config: "},
		{name: "null", entry: "config: null", wantErr: ErrPluginConfig, wantIn: "filters[0].config: "},
		{name: "both forms", entry: "config: echo\n    config_base64: ZWNobw==", wantErr: ErrInvalidValue, wantIn: "filters[0].config_base64: "},
		{name: "bad base64", entry: "config_base64: '%%%'", wantErr: ErrInvalidValue, wantIn: "filters[0].config_base64: "},
		{name: "vm number", entry: "vm: {configuration: 7}", wantErr: ErrPluginConfig, wantIn: "filters[0].vm.configuration: "},
		{name: "vm secret", entry: "vm: {configuration: {k: {$secret: {env: K}}}}", wantErr: ErrInvalidValue, wantIn: "filters[0].vm.configuration: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte("filters:\n  - name: f\n    " + tt.entry + "\n"))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("err = %v, want %v naming %q", err, tt.wantErr, tt.wantIn)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := cfg.Filters[0]
			plugin, binary := f.PluginConfiguration()
			if string(plugin) != tt.wantPlugin || binary != tt.wantBinary {
				t.Errorf("plugin configuration = %q (binary %v), want %q (binary %v)", plugin, binary, tt.wantPlugin, tt.wantBinary)
			}
			if vm := f.VMConfiguration(); string(vm) != tt.wantVM {
				t.Errorf("vm configuration = %q, want %q", vm, tt.wantVM)
			}
		})
	}
}

// TestFilterSettingsConfigForms: a filters.d/NAME.yaml takes the same forms
// and names itself in errors.
func TestFilterSettingsConfigForms(t *testing.T) {
	f, err := ParseFilterSettings("filters.d/f.yaml", Filter{Name: "f"}, []byte("config: echo\nvm: {configuration: warm}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if plugin, _ := f.PluginConfiguration(); string(plugin) != "echo" || string(f.VMConfiguration()) != "warm" {
		t.Fatalf("plugin %q, vm %q", plugin, f.VMConfiguration())
	}
	_, err = ParseFilterSettings("filters.d/f.yaml", Filter{Name: "f"}, []byte("config: 1.5\n"))
	if !errors.Is(err, ErrPluginConfig) || !strings.Contains(err.Error(), "filters.d/f.yaml:1:1: config: ") {
		t.Fatalf("err = %v", err)
	}
}
