package ociartifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Media types of the Wasm OCI artifact.
const (
	ConfigMediaType = "application/vnd.module.wasm.config.v1+json"
	LayerMediaType  = "application/vnd.module.wasm.content.layer.v1+wasm"
)

// PluginFile is the module's name inside a container image layer.
const PluginFile = "plugin.wasm"

// Annotation keys a pushed artifact's manifest carries.
const (
	AnnotationTitle        = "org.opencontainers.image.title"
	AnnotationVersion      = "org.opencontainers.image.version"
	AnnotationCapabilities = "dev.wasmfleet.capabilities"
	AnnotationDigest       = "dev.wasmfleet.module.digest"
)

// Sentinels for errors.Is.
var (
	// ErrMediaType: the manifest is neither layout this package reads.
	ErrMediaType = errors.New("not a wasm module artifact")
	// ErrTooLarge: a manifest or a layer is over its limit; it was not
	// downloaded (or not past the limit).
	ErrTooLarge = errors.New("artifact too large")
	// ErrDigestMismatch: bytes read do not hash to the digest that named them.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrNoPlugin: an image layer does not hold plugin.wasm.
	ErrNoPlugin = errors.New("no " + PluginFile + " in the image layer")
)

// Format says which layout an artifact has.
type Format string

const (
	// FormatWasm is the Wasm OCI artifact: the layer is the module.
	FormatWasm Format = "wasm-artifact"
	// FormatImage is a container image whose one layer holds plugin.wasm.
	FormatImage Format = "image"
)

// imageLayerTypes are the tar+gzip layer media types a FormatImage artifact
// may use.
var imageLayerTypes = []ggcrtypes.MediaType{ggcrtypes.OCILayer, ggcrtypes.DockerLayer}

// manifestTypes are the manifest media types either layout may use.
var manifestTypes = []ggcrtypes.MediaType{ggcrtypes.OCIManifestSchema1, ggcrtypes.DockerManifestSchema2}

// parsed is a manifest reduced to what locates the module.
type parsed struct {
	format   Format
	layer    v1.Descriptor
	manifest *types.Manifest
}

// parseManifest decides the layout of raw and which layer holds the module,
// refusing anything else with a message that lists what it found.
func parseManifest(raw []byte) (parsed, error) {
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return parsed{}, fmt.Errorf("%w: manifest is not JSON: %w", ErrMediaType, err)
	}
	if m.MediaType != "" && !slices.Contains(manifestTypes, m.MediaType) {
		return parsed{}, fmt.Errorf("%w: manifest media type %s (an index or unknown manifest)", ErrMediaType, m.MediaType)
	}
	found := make([]string, 0, len(m.Layers))
	for _, l := range m.Layers {
		found = append(found, string(l.MediaType))
	}
	p := parsed{manifest: manifestFromAnnotations(m.Annotations)}
	switch {
	case len(m.Layers) == 1 && m.Layers[0].MediaType == LayerMediaType:
		p.format, p.layer = FormatWasm, m.Layers[0]
	case len(m.Layers) == 1 && slices.Contains(imageLayerTypes, m.Layers[0].MediaType):
		p.format, p.layer = FormatImage, m.Layers[0]
	default:
		return parsed{}, fmt.Errorf("%w: want one layer of %s, or one tar+gzip image layer holding %s; found config %s and layers [%s]",
			ErrMediaType, LayerMediaType, PluginFile, m.Config.MediaType, strings.Join(found, ", "))
	}
	if p.layer.Digest.Algorithm != "sha256" {
		return parsed{}, fmt.Errorf("%w: layer digest %s is not sha256", ErrMediaType, p.layer.Digest)
	}
	return p, nil
}

// annotations is the manifest-level annotation set Push writes for m.
func annotations(m *types.Manifest, module []byte) map[string]string {
	a := map[string]string{AnnotationDigest: "sha256:" + string(types.DigestOf(module))}
	if m == nil {
		return a
	}
	a[AnnotationTitle] = m.Name
	a[AnnotationVersion] = m.Version
	if len(m.Capabilities) > 0 {
		a[AnnotationCapabilities] = strings.Join(m.Capabilities, ",")
	}
	return a
}

// manifestFromAnnotations is the inverse of annotations; nil when the
// artifact carries no name.
func manifestFromAnnotations(a map[string]string) *types.Manifest {
	if a[AnnotationTitle] == "" {
		return nil
	}
	m := &types.Manifest{Name: a[AnnotationTitle], Version: a[AnnotationVersion]}
	if c := a[AnnotationCapabilities]; c != "" {
		m.Capabilities = strings.Split(c, ",")
	}
	return m
}

// moduleFromLayer returns the module a layer's bytes hold: the bytes
// themselves for FormatWasm, plugin.wasm from the tar+gzip for FormatImage,
// at most limit bytes of it. The caller has checked layer against
// p.layer.Digest.
func moduleFromLayer(p parsed, layer []byte, limit int64) ([]byte, error) {
	if p.format == FormatWasm {
		return layer, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("%w: image layer is not gzip: %w", ErrMediaType, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, ErrNoPlugin
		}
		if err != nil {
			return nil, fmt.Errorf("%w: image layer is not a tar: %w", ErrMediaType, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "/")) != PluginFile || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > limit {
			return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, PluginFile, h.Size, limit)
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrMediaType, PluginFile, err)
		}
		return b, nil
	}
}

// CheckModule reports whether module is what the manifest raw points at,
// given the layer bytes for a FormatImage artifact (ignored otherwise): for
// the Wasm artifact the layer digest is the module's sha256; for an image,
// layer must hash to the layer digest and hold exactly module as
// plugin.wasm. Signature checks use it to bind a signed manifest digest to
// the bytes being admitted.
func CheckModule(raw, layer, module []byte) error {
	p, err := parseManifest(raw)
	if err != nil {
		return err
	}
	if p.format == FormatWasm {
		layer = module
	}
	if got := (v1.Hash{Algorithm: "sha256", Hex: string(types.DigestOf(layer))}); got != p.layer.Digest {
		return fmt.Errorf("%w: layer %s hashes to %s", ErrDigestMismatch, p.layer.Digest, got)
	}
	got, err := moduleFromLayer(p, layer, int64(len(module)))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, module) {
		return fmt.Errorf("%w: %s in the image layer differs from the module", ErrDigestMismatch, PluginFile)
	}
	return nil
}
