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

// PluginFile is the module's base name inside a container image layer.
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
	// ErrMediaType: the manifest is no layout this package reads, or an
	// image index holds no manifest to pick.
	ErrMediaType = errors.New("not a wasm module artifact")
	// ErrTooLarge: a manifest or a layer is over its limit; it was not
	// downloaded (or not past the limit).
	ErrTooLarge = errors.New("artifact too large")
	// ErrDigestMismatch: bytes read do not hash to the digest that named them.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrNoPlugin: an image's last layer does not hold plugin.wasm.
	ErrNoPlugin = errors.New("no " + PluginFile + " in the image's last layer")
)

// Format says which layout an artifact has.
type Format string

const (
	// FormatImage is a container image ("compat" in the Wasm image spec
	// Istio and Envoy Gateway follow) whose last layer is a tar+gzip
	// holding a file named plugin.wasm, at any depth. All three readers
	// (Istio, Envoy Gateway, wasmfleet) read it, so Push writes it by
	// default.
	FormatImage Format = "image"
	// FormatWasm is the Wasm OCI artifact: the module as it is, in a layer
	// of media type LayerMediaType. Istio and Envoy Gateway read it only
	// with exactly two layers (as `oras push config.json:...config.v1+json
	// f.wasm:...layer.v1+wasm` writes it); wasmfleet also reads the
	// one-layer form, which its push wrote before and still writes on
	// request, and which oras and crane read back as the bare module.
	FormatWasm Format = "wasm-artifact"
)

// ParseFormat reads a Format by its name, for command-line flags.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatImage, FormatWasm:
		return f, nil
	}
	return "", fmt.Errorf("ociartifact: unknown format %q, want %s or %s", s, FormatImage, FormatWasm)
}

// imageLayerTypes are the tar+gzip layer media types a FormatImage artifact
// may use. Istio takes the Docker one from Docker manifests and the OCI one
// from OCI manifests; either is read from either here.
var imageLayerTypes = []ggcrtypes.MediaType{ggcrtypes.OCILayer, ggcrtypes.DockerLayer}

// manifestTypes are the image manifest media types either layout may use.
var manifestTypes = []ggcrtypes.MediaType{ggcrtypes.OCIManifestSchema1, ggcrtypes.DockerManifestSchema2}

// indexTypes are the media types of an image index (docker buildx pushes
// one by default, even for one platform).
var indexTypes = []ggcrtypes.MediaType{ggcrtypes.OCIImageIndex, ggcrtypes.DockerManifestList}

// platform is the platform picked from an image index. Istio's and Envoy
// Gateway's fetchers pick go-containerregistry's default, linux/amd64
// whatever the machine, and so does wasmfleet, so that one tag means one
// module everywhere.
var platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// parsed is a manifest reduced to what locates the module.
type parsed struct {
	format Format
	layer  v1.Descriptor
	// wasm is the Wasm layer of a two-layer manifest whose last layer is
	// tar+gzip: Istio's and Envoy Gateway's fetchers try the image's
	// plugin.wasm first and, when that layer has none, read the manifest
	// as the two-layer Wasm artifact. Zero otherwise.
	wasm     v1.Descriptor
	manifest *types.Manifest
}

// mediaTypeOf is the media type raw declares, or fallback (the registry's
// Content-Type) when it declares none.
func mediaTypeOf(raw []byte, fallback ggcrtypes.MediaType) ggcrtypes.MediaType {
	var probe struct {
		MediaType ggcrtypes.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
		return probe.MediaType
	}
	return fallback
}

// isIndex reports whether raw, served with Content-Type contentType, is an
// image index.
func isIndex(raw []byte, contentType ggcrtypes.MediaType) bool {
	return slices.Contains(indexTypes, mediaTypeOf(raw, contentType))
}

// selectManifest picks the manifest an index stands for: the first whose
// platform is linux/amd64 (a manifest without one counts as linux/amd64, as in
// go-containerregistry, which Istio and Envoy Gateway use), or else the only
// image manifest that is not a build attestation, whatever its platform.
func selectManifest(raw []byte) (v1.Descriptor, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w: image index is not JSON: %w", ErrMediaType, err)
	}
	var candidates []v1.Descriptor
	var found []string
	for _, d := range idx.Manifests {
		p := platform
		if d.Platform != nil {
			p = *d.Platform
		}
		found = append(found, p.String())
		if !slices.Contains(manifestTypes, d.MediaType) {
			continue // a nested index, or an artifact attached to the index
		}
		if p.OS == platform.OS && p.Architecture == platform.Architecture && p.Variant == platform.Variant {
			return checkedChild(d)
		}
		if d.Annotations["vnd.docker.reference.type"] != "attestation-manifest" && p.OS != "unknown" {
			candidates = append(candidates, d)
		}
	}
	if len(candidates) == 1 {
		return checkedChild(candidates[0])
	}
	return v1.Descriptor{}, fmt.Errorf("%w: image index has no manifest for %s and not exactly one other to pick; platforms [%s]",
		ErrMediaType, platform.String(), strings.Join(found, ", "))
}

// checkedChild refuses a picked manifest descriptor that is not sha256 or
// claims more than MaxManifestBytes, before it is fetched.
func checkedChild(d v1.Descriptor) (v1.Descriptor, error) {
	if d.Digest.Algorithm != "sha256" {
		return v1.Descriptor{}, fmt.Errorf("%w: manifest digest %s is not sha256", ErrMediaType, d.Digest)
	}
	if d.Size > MaxManifestBytes || d.Size < 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: manifest %s claims %d bytes, the limit is %d", ErrTooLarge, d.Digest, d.Size, MaxManifestBytes)
	}
	return d, nil
}

// parseManifest decides the layout of raw and which layer holds the module,
// choosing the layer Istio's and Envoy Gateway's fetchers would: the last
// layer when it is tar+gzip; else, with two layers (or one, wasmfleet's
// own older form), the first of the Wasm layer media type. Anything else is
// refused with a message that lists what it found.
func parseManifest(raw []byte) (parsed, error) {
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return parsed{}, fmt.Errorf("%w: manifest is not JSON: %w", ErrMediaType, err)
	}
	if m.MediaType != "" && !slices.Contains(manifestTypes, m.MediaType) {
		return parsed{}, fmt.Errorf("%w: manifest media type %s", ErrMediaType, m.MediaType)
	}
	found := make([]string, 0, len(m.Layers))
	wasm := -1
	for i, l := range m.Layers {
		found = append(found, string(l.MediaType))
		if wasm < 0 && l.MediaType == LayerMediaType {
			wasm = i
		}
	}
	p := parsed{manifest: manifestFromAnnotations(m.Annotations)}
	switch n := len(m.Layers); {
	case n > 0 && slices.Contains(imageLayerTypes, m.Layers[n-1].MediaType):
		p.format, p.layer = FormatImage, m.Layers[n-1]
		if n == 2 && wasm >= 0 {
			p.wasm = m.Layers[wasm]
		}
	case (n == 1 || n == 2) && wasm >= 0:
		p.format, p.layer = FormatWasm, m.Layers[wasm]
	default:
		return parsed{}, fmt.Errorf("%w: want a last layer of tar+gzip holding %s, or one or two layers of which one is %s; found config %s and layers [%s]",
			ErrMediaType, PluginFile, LayerMediaType, m.Config.MediaType, strings.Join(found, ", "))
	}
	for _, l := range []v1.Descriptor{p.layer, p.wasm} {
		if l.Digest.Algorithm != "sha256" && l.Digest != (v1.Hash{}) {
			return parsed{}, fmt.Errorf("%w: layer digest %s is not sha256", ErrMediaType, l.Digest)
		}
	}
	return p, nil
}

// asWasm is p read as the two-layer Wasm artifact, when its image layer
// holds no plugin.wasm and it has a Wasm layer to fall back on.
func (p parsed) asWasm() (parsed, bool) {
	if p.format != FormatImage || p.wasm.Digest == (v1.Hash{}) {
		return p, false
	}
	p.format, p.layer, p.wasm = FormatWasm, p.wasm, v1.Descriptor{}
	return p, true
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
// themselves for FormatWasm; for FormatImage the first regular file of the
// tar+gzip whose base name is plugin.wasm (the file Istio and Envoy Gateway
// take), at most limit bytes of it. The caller has checked layer against
// p.layer.Digest.
func moduleFromLayer(p parsed, layer []byte, limit int64) ([]byte, error) {
	if p.format == FormatWasm {
		return layer, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("%w: image layer %s is not gzip: %w", ErrMediaType, p.layer.Digest, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%w (layer %s)", ErrNoPlugin, p.layer.Digest)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: image layer %s is not a tar+gzip: %w", ErrMediaType, p.layer.Digest, err)
		}
		if path.Base(h.Name) != PluginFile || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > limit {
			return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, h.Name, h.Size, limit)
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err == nil && int64(len(b)) != h.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s from layer %s: %w", ErrMediaType, h.Name, p.layer.Digest, err)
		}
		return b, nil
	}
}

// CheckModule reports whether module is what the signed manifest digest
// stands for: index (nil unless the tag named an image index) must pick
// manifest, manifest's module layer must be layer (FormatImage) or module
// itself (FormatWasm, or an image read as its Wasm layer: layer nil), and
// the image layer must hold exactly module. Signature checks use it to bind the digest a signature
// names to the bytes being admitted.
func CheckModule(index, manifest, layer, module []byte) error {
	if index != nil {
		d, err := selectManifest(index)
		if err != nil {
			return err
		}
		if got := "sha256:" + string(types.DigestOf(manifest)); got != d.Digest.String() {
			return fmt.Errorf("%w: the index picks manifest %s, the manifest hashes to %s", ErrDigestMismatch, d.Digest, got)
		}
	}
	p, err := parseManifest(manifest)
	if err != nil {
		return err
	}
	if w, ok := p.asWasm(); ok && layer == nil {
		p = w // Fetch fell back on the Wasm layer (it keeps no image layer then)
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
