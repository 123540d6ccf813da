package server

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestCodec: whatever the codec encodes decodes to the message it was
// given, and a large response's resource bytes are referenced, not copied.
func TestCodec(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, referenceFrom)
	tests := []struct {
		name       string
		msg        proto.Message
		referenced bool
	}{
		{name: "large response", referenced: true, msg: &discovery.DiscoveryResponse{
			VersionInfo: "v1", TypeUrl: ecds, Nonce: "7", Canary: true,
			ControlPlane: &core.ControlPlane{Identifier: "wasmfleet"},
			Resources: []*anypb.Any{
				{TypeUrl: ecds, Value: big},
				{TypeUrl: ecds},
				{Value: []byte("no type")},
				{TypeUrl: ecds, Value: []byte{1}},
			},
		}},
		{name: "large delta response", referenced: true, msg: &discovery.DeltaDiscoveryResponse{
			SystemVersionInfo: "v1", TypeUrl: ecds, Nonce: "7", RemovedResources: []string{"gone"},
			ControlPlane: &core.ControlPlane{Identifier: "wasmfleet"},
			Resources: []*discovery.Resource{
				{Name: "slot.0", Version: "h~auth@1", Aliases: []string{"a"}, Ttl: durationpb.New(time.Second), Resource: &anypb.Any{TypeUrl: ecds, Value: big}},
				{Resource: &anypb.Any{TypeUrl: ecds}},
				{Name: "slot.1", Resource: &anypb.Any{Value: []byte("no type")}},
			},
		}},
		{name: "delta response with a resource without its Any", msg: &discovery.DeltaDiscoveryResponse{
			TypeUrl: ecds, Resources: []*discovery.Resource{
				{Name: "slot.0", Resource: &anypb.Any{TypeUrl: ecds, Value: big}},
				{Name: "alias only", Aliases: []string{"a"}},
			},
		}},
		{name: "small delta response", msg: &discovery.DeltaDiscoveryResponse{TypeUrl: ecds, Resources: []*discovery.Resource{{Name: "s", Resource: &anypb.Any{TypeUrl: ecds, Value: []byte{1}}}}}},
		{name: "small response", msg: &discovery.DiscoveryResponse{VersionInfo: "v1", TypeUrl: ecds, Resources: []*anypb.Any{{TypeUrl: ecds, Value: []byte{1}}}}},
		{name: "empty response", msg: &discovery.DiscoveryResponse{VersionInfo: "v2", TypeUrl: ecds, Nonce: "3"}},
		{name: "request", msg: &discovery.DiscoveryRequest{TypeUrl: ecds, ErrorDetail: &status.Status{Code: 3, Message: "nack"}}},
	}
	c := newCodec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.msg.ProtoReflect().New().Interface()
			if err := c.Unmarshal(out, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.msg) {
				t.Errorf("round trip gave %v, want %v", got, tt.msg)
			}
			referenced := false
			for _, b := range out {
				if d := b.ReadOnlyData(); len(d) == len(big) && &d[0] == &big[0] {
					referenced = true
				}
			}
			if referenced != tt.referenced {
				t.Errorf("resource bytes referenced: %v, want %v", referenced, tt.referenced)
			}
			out.Free()
		})
	}
}

// BenchmarkMarshal encodes a response carrying one 2.4 MB module, and one
// just under referenceFrom, with gRPC's proto codec and with ours.
//
//	go test -run '^$' -bench Marshal -benchmem ./controlplane/server/
func BenchmarkMarshal(b *testing.B) {
	for _, size := range []int{2_400_000, referenceFrom - 1} {
		resp := &discovery.DiscoveryResponse{VersionInfo: "v1", TypeUrl: ecds, Resources: []*anypb.Any{{TypeUrl: ecds, Value: bytes.Repeat([]byte{0xab}, size)}}}
		ours := newCodec()
		for _, c := range []struct {
			name string
			c    interface {
				Marshal(any) (mem.BufferSlice, error)
			}
		}{{"proto", ours.proto}, {"wasmfleet", ours}} {
			b.Run(fmt.Sprintf("bytes=%d/%s", size, c.name), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					out, err := c.c.Marshal(resp)
					if err != nil {
						b.Fatal(err)
					}
					out.Free()
				}
			})
		}
	}
}
