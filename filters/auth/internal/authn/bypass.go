package authn

import (
	"slices"
	"strings"

	"github.com/wasmfleet/wasmfleet/sdk"
)

// bypass decides which requests skip authentication.
type bypass struct {
	// prefixes are stored without their trailing slash, except "/" itself.
	prefixes []string
	methods  []string
}

func newBypass(b Bypass) bypass {
	out := bypass{methods: b.Methods}
	for _, p := range b.PathPrefixes {
		if p != "/" {
			p = strings.TrimSuffix(p, "/")
		}
		out.prefixes = append(out.prefixes, p)
	}
	return out
}

// matches reports whether a request with this method and :path skips
// authentication.
func (b bypass) matches(method, path string) bool {
	if slices.Contains(b.methods, method) {
		return true
	}
	if len(b.prefixes) == 0 {
		return false
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if !strings.HasPrefix(path, "/") || !cleanPath(path) {
		return false
	}
	for _, p := range b.prefixes {
		if p == "/" || path == p || strings.HasPrefix(path, p) && path[len(p)] == '/' {
			return true
		}
	}
	return false
}

// cleanPath reports whether path has no "." or ".." segment, no empty
// segment ("//"), no backslash and no percent-encoded '.', '/' or '\': the
// forms that an upstream may resolve to a different path than the one the
// prefix was compared with.
func cleanPath(path string) bool {
	if strings.Contains(path, "//") || strings.IndexByte(path, '\\') >= 0 {
		return false
	}
	for i := 0; i+2 < len(path); i++ {
		if path[i] != '%' {
			continue
		}
		switch sdk.LowerASCII(path[i+1 : i+3]) {
		case "2e", "2f", "5c":
			return false
		}
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
