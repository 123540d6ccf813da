package sdk

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Header returns the value of the header name in headers, compared without
// regard to case (HTTP/2 and Envoy use lower case; tests and HTTP/1 clients
// may not). With repeated headers the first wins.
func Header(headers [][2]string, name string) (string, bool) {
	for _, h := range headers {
		// The length test first: most names differ in length, and a call is
		// dear in a wasm guest.
		if len(h[0]) == len(name) && (h[0] == name || EqualFoldASCII(h[0], name)) {
			return h[1], true
		}
	}
	return "", false
}

// RequestHeader returns the current request's header name (any case).
// A header that is absent or empty reports false, as Envoy does.
func RequestHeader(name string) (string, bool) {
	v, err := proxywasm.GetHttpRequestHeader(LowerASCII(name))
	return v, err == nil && v != ""
}

// ResponseHeader returns the current response's header name (any case).
func ResponseHeader(name string) (string, bool) {
	v, err := proxywasm.GetHttpResponseHeader(LowerASCII(name))
	return v, err == nil && v != ""
}

// QueryParam returns the first value of the query parameter name in path
// (a ":path" pseudo-header such as "/a?x=1&y=%20"), percent-decoded with '+'
// as space. A malformed escape leaves the value as it was sent.
func QueryParam(path, name string) (string, bool) {
	_, query, ok := strings.Cut(path, "?")
	if !ok {
		return "", false
	}
	query, _, _ = strings.Cut(query, "#")
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		key, value, _ := strings.Cut(pair, "=")
		if isParam(key, name) {
			if v, ok := unescape(value); ok {
				return v, true
			}
			return value, true
		}
	}
	return "", false
}

// WithoutQueryParam returns path with every pair of the query parameter
// name removed (matched as QueryParam matches it) and whether there was one.
// The other pairs keep their order and encoding; a query left empty loses
// its '?'. Filters use it to keep a credential sent in the query away from
// the upstream and its access logs.
func WithoutQueryParam(path, name string) (string, bool) {
	if _, found := QueryParam(path, name); !found {
		return path, false // the common case: nothing to build
	}
	base, query, _ := strings.Cut(path, "?")
	query, fragment, hasFragment := strings.Cut(query, "#")
	kept := make([]byte, 0, len(path))
	kept = append(kept, base...)
	sep := byte('?')
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if key, _, _ := strings.Cut(pair, "="); !isParam(key, name) {
			kept = append(append(kept, sep), pair...)
			sep = '&'
		}
	}
	if hasFragment {
		kept = append(append(kept, '#'), fragment...)
	}
	return string(kept), true
}

// isParam reports whether a query key, as sent or percent-decoded, is name.
func isParam(key, name string) bool {
	k, ok := unescape(key)
	return ok && k == name || key == name
}

// ParseHex decodes hexadecimal text (either case), refusing anything else.
// It exists so that filters need not import encoding/hex, whose error type
// formats with fmt and so links fmt and reflect (~0.3 MB) into a module.
func ParseHex(s string) ([]byte, bool) {
	if len(s)%2 != 0 {
		return nil, false
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

// unescape percent-decodes s ('+' is a space); ok is false for a bad escape.
func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ErrorBody renders the JSON body of a local error response:
// {"error":"<code>","detail":"<detail>"}; detail is omitted when empty.
func ErrorBody(code, detail string) []byte {
	b := make([]byte, 0, 32+len(code)+len(detail))
	b = append(b, `{"error":`...)
	b = jsonv.AppendString(b, code)
	if detail != "" {
		b = append(b, `,"detail":`...)
		b = jsonv.AppendString(b, detail)
	}
	return append(b, '}')
}

// SendError answers the current request from the proxy with status and the
// JSON body ErrorBody(code, detail), "content-type: application/json" and any
// extra headers (e.g. www-authenticate). The caller then returns
// types.ActionPause from its callback: the request goes no further.
func SendError(status uint32, code, detail string, extra ...[2]string) error {
	headers := make([][2]string, 0, len(extra)+1)
	headers = append(headers, [2]string{"content-type", "application/json"})
	headers = append(headers, extra...)
	return proxywasm.SendHttpResponse(status, headers, ErrorBody(code, detail), -1)
}

// ValidHeaderName reports whether name is an HTTP header name (an RFC 9110
// token), optionally with the leading ':' of an HTTP/2 pseudo-header. Use it
// to validate header names in configuration.
func ValidHeaderName(name string) bool {
	name = strings.TrimPrefix(name, ":")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// LowerASCII lower-cases the ASCII letters of s, the way HTTP header names
// are compared. It avoids strings.ToLower, whose Unicode tables weigh tens
// of kilobytes in a module; header names are ASCII tokens anyway.
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// EqualFoldASCII compares header names without regard to ASCII case (see
// LowerASCII for why not strings.EqualFold).
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
