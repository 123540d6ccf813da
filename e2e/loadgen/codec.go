package loadgen

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// codec is gRPC's proto codec, except that a discovery response's resources
// are held once per distinct encoding across the whole fleet. Thousands of
// simulated nodes receive the same few 2.4 MB modules; decoding each copy
// into fresh memory (protobuf copies every bytes field) was, after the
// kernel's copy, the load generator's largest cost, and it runs on the same
// cores as the control plane it measures: page faults on every new buffer,
// and garbage collection of 2.4 GB per change at 1,000 nodes. Here a
// response is gathered into a reused buffer, each resource's Any value is
// looked up among the values seen before (equal bytes, so the decoded
// message is what proto.Unmarshal makes of it), and only a value not seen
// before is copied out. The buffer is reused once Unmarshal returns: no
// decoded message points into it.
type codec struct {
	proto  encoding.CodecV2
	values *values
	bufs   *sync.Pool // *[]byte, grown as needed, never cleared
}

var _ encoding.CodecV2 = codec{}

func newCodec() codec {
	return codec{
		proto:  encoding.GetCodecV2(encproto.Name),
		values: &values{seed: maphash.MakeSeed(), keep: valuesKeep},
		bufs:   &sync.Pool{New: func() any { return new([]byte) }},
	}
}

// Name is the proto codec's: the server sees no difference.
func (c codec) Name() string { return c.proto.Name() }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	var decode func([]byte) error
	switch m := v.(type) {
	case *discovery.DiscoveryResponse:
		decode = func(b []byte) error { return c.decodeResponse(b, m) }
	case *discovery.DeltaDiscoveryResponse:
		decode = func(b []byte) error { return c.decodeDeltaResponse(b, m) }
	default:
		return c.proto.Unmarshal(data, v)
	}
	buf := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(buf)
	if n := data.Len(); cap(*buf) < n {
		*buf = make([]byte, n)
	} else {
		*buf = (*buf)[:n]
	}
	data.CopyTo(*buf)
	return decode(*buf)
}

// Field numbers of the repeated resources and of the Any inside a delta
// Resource, read from the generated descriptors.
var (
	responseResources      = number(&discovery.DiscoveryResponse{}, "resources")
	deltaResponseResources = number(&discovery.DeltaDiscoveryResponse{}, "resources")
	resourceAny            = number(&discovery.Resource{}, "resource")
)

// decodeResponse decodes b into m, its resources' values held by c.values.
func (c codec) decodeResponse(b []byte, m *discovery.DiscoveryResponse) error {
	rest, items, err := split(b, responseResources)
	if err != nil {
		return fmt.Errorf("discovery response: %w", err)
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	for _, item := range items {
		a, err := c.decodeAny(item)
		if err != nil {
			return fmt.Errorf("discovery response: resource: %w", err)
		}
		m.Resources = append(m.Resources, a)
	}
	return nil
}

// decodeDeltaResponse decodes b into m, the Any of each of its resources
// held by c.values.
func (c codec) decodeDeltaResponse(b []byte, m *discovery.DeltaDiscoveryResponse) error {
	rest, items, err := split(b, deltaResponseResources)
	if err != nil {
		return fmt.Errorf("delta discovery response: %w", err)
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	for _, item := range items {
		rest, anys, err := split(item, resourceAny)
		if err != nil {
			return fmt.Errorf("delta discovery response: resource: %w", err)
		}
		r := &discovery.Resource{}
		if err := proto.Unmarshal(rest, r); err != nil {
			return err
		}
		if len(anys) > 0 {
			// Proto merges repeated occurrences of a singular message;
			// servers send one, and the last one wins here.
			if r.Resource, err = c.decodeAny(anys[len(anys)-1]); err != nil {
				return fmt.Errorf("delta discovery response: resource %q: %w", r.GetName(), err)
			}
		}
		m.Resources = append(m.Resources, r)
	}
	return nil
}

// split separates the occurrences of length-delimited field num in the
// encoded message b (returned as subslices of b) from its other fields
// (returned re-encoded in a new, small buffer).
func split(b []byte, num protowire.Number) (rest []byte, items [][]byte, err error) {
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, nil, protowire.ParseError(tagLen)
		}
		l := protowire.ConsumeFieldValue(n, typ, b[tagLen:])
		if l < 0 {
			return nil, nil, protowire.ParseError(l)
		}
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[tagLen:])
			items = append(items, v)
		} else {
			rest = append(rest, b[:tagLen+l]...)
		}
		b = b[tagLen+l:]
	}
	return rest, items, nil
}

// decodeAny decodes an encoded Any, its value held by c.values. An Any with
// a field Any does not define is an error, not a field silently dropped.
func (c codec) decodeAny(b []byte) (*anypb.Any, error) {
	a := &anypb.Any{}
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, protowire.ParseError(tagLen)
		}
		if (n != anyTypeURL && n != anyValue) || typ != protowire.BytesType {
			return nil, fmt.Errorf("any: unexpected field %d (wire type %d)", n, typ)
		}
		v, l := protowire.ConsumeBytes(b[tagLen:])
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		if n == anyTypeURL {
			a.TypeUrl = string(v)
		} else {
			a.Value = c.values.get(v)
		}
		b = b[tagLen+l:]
	}
	return a, nil
}

// Bounds of values.
const (
	// valuesMin is the smallest value held: listeners, routes and
	// clusters are copied, which costs less than looking them up.
	valuesMin = 64 << 10
	// valuesKeep is how many distinct values are held: a few filters, a
	// stable and a candidate version each, and then some. An older value
	// is dropped from the table, not from the messages that hold it.
	valuesKeep = 32
)

// values holds one copy of each distinct large value seen recently, found by
// a hash of its bytes and confirmed by comparing them.
type values struct {
	seed maphash.Seed
	keep int

	mu   sync.Mutex
	held []heldValue // oldest first
}

type heldValue struct {
	hash uint64
	b    []byte
}

// get returns a slice equal to b that does not alias it: the held copy when
// one is, or a new copy, then held. Many connections decode the same new
// module at once; the first to hold it wins, and the others take its copy.
func (t *values) get(b []byte) []byte {
	if len(b) < valuesMin {
		return bytes.Clone(b)
	}
	h := maphash.Bytes(t.seed, b)
	t.mu.Lock()
	held := slices.Clone(t.held)
	t.mu.Unlock()
	// Compared outside the lock: a hit, the usual case, reads 2.4 MB.
	if v, ok := find(held, h, b); ok {
		return v
	}
	v := bytes.Clone(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := find(t.held, h, b); ok {
		return w // held by another connection meanwhile
	}
	if len(t.held) == t.keep {
		t.held = slices.Delete(t.held, 0, 1)
	}
	t.held = append(t.held, heldValue{hash: h, b: v})
	return v
}

// find returns the value in held equal to b, whose hash is h.
func find(held []heldValue, h uint64, b []byte) ([]byte, bool) {
	for _, v := range held {
		if v.hash == h && bytes.Equal(v.b, b) {
			return v.b, true
		}
	}
	return nil, false
}
