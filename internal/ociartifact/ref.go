package ociartifact

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Scheme prefixes every registry reference in configuration and on the
// command line.
const Scheme = "oci://"

// ErrBadRef: a string is not an oci://REGISTRY/REPO:TAG or
// oci://REGISTRY/REPO@sha256:HEX reference.
var ErrBadRef = errors.New("bad oci reference")

// Ref is a parsed oci:// reference: a repository in a registry and either a
// tag (which may move) or a manifest digest (which never does).
type Ref struct {
	// Registry is host[:port], always explicit: a reference never silently
	// means Docker Hub.
	Registry string
	// Repository is the path inside the registry, e.g. "filters/auth".
	Repository string
	// Tag is empty when the reference is pinned by Digest.
	Tag string
	// Digest is "sha256:HEX" for a pinned reference, else empty.
	Digest string
}

// ParseRef parses oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:HEX.
// The registry must be explicit (it contains a dot or a port, or is
// localhost) and so must the tag: there is no implicit "latest".
func ParseRef(s string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%w: %q: %s", ErrBadRef, s, why)
	}
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return bad("must start with " + Scheme)
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || path == "" {
		return bad("want REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:HEX")
	}
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return bad("the registry host must be explicit (a domain, host:port or localhost)")
	}
	var r Ref
	if at := strings.LastIndexByte(path, '@'); at >= 0 {
		d, err := types.ParseDigest(path[at+1:])
		if err != nil || !strings.HasPrefix(path[at+1:], "sha256:") {
			return bad("the digest must be sha256:HEX (64 lower-case hex characters)")
		}
		r.Digest = "sha256:" + string(d)
		path = path[:at]
		if strings.Contains(path[strings.LastIndexByte(path, '/')+1:], ":") {
			return bad("give a tag or a digest, not both")
		}
	} else if colon := strings.LastIndexByte(path, ':'); colon > strings.LastIndexByte(path, '/') {
		r.Tag = path[colon+1:]
		path = path[:colon]
	} else {
		return bad("a tag or a digest is required (there is no implicit latest)")
	}
	r.Registry, r.Repository = host, path
	// go-containerregistry decides what is a valid registry, repository and
	// tag; StrictValidation stops it from filling in defaults.
	if _, err := r.name(false); err != nil {
		return bad(err.Error())
	}
	return r, nil
}

// String is the reference as ParseRef reads it (a repository alone, from
// ParseRepository, has neither tag nor digest).
func (r Ref) String() string {
	return Scheme + r.Plain()
}

// Plain is the reference without the oci:// scheme, REGISTRY/REPO@sha256:HEX
// or REGISTRY/REPO:TAG, the form cosign, crane, oras and docker read.
func (r Ref) Plain() string {
	s := r.Registry + "/" + r.Repository
	switch {
	case r.Digest != "":
		return s + "@" + r.Digest
	case r.Tag != "":
		return s + ":" + r.Tag
	}
	return s
}

// ParseRepository parses REGISTRY/REPO, a repository with neither scheme,
// tag nor digest: the form of COSIGN_REPOSITORY, where cosign keeps
// signatures when they do not live beside the artifact. The registry must
// be explicit, as in ParseRef.
func ParseRepository(s string) (Ref, error) {
	host, path, ok := strings.Cut(s, "/")
	if !ok || path == "" || strings.Contains(s, "://") || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		return Ref{}, fmt.Errorf("%w: repository %q: want REGISTRY/REPOSITORY with an explicit registry host and no scheme", ErrBadRef, s)
	}
	if _, err := name.NewRepository(s, name.StrictValidation); err != nil || strings.ContainsAny(path, ":@") {
		return Ref{}, fmt.Errorf("%w: repository %q: not REGISTRY/REPOSITORY (no tag or digest)", ErrBadRef, s)
	}
	return Ref{Registry: host, Repository: path}, nil
}

// Pinned returns the reference to digest ("sha256:HEX") in r's repository.
func (r Ref) Pinned(digest string) Ref {
	return Ref{Registry: r.Registry, Repository: r.Repository, Digest: digest}
}

// withTag returns the reference to tag in r's repository.
func (r Ref) withTag(tag string) Ref {
	return Ref{Registry: r.Registry, Repository: r.Repository, Tag: tag}
}

func (r Ref) name(insecure bool) (name.Reference, error) {
	opts := []name.Option{name.StrictValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	s := r.Registry + "/" + r.Repository
	if r.Digest != "" {
		return name.NewDigest(s+"@"+r.Digest, opts...)
	}
	return name.NewTag(s+":"+r.Tag, opts...)
}
