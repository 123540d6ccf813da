package wasmhost

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// xdsProperty serves xds.route_name and xds.route_metadata[.field...] from
// StreamInfo.Route, as Envoy's XDSWrapper (source/extensions/filters/common/
// expr/context.cc) hands them to Context::getProperty
// (source/extensions/common/wasm/context.cc): the route name as a string,
// the metadata as a protobuf message. getProperty then walks the rest of
// the path: a message by field name, a map by key, a list by index; and
// serializeValue encodes what it ends on: a message in protobuf binary, a
// map (filter_metadata, a google.protobuf.Struct) as proxy-wasm pairs of
// key and encoded value, a list as pairs of encoded item and "", a string
// as its bytes, a number as 8 little-endian bytes (a Struct number is a
// double), a bool as one byte. A JSON null cannot be serialized
// (SerializationFailure in Envoy; NotFound here).
func (s *HTTPStream) xdsProperty(seg []string) ([]byte, bool) {
	if s.info.Route == nil {
		return nil, false
	}
	r := s.info.Route()
	if r == nil {
		return nil, false
	}
	switch seg[0] {
	case "route_name":
		if len(seg) == 1 {
			return []byte(r.Name), true
		}
	case "route_metadata":
		if r.Metadata == nil {
			return nil, false
		}
		v, ok := walk(r.Metadata.ProtoReflect(), seg[1:])
		if !ok {
			return nil, false
		}
		return serializeValue(v)
	}
	return nil, false
}

// A value as Envoy's CEL layer presents it: string, []byte, int64, uint64,
// float64, bool, nil (null), map[string]any, []any, or a
// protoreflect.Message (any message but the JSON-like well-known types,
// which CEL turns into maps, lists and scalars).

// walk follows path from message m the way Context::getProperty does.
func walk(m protoreflect.Message, path []string) (any, bool) {
	v := celMessage(m)
	for _, part := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, false
			}
		case protoreflect.Message:
			fd := x.Descriptor().Fields().ByName(protoreflect.Name(part))
			if fd == nil {
				return nil, false
			}
			v = celField(x, fd)
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func celField(m protoreflect.Message, fd protoreflect.FieldDescriptor) any {
	switch {
	case fd.IsMap():
		out := map[string]any{}
		m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			out[k.String()] = celScalar(v, fd.MapValue())
			return true
		})
		return out
	case fd.IsList():
		l := m.Get(fd).List()
		out := make([]any, l.Len())
		for i := range out {
			out[i] = celScalar(l.Get(i), fd)
		}
		return out
	}
	return celScalar(m.Get(fd), fd)
}

func celScalar(v protoreflect.Value, fd protoreflect.FieldDescriptor) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return celMessage(v.Message())
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return v.Bytes()
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.EnumKind:
		return int64(v.Enum())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return v.Uint()
	}
	return v.Int()
}

// celMessage turns the JSON-like well-known types into CEL values, as
// CelProtoWrapper does; other messages stay messages.
func celMessage(m protoreflect.Message) any {
	switch x := m.Interface().(type) {
	case *structpb.Struct:
		return celJSON(structpb.NewStructValue(x))
	case *structpb.ListValue:
		return celJSON(structpb.NewListValue(x))
	case *structpb.Value:
		return celJSON(x)
	}
	return m
}

func celJSON(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return k.NumberValue
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		out := make(map[string]any, len(k.StructValue.GetFields()))
		for name, f := range k.StructValue.GetFields() {
			out[name] = celJSON(f)
		}
		return out
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			out[i] = celJSON(e)
		}
		return out
	}
	return nil // null
}

// serializeValue follows Envoy's serializeValue (context.cc). Map entries
// come in key order (Envoy's order is the map's iteration order).
func serializeValue(v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return []byte(x), true
	case []byte:
		return x, true
	case int64:
		return int64Bytes(x), true
	case uint64:
		return binary.LittleEndian.AppendUint64(nil, x), true
	case float64:
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(x)), true
	case bool:
		if x {
			return []byte{1}, true
		}
		return []byte{0}, true
	case protoreflect.Message:
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(x.Interface())
		return b, err == nil
	case map[string]any:
		pairs := make([][2]string, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			b, ok := serializeValue(x[k])
			if !ok {
				return nil, false
			}
			pairs = append(pairs, [2]string{k, string(b)})
		}
		return encodePairs(pairs), true
	case []any:
		pairs := make([][2]string, 0, len(x))
		for _, e := range x {
			b, ok := serializeValue(e)
			if !ok {
				return nil, false
			}
			pairs = append(pairs, [2]string{string(b), ""})
		}
		return encodePairs(pairs), true
	}
	return nil, false
}
