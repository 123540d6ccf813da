package ociartifact

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// The layout cosign uses to attach signatures to a manifest digest: an image
// tagged sha256-HEX.sig in the same repository, one layer per signature, the
// layer being the simple-signing payload and an annotation the base64
// signature over it.
const (
	CosignPayloadMediaType    = "application/vnd.dev.cosign.simplesigning.v1+json"
	CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// Bounds on what a signature image may make us read.
const (
	maxSignatures   = 16
	maxPayloadBytes = 64 << 10
)

// CosignSignature is one signature from a cosign signature image.
type CosignSignature struct {
	// Payload is the simple-signing JSON that was signed.
	Payload []byte `json:"payload"`
	// Signature is the base64 signature over Payload, as in the annotation.
	Signature string `json:"signature"`
}

// SignatureRef is where cosign attaches signatures of the manifest digest
// ("sha256:HEX") in ref's repository.
func SignatureRef(ref Ref, manifestDigest string) Ref {
	return ref.withTag(strings.Replace(manifestDigest, ":", "-", 1) + ".sig")
}

// FetchSignatures reads the signatures from the cosign signature image at
// ref (resolve SignatureRef first and pass it pinned). Layers of other
// media types are skipped; a payload over 64 KiB or more than 16
// signatures are refused.
func FetchSignatures(ctx context.Context, ref Ref, rem Remote) ([]CosignSignature, error) {
	sigs, err := fetchSignatures(ctx, ref, rem)
	if err != nil {
		return nil, fmt.Errorf("ociartifact: signatures %s: %w", ref, registryError(err))
	}
	return sigs, nil
}

func fetchSignatures(ctx context.Context, ref Ref, rem Remote) ([]CosignSignature, error) {
	n, err := ref.name(rem.Insecure)
	if err != nil {
		return nil, err
	}
	opts := rem.options(ctx)
	desc, err := remote.Get(n, opts...)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("%w: signature manifest is not JSON: %w", ErrMediaType, err)
	}
	var sigs []CosignSignature
	for _, l := range m.Layers {
		sig, ok := l.Annotations[CosignSignatureAnnotation]
		if l.MediaType != CosignPayloadMediaType || !ok {
			continue
		}
		if len(sigs) == maxSignatures {
			return nil, fmt.Errorf("%w: more than %d signatures", ErrTooLarge, maxSignatures)
		}
		if l.Size > maxPayloadBytes || l.Size < 0 {
			return nil, fmt.Errorf("%w: signature payload %s is %d bytes, the limit is %d", ErrTooLarge, l.Digest, l.Size, maxPayloadBytes)
		}
		payload, err := readLayer(n.Context(), l, opts)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, CosignSignature{Payload: payload, Signature: sig})
	}
	return sigs, nil
}

// PushSignatures writes sigs as the cosign signature image of the manifest
// digest ("sha256:HEX") in ref's repository, replacing what was there, and
// returns the signature image's digest. It is how wasmfleet's tests (and
// any tool of ours) attach signatures exactly as `cosign sign --key` does.
func PushSignatures(ctx context.Context, ref Ref, manifestDigest string, sigs []CosignSignature, rem Remote) (string, error) {
	layers := make([]blob, 0, len(sigs))
	diffIDs := make([]v1.Hash, 0, len(sigs))
	for _, s := range sigs {
		b := blob{CosignPayloadMediaType, s.Payload, map[string]string{CosignSignatureAnnotation: s.Signature}}
		layers = append(layers, b)
		diffIDs = append(diffIDs, b.descriptor().Digest)
	}
	cfg, err := json.Marshal(v1.ConfigFile{RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}})
	if err != nil {
		return "", err
	}
	sigRef := SignatureRef(ref, manifestDigest)
	digest, err := put(ctx, sigRef, v1.Manifest{}, blob{ggcrtypes.OCIConfigJSON, cfg, nil}, layers, rem)
	if err != nil {
		return "", fmt.Errorf("ociartifact: push %s: %w", sigRef, registryError(err))
	}
	return digest, nil
}

// The layout `cosign sign --new-bundle-format` uses: an OCI 1.1 artifact
// whose subject is the signed manifest, artifact type and one layer a
// Sigstore bundle, config the empty descriptor; found through the referrers
// API or, where the registry lacks it, the sha256-HEX tag holding an index
// of referrers (the tag schema of the distribution spec).
const (
	// SigstoreBundleMediaTypePrefix starts the media type of every version
	// of the Sigstore bundle (v0.1 to v0.3 today).
	SigstoreBundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// SigstoreBundleMediaType is the version cosign 2.6 writes.
	SigstoreBundleMediaType = SigstoreBundleMediaTypePrefix + ".v0.3+json"
	// CosignSignPredicate is the in-toto predicate type of what `cosign
	// sign --new-bundle-format` signs: "this digest is signed", no claims.
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	// annotationBundleContent marks cosign's bundle referrers.
	annotationBundleContent   = "dev.sigstore.bundle.content"
	annotationBundlePredicate = "dev.sigstore.bundle.predicateType"
	emptyMediaType            = "application/vnd.oci.empty.v1+json"
)

// ListSigstoreBundles finds the Sigstore bundles attached to digest
// ("sha256:HEX") as referrers in repo's repository. listing is the sha256
// of what was found, "" for nothing: it changes when a bundle is attached
// or removed, so a poller reads the bundles only then. A registry without
// the referrers API and without the fallback tag has none.
func ListSigstoreBundles(ctx context.Context, repo Ref, digest string, rem Remote) (listing string, found []v1.Descriptor, err error) {
	listing, found, err = listSigstoreBundles(ctx, repo, digest, rem)
	if err != nil {
		return "", nil, fmt.Errorf("ociartifact: referrers of %s: %w", repo.Pinned(digest), registryError(err))
	}
	return listing, found, nil
}

func listSigstoreBundles(ctx context.Context, repo Ref, digest string, rem Remote) (string, []v1.Descriptor, error) {
	n, err := repo.Pinned(digest).name(rem.Insecure)
	if err != nil {
		return "", nil, err
	}
	idx, err := remote.Referrers(n.Context().Digest(digest), rem.options(ctx)...)
	if err != nil {
		return "", nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", nil, err
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		// A listing may name a referrer by its config's media type, the
		// empty one for a bundle, without its annotations: cosign 2.6
		// writes the tag schema index so, and go-containerregistry's
		// registry answers the referrers API so. Those are read to see.
		if !strings.HasPrefix(d.ArtifactType, SigstoreBundleMediaTypePrefix) && d.Annotations[annotationBundleContent] == "" &&
			d.ArtifactType != emptyMediaType {
			continue // an SBOM, another tool's attachment
		}
		if len(found) == maxSignatures {
			return "", nil, fmt.Errorf("%w: more than %d Sigstore bundles", ErrTooLarge, maxSignatures)
		}
		found = append(found, d)
	}
	if len(found) == 0 {
		return "", nil, nil
	}
	raw, err := json.Marshal(found)
	if err != nil {
		return "", nil, err
	}
	return "sha256:" + string(types.DigestOf(raw)), found, nil
}

// FetchSigstoreBundles reads the bundles ListSigstoreBundles found in
// repo's repository: each referrer's layer of a Sigstore bundle media
// type, at most 64 KiB. Referrers that hold none are skipped.
func FetchSigstoreBundles(ctx context.Context, repo Ref, found []v1.Descriptor, rem Remote) ([][]byte, error) {
	var bundles [][]byte
	for _, d := range found {
		b, ok, err := fetchSigstoreBundle(ctx, repo.Pinned(d.Digest.String()), rem)
		if err != nil {
			return nil, fmt.Errorf("ociartifact: Sigstore bundle %s: %w", repo.Pinned(d.Digest.String()), registryError(err))
		}
		if ok {
			bundles = append(bundles, b)
		}
	}
	return bundles, nil
}

// fetchSigstoreBundle reads the bundle of the referrer at ref; ok is false
// when the referrer is another kind of artifact.
func fetchSigstoreBundle(ctx context.Context, ref Ref, rem Remote) (bundle []byte, ok bool, err error) {
	n, err := ref.name(rem.Insecure)
	if err != nil {
		return nil, false, err
	}
	opts := rem.options(ctx)
	desc, err := remote.Get(n, opts...)
	if err != nil {
		return nil, false, err
	}
	if got := "sha256:" + string(types.DigestOf(desc.Manifest)); got != ref.Digest {
		return nil, false, fmt.Errorf("%w: manifest hashes to %s", ErrDigestMismatch, got)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, false, fmt.Errorf("%w: referrer manifest is not JSON: %w", ErrMediaType, err)
	}
	for _, l := range m.Layers {
		if !strings.HasPrefix(string(l.MediaType), SigstoreBundleMediaTypePrefix) {
			continue
		}
		if l.Size > maxPayloadBytes || l.Size < 0 {
			return nil, false, fmt.Errorf("%w: bundle %s is %d bytes, the limit is %d", ErrTooLarge, l.Digest, l.Size, maxPayloadBytes)
		}
		b, err := readLayer(n.Context(), l, opts)
		return b, err == nil, err
	}
	return nil, false, nil
}

// PushSigstoreBundle attaches bundle to the artifact at pinned (a
// reference by digest) in repo's repository, as `cosign sign
// --new-bundle-format` does: a referrer whose subject is the artifact's
// manifest, written to the fallback tag too where the registry lacks the
// referrers API. It returns the referrer's digest.
func PushSigstoreBundle(ctx context.Context, pinned, repo Ref, bundle []byte, rem Remote) (string, error) {
	n, err := pinned.name(rem.Insecure)
	if err != nil {
		return "", err
	}
	subject, err := remote.Head(n, rem.options(ctx)...)
	if err != nil {
		return "", fmt.Errorf("ociartifact: %s: %w", pinned, registryError(err))
	}
	m := v1.Manifest{
		ArtifactType: SigstoreBundleMediaType,
		Subject:      &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
		Annotations: map[string]string{
			annotationBundleContent:   "dsse-envelope",
			annotationBundlePredicate: CosignSignPredicate,
		},
	}
	// Put by its digest: cosign tags no referrer.
	digest, err := put(ctx, repo.withTag(""), m, blob{emptyMediaType, []byte("{}"), nil}, []blob{{SigstoreBundleMediaType, bundle, nil}}, rem)
	if err != nil {
		return "", fmt.Errorf("ociartifact: push a Sigstore bundle to %s: %w", repo.Plain(), registryError(err))
	}
	return digest, nil
}
