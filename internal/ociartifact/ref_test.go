package ociartifact

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestParseRef(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name string
		in   string
		want Ref
	}{
		{name: "tag", in: "oci://ghcr.io/acme/filters/auth:1.2.0", want: Ref{Registry: "ghcr.io", Repository: "acme/filters/auth", Tag: "1.2.0"}},
		{name: "port and tag", in: "oci://127.0.0.1:5000/auth:latest", want: Ref{Registry: "127.0.0.1:5000", Repository: "auth", Tag: "latest"}},
		{name: "localhost", in: "oci://localhost/auth:v1", want: Ref{Registry: "localhost", Repository: "auth", Tag: "v1"}},
		{name: "digest", in: "oci://reg.example/auth@sha256:" + hex, want: Ref{Registry: "reg.example", Repository: "auth", Digest: "sha256:" + hex}},
		{name: "port and digest", in: "oci://reg.example:443/a/b@sha256:" + hex, want: Ref{Registry: "reg.example:443", Repository: "a/b", Digest: "sha256:" + hex}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %s, want %s", got, tt.in)
			}
			// Plain is what cosign, crane and oras parse (go-containerregistry's
			// and oras' reference grammar): no scheme, same repository and pin.
			plain, err := name.ParseReference(got.Plain(), name.StrictValidation)
			if err != nil {
				t.Fatalf("Plain() = %s does not parse as a docker reference: %v", got.Plain(), err)
			}
			if plain.Context().RegistryStr() != tt.want.Registry || plain.Context().RepositoryStr() != tt.want.Repository ||
				plain.Identifier() != tt.want.Tag+tt.want.Digest {
				t.Fatalf("Plain() = %s reads as %s", got.Plain(), plain)
			}
		})
	}
}

func TestParseRepository(t *testing.T) {
	tests := []struct {
		name, in string
		want     Ref
		wantErr  bool
	}{
		{name: "registry and path", in: "ghcr.io/acme/signatures", want: Ref{Registry: "ghcr.io", Repository: "acme/signatures"}},
		{name: "port", in: "127.0.0.1:5000/sigs", want: Ref{Registry: "127.0.0.1:5000", Repository: "sigs"}},
		{name: "implicit docker hub", in: "acme/signatures", wantErr: true},
		{name: "a tag", in: "ghcr.io/acme/sigs:1", wantErr: true},
		{name: "a scheme", in: "oci://ghcr.io/acme/sigs", wantErr: true},
		{name: "no repository", in: "ghcr.io/", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRepository(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadRef) || !strings.Contains(err.Error(), tt.in) {
					t.Fatalf("err = %v, want %v naming %q", err, ErrBadRef, tt.in)
				}
				return
			}
			if err != nil || got != tt.want || got.Plain() != tt.in {
				t.Fatalf("got %+v (%v), Plain %s; want %+v", got, err, got.Plain(), tt.want)
			}
		})
	}
}

func TestParseRefRefuses(t *testing.T) {
	hex := strings.Repeat("a", 64)
	tests := []struct {
		name, in, wantMsg string
	}{
		{name: "no scheme", in: "ghcr.io/a:1", wantMsg: "must start with oci://"},
		{name: "other scheme", in: "docker://ghcr.io/a:1", wantMsg: "must start with oci://"},
		{name: "no repository", in: "oci://ghcr.io", wantMsg: "want REGISTRY/REPOSITORY"},
		{name: "implicit docker hub", in: "oci://library/nginx:1", wantMsg: "registry host must be explicit"},
		{name: "no tag", in: "oci://ghcr.io/a", wantMsg: "no implicit latest"},
		{name: "colon in a path element is not a tag", in: "oci://ghcr.io/a:1/b", wantMsg: "no implicit latest"},
		{name: "tag and digest", in: "oci://ghcr.io/a:1@sha256:" + hex, wantMsg: "not both"},
		{name: "sha512 digest", in: "oci://ghcr.io/a@sha512:" + hex, wantMsg: "sha256:HEX"},
		{name: "short digest", in: "oci://ghcr.io/a@sha256:abc", wantMsg: "sha256:HEX"},
		{name: "upper-case repository", in: "oci://ghcr.io/Auth:1", wantMsg: "repository"},
		{name: "bad tag", in: "oci://ghcr.io/a:x!y", wantMsg: "tag"},
		{name: "empty tag", in: "oci://ghcr.io/a:", wantMsg: "tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRef(tt.in)
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("err = %v, want %v", err, ErrBadRef)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantMsg)
			}
		})
	}
}

// FuzzParseRef: any string parses or is refused with ErrBadRef, never
// panics, and what parses prints back to a reference that parses the same.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"oci://ghcr.io/acme/auth:1.2.0",
		"oci://127.0.0.1:5000/auth@sha256:" + strings.Repeat("a", 64),
		"oci://localhost/a/b/c:v",
		"oci://ghcr.io/a:1@sha256:" + strings.Repeat("a", 64),
		"oci://[::1]:5000/a:1",
		"oci://",
		"oci:///:",
		"oci://a.b/@",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("%q: error without ErrBadRef: %v", s, err)
			}
			return
		}
		if (r.Tag == "") == (r.Digest == "") {
			t.Fatalf("%q: want exactly one of tag and digest: %+v", s, r)
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, r.String(), again, err, r)
		}
	})
}
