//go:build !wasip1

package pubkey

import (
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestWycheproofCompiled runs TestWycheproof compiled to wasip1 under
// wazero: the target the filter's signature checks run on.
func TestWycheproofCompiled(t *testing.T) {
	wasmtest.RunTests(t, "filters/auth/internal/pubkey", "^TestWycheproof$")
}
