package sigtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/wasmfleet/wasmfleet/controlplane/signature"
)

// Key is a fresh ECDSA P-256 key pair.
type Key struct {
	*signature.Signer
	// PubFile is the PEM public key, in a test temp dir.
	PubFile string
}

// NewKey generates a key pair and writes its public key file.
func NewKey(tb testing.TB) Key {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.CreateTemp(tb.TempDir(), "cosign-*.pub")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pem); err != nil {
		tb.Fatal(err)
	}
	s, err := signature.NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return Key{Signer: s, PubFile: filepath.Clean(f.Name())}
}
