package loadgen

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
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

// testModule is a stand-in for a 2.4 MB inline module; variant i differs
// from it in its last byte only, as a rebuilt module differs in a section.
func testModule(i byte) []byte {
	m := bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00"), 300_000)
	m[len(m)-1] = i
	return m
}

func moduleAny(t testing.TB, name string, module []byte) *anypb.Any {
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

func decode[M proto.Message](t testing.TB, c codec, sent M) M {
	t.Helper()
	got := sent.ProtoReflect().New().Interface().(M)
	if err := c.Unmarshal(chunks(t, sent), got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestCodecDecodesAsProto: both response types decode to what the proto
// codec makes of them, every field kept, large and small resources alike.
func TestCodecDecodesAsProto(t *testing.T) {
	sotw := &discovery.DiscoveryResponse{
		VersionInfo:  "v7",
		Resources:    []*anypb.Any{moduleAny(t, "a", testModule(1)), moduleAny(t, "b", testModule(2)), {TypeUrl: "type.googleapis.com/empty"}},
		TypeUrl:      "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
		Nonce:        "n1",
		ControlPlane: &core.ControlPlane{Identifier: "wasmfleet"},
	}
	delta := &discovery.DeltaDiscoveryResponse{
		SystemVersionInfo: "v8",
		Resources: []*discovery.Resource{
			{Name: "a", Version: "ka", Resource: moduleAny(t, "a", testModule(1)), Aliases: []string{"x"}, Ttl: durationpb.New(5)},
			{Name: "small", Version: "ks", Resource: moduleAny(t, "small", []byte("\x00asm\x01\x00\x00\x00"))},
			{Name: "gone-soon", Version: "kg"},
		},
		TypeUrl:          "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
		RemovedResources: []string{"b"},
		Nonce:            "n2",
	}
	c := newCodec()
	for _, want := range []proto.Message{sotw, delta} {
		if got := decode(t, c, want); !proto.Equal(got, want) {
			t.Errorf("%T decoded differs from what was sent", want)
		}
	}
}

// TestCodecHoldsEachValueOnce: a module received by many nodes is held in
// memory once, and a module differing in one byte is held apart.
func TestCodecHoldsEachValueOnce(t *testing.T) {
	c := newCodec()
	a1 := decode(t, c, &discovery.DiscoveryResponse{Resources: []*anypb.Any{moduleAny(t, "a", testModule(1))}})
	a2 := decode(t, c, &discovery.DiscoveryResponse{Resources: []*anypb.Any{moduleAny(t, "a", testModule(1))}})
	b := decode(t, c, &discovery.DiscoveryResponse{Resources: []*anypb.Any{moduleAny(t, "a", testModule(2))}})
	v1, v2, vb := a1.GetResources()[0].GetValue(), a2.GetResources()[0].GetValue(), b.GetResources()[0].GetValue()
	if &v1[0] != &v2[0] {
		t.Error("the same module received twice is held twice")
	}
	if &v1[0] == &vb[0] || bytes.Equal(v1, vb) {
		t.Error("a module differing in its last byte was taken for the one before it")
	}
}

// TestCodecReusesNothingItReturned: the buffer a response is gathered into
// is reused for the next one, so no decoded message may point into it.
// Each response decoded earlier must still hold what was sent after others
// of the same size went through the same codec.
func TestCodecReusesNothingItReturned(t *testing.T) {
	c := newCodec()
	var sent, got []proto.Message
	for i := range 4 {
		resources := []*anypb.Any{
			moduleAny(t, fmt.Sprintf("m%d", i), testModule(byte(i))),
			moduleAny(t, fmt.Sprintf("s%d", i), []byte{0, 'a', 's', 'm', byte(i)}),
		}
		for _, m := range []proto.Message{
			&discovery.DiscoveryResponse{VersionInfo: fmt.Sprint(i), Resources: resources},
			&discovery.DeltaDiscoveryResponse{SystemVersionInfo: fmt.Sprint(i), Resources: []*discovery.Resource{
				{Name: "m", Resource: resources[0]}, {Name: "s", Resource: resources[1]},
			}},
		} {
			sent, got = append(sent, m), append(got, decode(t, c, m))
		}
	}
	for i := range sent {
		if !proto.Equal(got[i], sent[i]) {
			t.Errorf("response %d changed after later responses were decoded", i)
		}
	}
}

// TestCodecHoldsABoundedNumber: more distinct modules than values keeps are
// each decoded correctly, and the table stays at its bound.
func TestCodecHoldsABoundedNumber(t *testing.T) {
	c := newCodec()
	for i := range valuesKeep + 5 {
		want := &discovery.DiscoveryResponse{Resources: []*anypb.Any{moduleAny(t, "a", testModule(byte(i)))}}
		if got := decode(t, c, want); !proto.Equal(got, want) {
			t.Fatalf("module %d decoded wrong", i)
		}
	}
	if n := len(c.values.held); n != valuesKeep {
		t.Errorf("%d values held, want %d", n, valuesKeep)
	}
}

// TestCodecRefusesMalformed: what the codec cannot decode faithfully is an
// error, not a response with parts missing.
func TestCodecRefusesMalformed(t *testing.T) {
	good, err := proto.Marshal(&discovery.DiscoveryResponse{VersionInfo: "v1", Resources: []*anypb.Any{moduleAny(t, "a", testModule(1))}})
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

// BenchmarkUnmarshal compares decoding a response with one 2.4 MB module,
// the same one each time as a fleet receives it, with gRPC's proto codec
// and with the load generator's.
//
//	go test -run '^$' -bench Unmarshal ./e2e/loadgen/
func BenchmarkUnmarshal(b *testing.B) {
	data := chunks(b, &discovery.DiscoveryResponse{VersionInfo: "v1", Resources: []*anypb.Any{moduleAny(b, "a", testModule(1))}})
	fleet := newCodec()
	for _, c := range []struct {
		name string
		c    interface {
			Unmarshal(mem.BufferSlice, any) error
		}
	}{{"proto", fleet.proto}, {"fleet", fleet}} {
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

// TestCodecHoldsOnceWhenDecodedAtOnce: connections that decode the same new
// module at the same moment end up with one held copy between them.
func TestCodecHoldsOnceWhenDecodedAtOnce(t *testing.T) {
	c := newCodec()
	sent := &discovery.DiscoveryResponse{Resources: []*anypb.Any{moduleAny(t, "a", testModule(1))}}
	const n = 8
	got := make([]*discovery.DiscoveryResponse, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		data := chunks(t, sent)
		wg.Go(func() {
			<-start
			got[i] = &discovery.DiscoveryResponse{}
			if err := c.Unmarshal(data, got[i]); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(c.values.held) != 1 {
		t.Errorf("%d values held after %d decodes of one module", len(c.values.held), n)
	}
	first := got[0].GetResources()[0].GetValue()
	for i, r := range got {
		if v := r.GetResources()[0].GetValue(); &v[0] != &first[0] {
			t.Errorf("decode %d holds its own copy", i)
		}
	}
}
