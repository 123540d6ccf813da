package ociartifact

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Artifact is a module read from a registry.
type Artifact struct {
	// ManifestDigest is "sha256:HEX" of what the reference named: Index
	// when there is one, else RawManifest. Signatures name this digest.
	ManifestDigest string
	// Index is the image index the reference named, nil for a plain
	// manifest; RawManifest is then the manifest picked from it.
	Index       []byte
	RawManifest []byte
	Format      Format
	Module      []byte
	// Layer is the compressed layer the module came from, FormatImage only:
	// with Index and RawManifest it lets a signature check redo the binding
	// from the signed digest to the module (CheckModule).
	Layer []byte
	// Manifest is the build manifest from the annotations, if any.
	Manifest *types.Manifest
}

// Resolve returns the manifest digest ("sha256:HEX") ref points at now,
// with one HEAD request. A manifest over MaxManifestBytes is ErrTooLarge.
// Errors from the registry (unreachable, 401, 404) are returned wrapped.
func Resolve(ctx context.Context, ref Ref, rem Remote) (string, error) {
	n, err := ref.name(rem.Insecure)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(n, rem.options(ctx)...)
	if err != nil {
		return "", fmt.Errorf("ociartifact: %s: %w", ref, registryError(err))
	}
	if desc.Size > MaxManifestBytes {
		return "", fmt.Errorf("ociartifact: %s: %w: manifest is %d bytes, the limit is %d", ref, ErrTooLarge, desc.Size, MaxManifestBytes)
	}
	if desc.Digest.Algorithm != "sha256" {
		return "", fmt.Errorf("ociartifact: %s: %w: manifest digest %s is not sha256", ref, ErrMediaType, desc.Digest)
	}
	return desc.Digest.String(), nil
}

// Fetch reads the module artifact at ref, which should be pinned (see
// Resolve), refusing a module layer over limit bytes before downloading it.
// An image index is followed to the manifest it picks (see the package
// doc). The bytes of what ref names are checked against a pinned digest,
// a picked manifest's against the index, and the layer's against the
// manifest.
func Fetch(ctx context.Context, ref Ref, limit int64, rem Remote) (Artifact, error) {
	a, err := fetch(ctx, ref, limit, rem)
	if err != nil {
		return Artifact{}, fmt.Errorf("ociartifact: %s: %w", ref, registryError(err))
	}
	return a, nil
}

func fetch(ctx context.Context, ref Ref, limit int64, rem Remote) (Artifact, error) {
	n, err := ref.name(rem.Insecure)
	if err != nil {
		return Artifact{}, err
	}
	opts := rem.options(ctx)
	desc, err := remote.Get(n, opts...)
	if err != nil {
		return Artifact{}, err
	}
	a := Artifact{RawManifest: desc.Manifest, ManifestDigest: "sha256:" + string(types.DigestOf(desc.Manifest))}
	if ref.Digest != "" && a.ManifestDigest != ref.Digest {
		return Artifact{}, fmt.Errorf("%w: manifest hashes to %s", ErrDigestMismatch, a.ManifestDigest)
	}
	if isIndex(desc.Manifest, desc.MediaType) {
		child, err := selectManifest(desc.Manifest)
		if err != nil {
			return Artifact{}, err
		}
		cdesc, err := remote.Get(n.Context().Digest(child.Digest.String()), opts...)
		if err != nil {
			return Artifact{}, err
		}
		if got := "sha256:" + string(types.DigestOf(cdesc.Manifest)); got != child.Digest.String() {
			return Artifact{}, fmt.Errorf("%w: manifest %s from the index hashes to %s", ErrDigestMismatch, child.Digest, got)
		}
		a.Index, a.RawManifest = desc.Manifest, cdesc.Manifest
	}
	p, err := parseManifest(a.RawManifest)
	if err != nil {
		return Artifact{}, err
	}
	a.Manifest = p.manifest
	layer, module, err := fetchModule(n.Context(), p, limit, opts)
	if w, ok := p.asWasm(); ok && errors.Is(err, ErrNoPlugin) {
		p = w
		layer, module, err = fetchModule(n.Context(), p, limit, opts)
	}
	if err != nil {
		return Artifact{}, err
	}
	a.Format, a.Module = p.format, module
	if p.format == FormatImage {
		a.Layer = layer
	}
	return a, nil
}

// fetchModule reads p's module layer and the module it holds.
func fetchModule(repo name.Repository, p parsed, limit int64, opts []remote.Option) (layer, module []byte, err error) {
	// A gzip of a module is smaller than the module, so the same limit
	// bounds either layer before a byte of it is fetched.
	if p.layer.Size > limit || p.layer.Size < 0 {
		return nil, nil, fmt.Errorf("%w: layer %s claims %d bytes, the limit is %d", ErrTooLarge, p.layer.Digest, p.layer.Size, limit)
	}
	if layer, err = readLayer(repo, p.layer, opts); err != nil {
		return nil, nil, err
	}
	// readLayer checked the layer's digest.
	module, err = moduleFromLayer(p, layer, limit)
	return layer, module, err
}

// readLayer reads the blob d describes, never more than one byte past the
// size d claims, so a registry that lies about a size cannot make us
// download more than the limit the caller checked d.Size against.
func readLayer(repo name.Repository, d v1.Descriptor, opts []remote.Option) ([]byte, error) {
	l, err := remote.Layer(repo.Digest(d.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if int64(len(b)) > d.Size {
		return nil, fmt.Errorf("%w: blob %s is longer than the %d bytes its descriptor claims", ErrDigestMismatch, d.Digest, d.Size)
	}
	// go-containerregistry fails the read at the end of altered bytes with
	// an error of an internal type: what was read tells a corrupt blob (to
	// refuse) from a broken connection (to retry).
	got := "sha256:" + string(types.DigestOf(b))
	if (err == nil || int64(len(b)) == d.Size) && got != d.Digest.String() {
		return nil, fmt.Errorf("%w: blob %s hashes to %s", ErrDigestMismatch, d.Digest, got)
	}
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	return b, nil
}
