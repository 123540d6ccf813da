package ociartifact

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// wasmConfig is the config blob of a Wasm OCI artifact: what runtime the
// module is for. Readers (Istio, Envoy Gateway, us) go by the media types;
// the content is informational.
type wasmConfig struct {
	Type        string   `json:"type"`
	ABIVersions []string `json:"abiVersions"`
}

// Push writes module as a Wasm OCI artifact to ref (a tag or a digest) and
// returns its manifest digest ("sha256:HEX"). fileName titles the layer,
// which is the name `oras pull` saves it under; m, when not nil, becomes
// manifest annotations.
func Push(ctx context.Context, ref Ref, fileName string, module []byte, m *types.Manifest, rem Remote) (string, error) {
	cfg, err := json.Marshal(wasmConfig{Type: "envoy_proxy", ABIVersions: []string{"v0.2.1"}})
	if err != nil {
		return "", err
	}
	layerAnnotations := map[string]string{AnnotationTitle: fileName}
	digest, err := put(ctx, ref, blob{ConfigMediaType, cfg, nil}, []blob{{LayerMediaType, module, layerAnnotations}}, annotations(m, module), rem)
	if err != nil {
		return "", fmt.Errorf("ociartifact: push %s: %w", ref, registryError(err))
	}
	return digest, nil
}

// blob is one blob to upload and describe in a manifest.
type blob struct {
	mediaType   ggcrtypes.MediaType
	data        []byte
	annotations map[string]string
}

func (b blob) descriptor() v1.Descriptor {
	return v1.Descriptor{
		MediaType:   b.mediaType,
		Size:        int64(len(b.data)),
		Digest:      v1.Hash{Algorithm: "sha256", Hex: string(types.DigestOf(b.data))},
		Annotations: b.annotations,
	}
}

// put uploads config and layers and then an OCI image manifest naming them
// at ref, and returns the manifest digest.
func put(ctx context.Context, ref Ref, config blob, layers []blob, annotations map[string]string, rem Remote) (string, error) {
	n, err := ref.name(rem.Insecure)
	if err != nil {
		return "", err
	}
	opts := rem.options(ctx)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     ggcrtypes.OCIManifestSchema1,
		Config:        config.descriptor(),
		Annotations:   annotations,
	}
	upload := func(b blob) error {
		return remote.WriteLayer(n.Context(), static.NewLayer(b.data, b.mediaType), opts...)
	}
	if err := upload(config); err != nil {
		return "", err
	}
	for _, b := range layers {
		if err := upload(b); err != nil {
			return "", err
		}
		m.Layers = append(m.Layers, b.descriptor())
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := remote.Put(n, rawManifest(raw), opts...); err != nil {
		return "", err
	}
	return "sha256:" + string(types.DigestOf(raw)), nil
}

// rawManifest is an OCI image manifest to PUT as it is.
type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error) { return r, nil }

func (r rawManifest) MediaType() (ggcrtypes.MediaType, error) {
	return ggcrtypes.OCIManifestSchema1, nil
}
