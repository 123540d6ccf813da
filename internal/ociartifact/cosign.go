package ociartifact

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
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
	digest, err := put(ctx, sigRef, blob{ggcrtypes.OCIConfigJSON, cfg, nil}, layers, nil, rem)
	if err != nil {
		return "", fmt.Errorf("ociartifact: push %s: %w", sigRef, registryError(err))
	}
	return digest, nil
}
