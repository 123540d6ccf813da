package api

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// MinDigestPrefix is the shortest digest prefix accepted where a digest is
// typed. Tables show 12 characters; 4 still rules out most typos matching.
const MinDigestPrefix = 4

// Errors of ResolveDigest, for errors.Is.
var (
	ErrBadDigest       = errors.New("not a digest: want at least 4 hex characters, optionally after sha256:")
	ErrUnknownDigest   = errors.New("no such version")
	ErrAmbiguousDigest = errors.New("ambiguous digest prefix")
)

// ResolveDigest returns the one digest among known that s names: the whole
// digest or a prefix, either with "sha256:" in front. A prefix that starts
// more than one digest is refused with the candidates listed, so a short
// prefix can never pick one version silently.
func ResolveDigest(s string, known []types.Digest) (types.Digest, error) {
	p := strings.TrimPrefix(s, "sha256:")
	if len(p) < MinDigestPrefix || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q: %w", s, ErrBadDigest)
	}
	var found []types.Digest
	for _, d := range known {
		if strings.HasPrefix(string(d), p) && !slices.Contains(found, d) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: %w", p, ErrUnknownDigest)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, d := range found {
		names[i] = d.Short()
		if len(p) >= len(names[i]) {
			names[i] = string(d)
		}
	}
	return "", fmt.Errorf("%s: %w: matches %s", p, ErrAmbiguousDigest, strings.Join(names, ", "))
}
