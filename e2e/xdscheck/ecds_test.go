package xdscheck

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// FuzzSplitExtension: the aliasing decoder reads what proto.Unmarshal
// reads, whatever the bytes.
func FuzzSplitExtension(f *testing.F) {
	for _, tec := range []*core.TypedExtensionConfig{wasm(slot(0), "auth", "a1"), noop(canary(3)), {}} {
		b, err := proto.Marshal(tec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// The same field twice: proto merges (or the last wins).
		f.Add(append(append([]byte{}, b...), b...))
		// An unknown field.
		f.Add(protowire.AppendString(protowire.AppendTag(append([]byte{}, b...), 9, protowire.BytesType), "x"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &core.TypedExtensionConfig{}
		werr := proto.Unmarshal(b, want)
		got, err := splitExtension(b)
		if werr != nil || err != nil {
			return // both may refuse; the model then NACKs, as Envoy would
		}
		if got.GetName() != want.GetName() || !proto.Equal(got.GetTypedConfig(), want.GetTypedConfig()) {
			t.Errorf("splitExtension = %v, proto.Unmarshal = %v", got, want)
		}
	})
}

// TestSplitExtensionAliases: a slot's module is not copied.
func TestSplitExtensionAliases(t *testing.T) {
	b, err := proto.Marshal(wasm(slot(0), "auth", "a1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := splitExtension(b)
	if err != nil {
		t.Fatal(err)
	}
	v := got.GetTypedConfig().GetValue()
	if len(v) == 0 || &v[0] != &b[len(b)-len(v)] {
		t.Error("typed_config value is a copy, want a slice of the resource's bytes")
	}
}
