package ociartifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

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

// AnnotationUnpack asks `oras pull` to unpack a tar+gzip layer into the
// directory its title names (oras-go's file store honours it).
const AnnotationUnpack = "io.deis.oras.content.unpack"

// Push writes module to ref (a tag or a digest) in the default format,
// FormatImage, which Istio, Envoy Gateway and wasmfleet all read; see
// PushAs.
func Push(ctx context.Context, ref Ref, fileName string, module []byte, m *types.Manifest, rem Remote) (string, error) {
	return PushAs(ctx, ref, FormatImage, fileName, module, m, rem)
}

// PushAs writes module to ref in format and returns the manifest digest
// ("sha256:HEX"). m, when not nil, becomes manifest annotations. fileName
// (say auth.wasm) names what `oras pull` writes: for FormatWasm the
// module under that name; for FormatImage the directory auth/ holding
// plugin.wasm, which is also where the file sits in the layer, so that
// `crane export` gives a tar with auth/plugin.wasm. The image is built the
// same way every time, so the same module pushes to the same digest.
func PushAs(ctx context.Context, ref Ref, format Format, fileName string, module []byte, m *types.Manifest, rem Remote) (string, error) {
	var (
		config blob
		layer  blob
		err    error
	)
	switch format {
	case FormatImage:
		config, layer, err = imageBlobs(fileName, module)
	case FormatWasm:
		config, layer, err = wasmBlobs(fileName, module)
	default:
		err = fmt.Errorf("ociartifact: push %s: unknown format %q", ref, format)
	}
	if err != nil {
		return "", err
	}
	digest, err := put(ctx, ref, v1.Manifest{Annotations: annotations(m, module)}, config, []blob{layer}, rem)
	if err != nil {
		return "", fmt.Errorf("ociartifact: push %s: %w", ref, registryError(err))
	}
	return digest, nil
}

// wasmBlobs are the config and the one layer of a FormatWasm artifact.
func wasmBlobs(fileName string, module []byte) (config, layer blob, err error) {
	cfg, err := json.Marshal(wasmConfig{Type: "envoy_proxy", ABIVersions: []string{"v0.2.1"}})
	if err != nil {
		return blob{}, blob{}, err
	}
	return blob{ConfigMediaType, cfg, nil}, blob{LayerMediaType, module, map[string]string{AnnotationTitle: fileName}}, nil
}

// imageBlobs are the config and the one tar+gzip layer of a FormatImage
// artifact: DIR/plugin.wasm with DIR the file name without .wasm, no
// timestamps, and a config for the wasip1/wasm platform whose rootfs names
// the layer's uncompressed digest, as an image builder writes it.
func imageBlobs(fileName string, module []byte) (config, layer blob, err error) {
	dir := strings.TrimSuffix(path.Base(fileName), ".wasm")
	if dir == "" || dir == "." || dir == "/" {
		return blob{}, blob{}, fmt.Errorf("ociartifact: push: %q names no file", fileName)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	if err := tw.WriteHeader(&tar.Header{Name: dir + "/" + PluginFile, Mode: 0o644, Size: int64(len(module)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return blob{}, blob{}, err
	}
	if _, err := tw.Write(module); err != nil {
		return blob{}, blob{}, err
	}
	if err := tw.Close(); err != nil {
		return blob{}, blob{}, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(tarball.Bytes()); err != nil {
		return blob{}, blob{}, err
	}
	if err := zw.Close(); err != nil {
		return blob{}, blob{}, err
	}
	cfg, err := json.Marshal(v1.ConfigFile{
		OS: "wasip1", Architecture: "wasm",
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: string(types.DigestOf(tarball.Bytes()))}}},
	})
	if err != nil {
		return blob{}, blob{}, err
	}
	return blob{ggcrtypes.OCIConfigJSON, cfg, nil},
		blob{ggcrtypes.OCILayer, gz.Bytes(), map[string]string{AnnotationTitle: dir, AnnotationUnpack: "true"}}, nil
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
// at ref, and returns the manifest digest. m gives the manifest's other
// fields (annotations, subject, artifact type). A ref with neither tag nor
// digest (a repository) puts the manifest by its own digest, untagged.
func put(ctx context.Context, ref Ref, m v1.Manifest, config blob, layers []blob, rem Remote) (string, error) {
	m.SchemaVersion, m.MediaType, m.Config = 2, ggcrtypes.OCIManifestSchema1, config.descriptor()
	for _, b := range layers {
		m.Layers = append(m.Layers, b.descriptor())
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	digest := "sha256:" + string(types.DigestOf(raw))
	if ref.Tag == "" && ref.Digest == "" {
		ref = ref.Pinned(digest)
	}
	n, err := ref.name(rem.Insecure)
	if err != nil {
		return "", err
	}
	opts := rem.options(ctx)
	for _, b := range append([]blob{config}, layers...) {
		if err := remote.WriteLayer(n.Context(), static.NewLayer(b.data, b.mediaType), opts...); err != nil {
			return "", err
		}
	}
	if err := remote.Put(n, rawManifest(raw), opts...); err != nil {
		return "", err
	}
	return digest, nil
}

// rawManifest is an OCI image manifest to PUT as it is.
type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error) { return r, nil }

func (r rawManifest) MediaType() (ggcrtypes.MediaType, error) {
	return ggcrtypes.OCIManifestSchema1, nil
}
