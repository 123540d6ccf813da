package signature_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/signature/sigtest"
	"github.com/wasmfleet/wasmfleet/controlplane/source"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestDirSource signs a file in a watched directory as `cosign sign-blob`
// does and checks what the directory source reports.
func TestDirSource(t *testing.T) {
	module := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	trusted, stranger := sigtest.NewKey(t), sigtest.NewKey(t)
	v, err := signature.New(signature.Config{KeyFiles: []string{trusted.PubFile}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sigPath := filepath.Join(dir, "auth.wasm.sig")
	writeSig := func(k sigtest.Key) {
		sig, err := k.SignBlob(module)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		change  func() // what happens in the directory
		wantErr error
	}{
		{name: "signed by the trusted key", change: func() {
			writeSig(trusted)
			if err := os.WriteFile(filepath.Join(dir, "auth.wasm"), module, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a cosign sign-blob --bundle file as the .sig", change: func() {
			b, err := trusted.SignBlobBundle(module, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sigPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "signed by another key", change: func() { writeSig(stranger) }, wantErr: signature.ErrBadSignature},
		{name: "signature removed", change: func() {
			if err := os.Remove(sigPath); err != nil {
				t.Fatal(err)
			}
		}, wantErr: signature.ErrUnsigned},
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan types.Event)
	done := make(chan error, 1)
	go func() {
		done <- source.NewDir(source.DirConfig{Dir: dir, Debounce: 20 * time.Millisecond}, events).Start(ctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			var ev types.Event
			select {
			case ev = <-events:
			case <-time.After(10 * time.Second):
				t.Fatal("no event from the directory source within 10s")
			}
			err := v.Verify(ctx, admission.Request{Filter: ev.Filter, Module: ev.Module,
				Settings: config.Filter{Name: "auth", RequireSignature: true}, Signature: ev.Signature})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
