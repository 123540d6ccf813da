package loadgen

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// module is a stand-in for a 2.4 MB inline module.
var module = bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00"), 300_000)

func moduleAny(t testing.TB, name string) *anypb.Any {
	t.Helper()
	a, err := anypb.New(xdstest.Wasm(t, name, xdstest.Filter{Name: name, Inline: module}))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// chunks encodes m and hands it over in pieces, as gRPC's transport does.
func chunks(t testing.TB, m proto.Message) mem.BufferSlice {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out mem.BufferSlice
	for len(b) > 0 {
		n := min(len(b), 16<<10)
		out = append(out, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	return out
}

// TestCodecDecodesAsProto: both response types decode to what the proto
// codec makes of them, every field kept.
func TestCodecDecodesAsProto(t *testing.T) {
	sotw := &discovery.DiscoveryResponse{
		VersionInfo:  "v7",
		Resources:    []*anypb.Any{moduleAny(t, "a"), moduleAny(t, "b"), {TypeUrl: "type.googleapis.com/empty"}},
		TypeUrl:      "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
		Nonce:        "n1",
		ControlPlane: &core.ControlPlane{Identifier: "wasmfleet"},
	}
	delta := &discovery.DeltaDiscoveryResponse{
		SystemVersionInfo: "v8",
		Resources: []*discovery.Resource{
			{Name: "a", Version: "ka", Resource: moduleAny(t, "a"), Aliases: []string{"x"}, Ttl: durationpb.New(5)},
			{Name: "gone-soon", Version: "kg"},
		},
		TypeUrl:          "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
		RemovedResources: []string{"b"},
		Nonce:            "n2",
	}
	for _, want := range []proto.Message{sotw, delta} {
		got := want.ProtoReflect().New().Interface()
		if err := newCodec().Unmarshal(chunks(t, want), got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%T decoded differs from what was sent", want)
		}
	}
}

// TestCodecAliasesModules: decoding a response with a 2.4 MB module
// allocates the message once, not once more for each resource's value.
func TestCodecAliasesModules(t *testing.T) {
	resp := &discovery.DiscoveryResponse{VersionInfo: "v1", Resources: []*anypb.Any{moduleAny(t, "a")}}
	data := chunks(t, resp)
	size := uint64(data.Len())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := &discovery.DiscoveryResponse{}
	if err := newCodec().Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size+size/10 {
		t.Errorf("decoding a %d-byte response allocated %d bytes, want about one copy", size, alloc)
	}
	if len(got.GetResources()) != 1 || !bytes.Contains(got.GetResources()[0].GetValue(), module) {
		t.Errorf("the module did not survive decoding")
	}
}

// TestCodecRefusesMalformed: what the codec cannot decode faithfully is an
// error, not a response with parts missing.
func TestCodecRefusesMalformed(t *testing.T) {
	good, err := proto.Marshal(&discovery.DiscoveryResponse{VersionInfo: "v1", Resources: []*anypb.Any{moduleAny(t, "a")}})
	if err != nil {
		t.Fatal(err)
	}
	// An Any carrying a field Any does not define.
	odd := protowire.AppendTag(nil, anyValue, protowire.BytesType)
	odd = protowire.AppendBytes(odd, []byte("x"))
	odd = protowire.AppendTag(odd, 9, protowire.VarintType)
	odd = protowire.AppendVarint(odd, 1)
	extra := protowire.AppendTag(nil, responseResources, protowire.BytesType)
	extra = protowire.AppendBytes(extra, odd)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{name: "truncated", b: good[:len(good)-100], want: "discovery response"},
		{name: "any with an unknown field", b: extra, want: "unexpected field 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(tt.b)}, &discovery.DiscoveryResponse{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkUnmarshal compares decoding a response with one 2.4 MB module
// with gRPC's proto codec and with the load generator's.
//
//	go test -run '^$' -bench Unmarshal ./e2e/loadgen/
func BenchmarkUnmarshal(b *testing.B) {
	resp := &discovery.DiscoveryResponse{VersionInfo: "v1", Resources: []*anypb.Any{moduleAny(b, "a")}}
	data := chunks(b, resp)
	for _, c := range []struct {
		name string
		c    interface {
			Unmarshal(mem.BufferSlice, any) error
		}
	}{{"proto", newCodec().proto}, {"aliasing", newCodec()}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(data.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.c.Unmarshal(data, &discovery.DiscoveryResponse{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
