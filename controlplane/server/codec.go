package server

import (
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// referenceFrom is the size of a response's resources from which codec
// references their bytes instead of copying them: below it, the proto
// codec's one copy costs little (BenchmarkMarshal: ~12 us at 64 KiB) and
// the response stays one buffer rather than a buffer per field.
const referenceFrom = 64 << 10

// codec is gRPC's proto codec, except that a large DiscoveryResponse or
// DeltaDiscoveryResponse is encoded without copying its resources' bytes:
// the encoding refers to them. The xDS cache shares one encoding of each
// resource among every node that gets it, so copying it into each node's
// message (what the proto codec does) was the control plane's largest cost
// on an inline push in a CPU profile: a 2.4 MB copy per node
// (BenchmarkMarshal: 133 us per 2.4 MB response with the proto codec, 2 us
// with this one). Protobuf lets fields come in any order, so the response's
// other fields are encoded first and each resource follows, its Any's value
// last.
type codec struct{ proto encoding.CodecV2 }

var _ encoding.CodecV2 = codec{}

func newCodec() codec { return codec{proto: encoding.GetCodecV2(encproto.Name)} }

// Name is the proto codec's: clients see no difference.
func (c codec) Name() string { return c.proto.Name() }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch r := v.(type) {
	case *discovery.DiscoveryResponse:
		if referable(r.GetResources()) {
			return byReference(r, r.GetResources(), false, func(a *anypb.Any) ([]byte, *anypb.Any, error) { return nil, a, nil })
		}
	case *discovery.DeltaDiscoveryResponse:
		anys := make([]*anypb.Any, len(r.GetResources()))
		for i, res := range r.GetResources() {
			if res == nil || len(res.ProtoReflect().GetUnknown()) != 0 {
				return c.proto.Marshal(v)
			}
			anys[i] = res.GetResource()
		}
		if referable(anys) {
			// Each Resource is its name and version, then its Any.
			return byReference(r, r.GetResources(), true, func(res *discovery.Resource) ([]byte, *anypb.Any, error) {
				head, err := marshalWithout(res, resourceField)
				return head, res.GetResource(), err
			})
		}
	}
	return c.proto.Marshal(v)
}

// byReference encodes m with its field 2 (resources, in both responses)
// last, each resource from what split returns: a DiscoveryResponse's
// resource is the Any itself; with wrap, each is a message whose other
// fields encode to head and whose field 2 is the Any (a delta Resource).
func byReference[R any](m proto.Message, resources []R, wrap bool, split func(R) (head []byte, a *anypb.Any, err error)) (mem.BufferSlice, error) {
	b, err := marshalWithout(m, resourcesField)
	if err != nil {
		return nil, err
	}
	out := mem.BufferSlice{mem.SliceBuffer(b)}
	for _, r := range resources {
		head, a, err := split(r)
		if err != nil {
			return nil, err
		}
		typeURL, value := a.GetTypeUrl(), a.GetValue()
		var n int
		if typeURL != "" {
			n += protowire.SizeTag(anyTypeURLField) + protowire.SizeBytes(len(typeURL))
		}
		if len(value) != 0 {
			n += protowire.SizeTag(anyValueField) + protowire.SizeBytes(len(value))
		}
		p := protowire.AppendTag(nil, resourcesField, protowire.BytesType)
		if wrap {
			p = protowire.AppendVarint(p, uint64(len(head)+protowire.SizeTag(resourceField)+protowire.SizeBytes(n)))
			p = append(p, head...)
			p = protowire.AppendTag(p, resourceField, protowire.BytesType)
		}
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

// marshalWithout encodes every field of m but the one numbered skip,
// sharing (not copying) the values of the others.
func marshalWithout(m proto.Message, skip protowire.Number) ([]byte, error) {
	src := m.ProtoReflect()
	dst := src.New()
	skipped := src.Descriptor().Fields().ByNumber(skip)
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != skipped {
			dst.Set(fd, v)
		}
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	return proto.Marshal(dst.Interface())
}

// Field numbers: resources in DiscoveryResponse and DeltaDiscoveryResponse,
// resource in a delta Resource, and those of google.protobuf.Any.
const (
	resourcesField  protowire.Number = 2
	resourceField   protowire.Number = 2
	anyTypeURLField protowire.Number = 1
	anyValueField   protowire.Number = 2
)

// referable says whether resources are worth encoding by reference: they
// are large, and each is a plain Any (no unknown fields to carry along).
func referable(resources []*anypb.Any) bool {
	size := 0
	for _, a := range resources {
		if a == nil || len(a.ProtoReflect().GetUnknown()) != 0 {
			return false
		}
		size += len(a.GetValue())
	}
	return size >= referenceFrom
}
