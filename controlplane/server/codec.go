package server

import (
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// referenceFrom is the size of a response's resources from which codec
// references their bytes instead of copying them: below it, one buffer
// is cheaper than a buffer per resource.
const referenceFrom = 64 << 10

// codec is gRPC's proto codec, except that a large DiscoveryResponse is
// encoded without copying its resources' bytes: the encoding refers to
// them. The xDS cache shares one encoding of each resource among every
// node that gets it, so copying it into each node's message (what the
// proto codec does) was the control plane's largest cost on an inline
// push: a fresh 2.4 MB buffer per node, page-faulted in and written once.
// Protobuf lets fields come in any order, so the response's other fields
// are encoded first and each resource follows as its own Any.
type codec struct{ proto encoding.CodecV2 }

var _ encoding.CodecV2 = codec{}

func newCodec() codec { return codec{proto: encoding.GetCodecV2(encproto.Name)} }

// Name is the proto codec's: clients see no difference.
func (c codec) Name() string { return c.proto.Name() }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*discovery.DiscoveryResponse)
	if !ok || !referable(r) {
		return c.proto.Marshal(v)
	}
	// Every field but resources, sharing (not copying) their values.
	head := &discovery.DiscoveryResponse{}
	dst := head.ProtoReflect()
	src := r.ProtoReflect()
	resources := src.Descriptor().Fields().ByNumber(resourcesField)
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != resources {
			dst.Set(fd, v)
		}
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	b, err := proto.Marshal(head)
	if err != nil {
		return nil, err
	}
	out := mem.BufferSlice{mem.SliceBuffer(b)}
	for _, a := range r.GetResources() {
		typeURL, value := a.GetTypeUrl(), a.GetValue()
		var n int
		if typeURL != "" {
			n += protowire.SizeTag(anyTypeURLField) + protowire.SizeBytes(len(typeURL))
		}
		if len(value) != 0 {
			n += protowire.SizeTag(anyValueField) + protowire.SizeBytes(len(value))
		}
		p := protowire.AppendTag(nil, resourcesField, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(n))
		if typeURL != "" {
			p = protowire.AppendTag(p, anyTypeURLField, protowire.BytesType)
			p = protowire.AppendString(p, typeURL)
		}
		if len(value) == 0 {
			out = append(out, mem.SliceBuffer(p))
			continue
		}
		p = protowire.AppendTag(p, anyValueField, protowire.BytesType)
		p = protowire.AppendVarint(p, uint64(len(value)))
		out = append(out, mem.SliceBuffer(p), mem.SliceBuffer(value))
	}
	return out, nil
}

// Field numbers of DiscoveryResponse.resources and of google.protobuf.Any.
const (
	resourcesField  protowire.Number = 2
	anyTypeURLField protowire.Number = 1
	anyValueField   protowire.Number = 2
)

// referable says whether r is worth encoding by reference: its resources
// are large, and each is a plain Any (no unknown fields to carry along).
func referable(r *discovery.DiscoveryResponse) bool {
	size := 0
	for _, a := range r.GetResources() {
		if a == nil || len(a.ProtoReflect().GetUnknown()) != 0 {
			return false
		}
		size += len(a.GetValue())
	}
	return size >= referenceFrom
}
