//go:build !wasip1

package digest

import (
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestWycheproofCompiled runs TestWycheproof compiled to wasip1 under
// wazero: the target the filter's MAC runs on.
func TestWycheproofCompiled(t *testing.T) {
	wasmtest.RunTests(t, "filters/auth/internal/digest", "^TestWycheproof$")
}
