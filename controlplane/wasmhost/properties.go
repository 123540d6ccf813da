package wasmhost

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"time"
)

// splitPath turns a guest's property path (segments separated by NUL) into
// its segments.
func splitPath(path []byte) []string {
	return strings.Split(strings.TrimSuffix(string(path), "\x00"), "\x00")
}

// propertyKey is the "."-joined form PluginConfig.Properties uses.
func propertyKey(path []byte) string {
	return strings.Join(splitPath(path), ".")
}

// property resolves proxy_get_property the way Envoy does for the
// attributes wasmfleet's filters read; anything else is NotFound. Lookup
// order: values the stream's filters set, the stream's and the plugin's
// configured properties, then the computed attributes.
func (p *Plugin) property(path []byte) ([]byte, bool) {
	seg := splitPath(path)
	key := strings.Join(seg, ".")
	s := p.stream()
	if s != nil {
		if v, ok := s.props[key]; ok {
			return v, true
		}
		if v, ok := s.info.Properties[key]; ok {
			return v, true
		}
	}
	if v, ok := p.cfg.Properties[key]; ok {
		return v, true
	}
	switch key {
	case "plugin_name":
		return []byte(p.cfg.Name), true
	case "plugin_root_id":
		return []byte(p.cfg.RootID), true
	case "plugin_vm_id":
		return []byte(p.cfg.VMID), true
	}
	if s == nil {
		return nil, false
	}
	return s.property(seg, p.cfg.Clock)
}

// property computes the request.*, response.*, source.* and destination.*
// attributes from the stream's headers and info.
func (s *HTTPStream) property(seg []string, clock func() time.Time) ([]byte, bool) {
	if len(seg) < 2 {
		return nil, false
	}
	switch seg[0] {
	case "request":
		return s.requestProperty(seg[1:], clock)
	case "response":
		return s.responseProperty(seg[1:])
	case "source":
		return addressProperty(s.info.Source, seg[1:])
	case "destination":
		return addressProperty(s.info.Destination, seg[1:])
	case "xds":
		return s.xdsProperty(seg[1:])
	}
	return nil, false
}

func (s *HTTPStream) requestProperty(seg []string, clock func() time.Time) ([]byte, bool) {
	h := s.requestHeaders
	switch seg[0] {
	case "headers":
		return headersProperty(h, seg[1:])
	case "time":
		return int64Bytes(s.info.Start.UnixNano()), true
	case "duration":
		return int64Bytes(int64(clock().Sub(s.info.Start))), true
	case "size":
		return int64Bytes(int64(s.requestBody.total)), true
	case "protocol":
		return stringProperty(s.info.Protocol)
	}
	if h == nil {
		return nil, false
	}
	switch seg[0] {
	case "path":
		return headerProperty(h, ":path")
	case "url_path":
		path, _ := h.Get(":path")
		u, _, _ := strings.Cut(path, "?")
		return []byte(u), true
	case "query":
		path, _ := h.Get(":path")
		_, q, _ := strings.Cut(path, "?")
		return []byte(q), true
	case "host":
		return headerProperty(h, ":authority")
	case "scheme":
		return headerProperty(h, ":scheme")
	case "method":
		return headerProperty(h, ":method")
	case "referer":
		return headerProperty(h, "referer")
	case "useragent":
		return headerProperty(h, "user-agent")
	case "id":
		return headerProperty(h, "x-request-id")
	}
	return nil, false
}

func (s *HTTPStream) responseProperty(seg []string) ([]byte, bool) {
	switch seg[0] {
	case "headers":
		return headersProperty(s.responseHeaders, seg[1:])
	case "trailers":
		return headersProperty(s.responseTrailers, seg[1:])
	case "size":
		return int64Bytes(int64(s.responseBody.total)), true
	case "code":
		if s.responseHeaders != nil {
			if v, ok := s.responseHeaders.Get(":status"); ok {
				if code, err := strconv.Atoi(v); err == nil {
					return int64Bytes(int64(code)), true
				}
			}
		}
		if s.local != nil {
			return int64Bytes(int64(s.local.Status)), true
		}
	case "code_details":
		if s.local != nil {
			return []byte(s.local.Details), true
		}
	}
	return nil, false
}

// headersProperty is a whole map (serialized pairs) or one header (its
// values joined with ",", as Envoy's header wrapper does).
func headersProperty(h *Headers, seg []string) ([]byte, bool) {
	if h == nil {
		return nil, false
	}
	switch len(seg) {
	case 0:
		return encodePairs(h.kv), true
	case 1:
		v := h.Values(seg[0])
		if v == nil {
			return nil, false
		}
		return []byte(strings.Join(v, ",")), true
	}
	return nil, false
}

func headerProperty(h *Headers, name string) ([]byte, bool) {
	v, ok := h.Get(name)
	return []byte(v), ok
}

func stringProperty(v string) ([]byte, bool) {
	return []byte(v), v != ""
}

func addressProperty(addr string, seg []string) ([]byte, bool) {
	if addr == "" {
		return nil, false
	}
	switch seg[0] {
	case "address":
		return []byte(addr), true
	case "port":
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, false
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return nil, false
		}
		return int64Bytes(int64(n)), true
	}
	return nil, false
}

// int64Bytes is Envoy's encoding of integers, timestamps (ns since the
// epoch) and durations (ns): 8 bytes, little endian.
func int64Bytes(v int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(v))
}
