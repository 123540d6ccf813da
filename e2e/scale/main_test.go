package scale_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wasmfleet/wasmfleet/e2e/scale"
)

// TestMain turns a re-executed test binary into a fleet (see
// scale.ChildEnv), and otherwise fails the package if a test or benchmark
// leaves goroutines behind.
func TestMain(m *testing.M) {
	if os.Getenv(scale.ChildEnv) != "" {
		os.Exit(scale.ChildMain())
	}
	goleak.VerifyTestMain(m)
}
