package admission

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestTrialGetsTheECDSBytes: the guest in the trial run reads exactly the
// plugin configuration, VM configuration and root id that the ECDS resource
// gives Envoy, for every form config: takes.
func TestTrialGetsTheECDSBytes(t *testing.T) {
	mod := wasmtest.Module(t, "internal/wasmtest/testdata/echoconfig")
	d := types.DigestOf(mod)
	tests := []struct {
		name, entry string
	}{
		{name: "object", entry: "config: {header: x-id, keys: [a, b]}\n    vm: {configuration: {pool: 4}}"},
		{name: "string", entry: "config: echo\n    root_id: audit_log\n    vm: {configuration: warm}"},
		{name: "json text in a string", entry: `config: '{"spaced": true}'`},
		{name: "bytes", entry: "config_base64: AP8KZWNobw==\n    root_id: binary_root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("mode: ecds\nfilters:\n  - name: echo\n    " + tt.entry + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			f := cfg.Filters[0].WithDefaults()
			want := ecdsView(t, f, d, mod)

			log, logs := newLogger()
			a := New(Config{Runtime: testRuntime, Log: log, TrialTimeout: testTrialTimeout})
			if _, err := a.Admit(context.Background(), Request{File: "echo.wasm", Filter: f.Name, Module: mod, Settings: f}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range logs.logs.FilterMessage("trial run guest log").All() {
				if msg := e.ContextMap()["msg"].(string); strings.HasPrefix(msg, "echoconfig ") {
					got = append(got, strings.TrimPrefix(msg, "echoconfig "))
				}
			}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("the trial's guest read %q\nthe ECDS resource gives %q", got, want)
			}
		})
	}
}

// ecdsView is what the echoconfig guest reports when Envoy runs the ECDS
// resource the snapshot builder makes for f running mod.
func ecdsView(t *testing.T, f config.Filter, d types.Digest, mod []byte) string {
	t.Helper()
	nb, err := snapshot.NewBuilder().For(snapshot.Input{
		Mode:    config.ModeECDS,
		Filters: []config.Filter{f},
		Inline:  func(types.Digest) ([]byte, error) { return mod, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := nb.Build(types.Assignment{f.Name: {Stable: d}})
	if err != nil {
		t.Fatal(err)
	}
	tec := s.GetResources(resource.ExtensionConfigType)[snapshot.ECDSName(f.Name)].(*core.TypedExtensionConfig)
	var w wasmfilter.Wasm
	if err := tec.GetTypedConfig().UnmarshalTo(&w); err != nil {
		t.Fatal(err)
	}
	pc := w.GetConfig()
	return fmt.Sprintf("root_id=%s vm=%s plugin=%s", pc.GetRootId(),
		wrapped(t, pc.GetVmConfig().GetConfiguration()), wrapped(t, pc.GetConfiguration()))
}

// wrapped is the base64 of the bytes Envoy hands a guest for a
// configuration: a StringValue's or BytesValue's value (anyToBytes).
func wrapped(t *testing.T, a *anypb.Any) string {
	t.Helper()
	if a == nil {
		return ""
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	switch v := m.(type) {
	case *wrapperspb.StringValue:
		return base64.StdEncoding.EncodeToString([]byte(v.GetValue()))
	case *wrapperspb.BytesValue:
		return base64.StdEncoding.EncodeToString(v.GetValue())
	}
	t.Fatalf("configuration is a %s, want a StringValue or BytesValue", a.GetTypeUrl())
	return ""
}
