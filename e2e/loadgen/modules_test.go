package loadgen

import (
	"bytes"
	"slices"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// TestModuleCheck: every inline module gets its own sha256, whether it was
// hashed or found equal to one hashed before, including modules of equal
// length that differ in one byte.
func TestModuleCheck(t *testing.T) {
	base := bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00"), 1000)
	flipped := bytes.Clone(base)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name    string
		modules [][]byte
	}{
		{name: "one module", modules: [][]byte{base}},
		{name: "same module twice, separate copies", modules: [][]byte{base, bytes.Clone(base)}},
		{name: "same length, last byte differs", modules: [][]byte{base, flipped, base}},
		{name: "more distinct modules than remembered", modules: func() [][]byte {
			var out [][]byte
			for i := range verifiedKeep + 3 {
				m := bytes.Clone(base)
				m[100] = byte(i)
				out = append(out, m, m)
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m moduleCheck
			for i, code := range tt.modules {
				ext := xdstest.Wasm(t, "slot", xdstest.Filter{Name: "f", Inline: code})
				a, err := anypb.New(ext)
				if err != nil {
					t.Fatal(err)
				}
				got, err := m.digests(&discovery.DiscoveryResponse{Resources: []*anypb.Any{a}})
				if err != nil {
					t.Fatal(err)
				}
				if want := types.DigestOf(code); len(got) != 1 || got[0] != want {
					t.Fatalf("module %d: digests %v, want [%s]", i, got, want)
				}
			}
		})
	}
}

// TestModuleCheckRefuses: a resource that does not decode is an error.
func TestModuleCheckRefuses(t *testing.T) {
	var m moduleCheck
	bad := &anypb.Any{TypeUrl: "type.googleapis.com/" + string((&core.TypedExtensionConfig{}).ProtoReflect().Descriptor().FullName()), Value: []byte{0xff}}
	if _, err := m.digests(&discovery.DiscoveryResponse{Resources: []*anypb.Any{bad}}); err == nil {
		t.Error("an undecodable filter config was accepted")
	}
}

// TestModuleCheckKinds: remote code gives its declared sha256, a slot
// without Wasm gives nothing, and the digests come sorted.
func TestModuleCheckKinds(t *testing.T) {
	inline := []byte("\x00asm\x01\x00\x00\x00inline")
	remote := types.DigestOf([]byte("remote"))
	var rs []*anypb.Any
	for _, ext := range []*core.TypedExtensionConfig{
		xdstest.Wasm(t, "slot.0", xdstest.Filter{Name: "a", Inline: inline}),
		xdstest.Noop(t, "slot.1"),
		xdstest.Wasm(t, "slot.2", xdstest.Filter{Name: "b", ModuleBaseURL: "http://127.0.0.1:1", Digest: remote}),
	} {
		a, err := anypb.New(ext)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, a)
	}
	var m moduleCheck
	got, err := m.digests(&discovery.DiscoveryResponse{Resources: rs})
	if err != nil {
		t.Fatal(err)
	}
	want := []types.Digest{types.DigestOf(inline), remote}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("digests %v, want %v", got, want)
	}
}
