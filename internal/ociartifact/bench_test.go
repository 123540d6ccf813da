package ociartifact

import (
	"context"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// BenchmarkResolve is one poll of an unchanged tag: a manifest HEAD.
func BenchmarkResolve(b *testing.B) {
	host := startRegistry(b, nil)
	ctx := context.Background()
	ref := mustRef(b, "oci://"+host+"/bench/f:1")
	if _, err := Push(ctx, ref, "f.wasm", wasmtest.Module(b, helloPkg), nil, insecure); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Resolve(ctx, ref, insecure); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetch downloads and checks a ~2 MB module artifact.
func BenchmarkFetch(b *testing.B) {
	host := startRegistry(b, nil)
	ctx := context.Background()
	ref := mustRef(b, "oci://"+host+"/bench/f:1")
	module := wasmtest.Module(b, helloPkg)
	digest, err := Push(ctx, ref, "f.wasm", module, nil, insecure)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(module)))
	for b.Loop() {
		if _, err := Fetch(ctx, ref.Pinned(digest), testLimit, insecure); err != nil {
			b.Fatal(err)
		}
	}
}
