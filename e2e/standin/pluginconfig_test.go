package standin

import (
	"encoding/base64"
	"slices"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestGuestSeesConfiguredBytes: two filters run one module with different
// root ids, one with an object plugin configuration and a string VM
// configuration, the other with bytes and an object; the ECDS resources are
// the snapshot builder's. Each guest reads exactly the bytes its filter's
// settings give, under its own root id.
func TestGuestSeesConfiguredBytes(t *testing.T) {
	mod := wasmtest.Module(t, "internal/wasmtest/testdata/echoconfig")
	cfg, err := config.Parse([]byte(`
mode: ecds
filters:
  - name: first
    root_id: first_root
    config: {header: x-id}
    vm: {configuration: warm}
  - name: second
    root_id: second_root
    config_base64: AP8KZWNobw==
    vm: {configuration: {pool: 4}}
`))
	if err != nil {
		t.Fatal(err)
	}
	var filters []config.Filter
	for _, f := range cfg.Filters {
		filters = append(filters, f.WithDefaults())
	}
	nb, err := snapshot.NewBuilder().For(snapshot.Input{
		Mode: config.ModeECDS, Filters: filters,
		Inline: func(wftypes.Digest) ([]byte, error) { return mod, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	d := wftypes.DigestOf(mod)
	s, err := nb.Build(wftypes.Assignment{"first": {Stable: d}, "second": {Stable: d}})
	if err != nil {
		t.Fatal(err)
	}
	var exts []*core.TypedExtensionConfig
	var want []string
	for i, f := range filters {
		tec := proto.Clone(s.GetResources(resource.ExtensionConfigType)[snapshot.ECDSName(f.Name)]).(*core.TypedExtensionConfig)
		tec.Name = []string{slot0, slot1}[i]
		exts = append(exts, tec)
		plugin, _ := f.PluginConfiguration()
		want = append(want, "root_id="+f.RootID+" vm="+base64.StdEncoding.EncodeToString(f.VMConfiguration())+
			" plugin="+base64.StdEncoding.EncodeToString(plugin))
	}

	e := newEnv(t)
	v := e.set(t, exts...)
	n := e.startNode(t, nil)
	addr := listenerAddr(t, n)
	awaitECDS(t, n, v)
	got := get(t, addr, "/").header.Values("x-echoconfig")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the guests read\n%q\nthe settings give\n%q", got, want)
	}
}

// TestAnyBytes follows Envoy's MessageUtil::anyToBytes
// (source/common/protobuf/utility.h): a StringValue's or BytesValue's value,
// and for any other message the Any's serialized value, not JSON.
func TestAnyBytes(t *testing.T) {
	st, err := structpb.NewStruct(map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	structAny, err := anypb.New(st)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  proto.Message
		want []byte
	}{
		{name: "string", msg: wrapperspb.String("echo"), want: []byte("echo")},
		{name: "bytes", msg: wrapperspb.Bytes([]byte{0, 0xff}), want: []byte{0, 0xff}},
		{name: "other message", msg: st, want: structAny.GetValue()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := anypb.New(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := anyBytes(a)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("anyBytes = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
