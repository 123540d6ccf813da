package ociartifact

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// image builds a container image the way `docker build` / buildkit does
// (go-containerregistry's mutate): manifest type mt, one tar+gzip layer
// per file set, of layer media type lt.
func image(t *testing.T, mt, lt ggcrtypes.MediaType, layers ...map[string][]byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, mt)
	if mt == ggcrtypes.OCIManifestSchema1 {
		img = mutate.ConfigMediaType(img, ggcrtypes.OCIConfigJSON)
	}
	for _, files := range layers {
		var err error
		if img, err = mutate.AppendLayers(img, static.NewLayer(tarGz(t, files), lt)); err != nil {
			t.Fatal(err)
		}
	}
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{OS: "wasip1", Architecture: "wasm", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// index wraps images as docker buildx pushes them: an OCI index with a
// platform per image, and an attestation manifest (platform unknown/unknown)
// when attest is set.
func index(t *testing.T, attest bool, platforms map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for p, img := range platforms {
		osName, arch, _ := strings.Cut(p, "/")
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	if attest {
		att := image(t, ggcrtypes.OCIManifestSchema1, ggcrtypes.OCILayer, map[string][]byte{"intoto.json": []byte("{}")})
		adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
		}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, ggcrtypes.OCIImageIndex), adds...)
}

// orasPush writes module the way `oras push REF a:TYPE b:TYPE` does (oras
// 1.x packs an OCI 1.1 manifest with an empty config), with the files in
// the order given: "config" is a Wasm config JSON file, "module" the
// module, "docs" a tar+gzip layer without plugin.wasm.
func orasPush(t *testing.T, host, repoName, tag string, module []byte, order ...string) {
	t.Helper()
	ctx := context.Background()
	repo, err := orasremote.NewRepository(host + "/" + repoName)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	blobs := map[string][]byte{"config": []byte(`{"type":"envoy_proxy"}`), "module": module, "docs": tarGz(t, map[string][]byte{"README.md": []byte("docs")})}
	types := map[string]string{"config": ConfigMediaType, "module": LayerMediaType, "docs": string(ggcrtypes.OCILayer)}
	titles := map[string]string{"config": "config.json", "module": "plugin.wasm", "docs": "docs.tar.gz"}
	var opts oras.PackManifestOptions
	for _, f := range order {
		d := content.NewDescriptorFromBytes(types[f], blobs[f])
		d.Annotations = map[string]string{AnnotationTitle: titles[f]}
		if err := repo.Push(ctx, d, bytes.NewReader(blobs[f])); err != nil {
			t.Fatal(err)
		}
		opts.Layers = append(opts.Layers, d)
	}
	d, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, d, tag); err != nil {
		t.Fatal(err)
	}
}

// TestFormats reads each format of the README's table as the tool in its
// "written by" column writes it, and checks the module comes from the
// layer Istio's and Envoy Gateway's fetchers take.
func TestFormats(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	decoy := []byte("\x00asm\x01\x00\x00\x00")
	host := startRegistry(t, nil)
	ctx := context.Background()
	oci, docker := ggcrtypes.OCIManifestSchema1, ggcrtypes.DockerManifestSchema2
	ociLayer, dockerLayer := ggcrtypes.OCILayer, ggcrtypes.DockerLayer
	tests := []struct {
		name string
		// push writes the artifact at tag in repository "formats".
		push       func(t *testing.T, tag string)
		wantFormat Format
		wantIndex  bool
		wantErr    error
		wantMsg    string
	}{
		{name: "oras push, config file then module (two layers)", wantFormat: FormatWasm,
			push: func(t *testing.T, tag string) { orasPush(t, host, "formats", tag, module, "config", "module") }},
		{name: "two layers, module first", wantFormat: FormatWasm,
			push: func(t *testing.T, tag string) { orasPush(t, host, "formats", tag, module, "module", "config") }},
		{name: "two layers, the last tar+gzip without plugin.wasm: the Wasm layer, as Istio falls back to", wantFormat: FormatWasm,
			push: func(t *testing.T, tag string) { orasPush(t, host, "formats", tag, module, "module", "docs") }},
		{name: "oras push of the module alone (one layer)", wantFormat: FormatWasm,
			push: func(t *testing.T, tag string) { orasPush(t, host, "formats", tag, module, "module") }},
		{name: "docker build: FROM scratch, COPY plugin.wasm /", wantFormat: FormatImage,
			push: pushImage(host, image(t, docker, dockerLayer, map[string][]byte{"plugin.wasm": module}))},
		{name: "OCI image, plugin.wasm in a directory", wantFormat: FormatImage,
			push: pushImage(host, image(t, oci, ociLayer, map[string][]byte{"usr/share/filters/plugin.wasm": module}))},
		{name: "multi-layer image: the last layer's plugin.wasm", wantFormat: FormatImage,
			push: pushImage(host, image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": decoy}, map[string][]byte{"etc/x": decoy, "plugin.wasm": module}))},
		{name: "multi-layer image whose last layer lacks plugin.wasm", wantErr: ErrNoPlugin,
			push: pushImage(host, image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module}, map[string][]byte{"README": decoy}))},
		{name: "buildx index: linux/amd64 and an attestation", wantFormat: FormatImage, wantIndex: true,
			push: pushIndex(host, index(t, true, map[string]v1.Image{
				"linux/amd64": image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module}),
				"linux/arm64": image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": decoy}),
			}))},
		{name: "buildx index: one wasip1/wasm image and an attestation", wantFormat: FormatImage, wantIndex: true,
			push: pushIndex(host, index(t, true, map[string]v1.Image{"wasip1/wasm": image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module})}))},
		{name: "index with no linux/amd64 and two others", wantErr: ErrMediaType, wantMsg: "no manifest for linux/amd64",
			push: pushIndex(host, index(t, false, map[string]v1.Image{
				"linux/arm64": image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module}),
				"wasip1/wasm": image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module}),
			}))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := string(rune('a' + i))
			tt.push(t, tag)
			ref := mustRef(t, "oci://"+host+"/formats:"+tag)
			d, err := Resolve(ctx, ref, insecure)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Fetch(ctx, ref.Pinned(d), testLimit, insecure)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), ref.Pinned(d).String()) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("error %q does not name the reference and say %q", err, tt.wantMsg)
				}
				return
			}
			if !bytes.Equal(a.Module, module) || a.Format != tt.wantFormat || (a.Index != nil) != tt.wantIndex || a.ManifestDigest != d {
				t.Fatalf("got %d bytes as %s (index %t, digest %s), want the module as %s (index %t, digest %s)",
					len(a.Module), a.Format, a.Index != nil, a.ManifestDigest, tt.wantFormat, tt.wantIndex, d)
			}
			if err := CheckModule(a.Index, a.RawManifest, a.Layer, a.Module); err != nil {
				t.Fatalf("CheckModule: %v", err)
			}
		})
	}
}

func pushImage(host string, img v1.Image) func(t *testing.T, tag string) {
	return func(t *testing.T, tag string) {
		t.Helper()
		if err := remote.Write(testTag(t, host+"/formats:"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
}

func pushIndex(host string, idx v1.ImageIndex) func(t *testing.T, tag string) {
	return func(t *testing.T, tag string) {
		t.Helper()
		if err := remote.WriteIndex(testTag(t, host+"/formats:"+tag), idx); err != nil {
			t.Fatal(err)
		}
	}
}

func testTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// TestCheckModuleIndex binds a signed index digest to the module: an index
// that picks another manifest is refused.
func TestCheckModuleIndex(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	host := startRegistry(t, nil)
	ctx := context.Background()
	oci, ociLayer := ggcrtypes.OCIManifestSchema1, ggcrtypes.OCILayer
	pushIndex(host, index(t, false, map[string]v1.Image{"linux/amd64": image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module})}))(t, "i")
	pushImage(host, image(t, oci, ociLayer, map[string][]byte{"plugin.wasm": module, "other": nil}))(t, "other")
	get := func(tag string) Artifact {
		a, err := Fetch(ctx, mustRef(t, "oci://"+host+"/formats:"+tag), testLimit, insecure)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, other := get("i"), get("other")
	if err := CheckModule(a.Index, a.RawManifest, a.Layer, module); err != nil {
		t.Fatalf("CheckModule: %v", err)
	}
	if err := CheckModule(a.Index, other.RawManifest, other.Layer, module); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("CheckModule with a manifest the index does not pick: %v, want %v", err, ErrDigestMismatch)
	}
}
