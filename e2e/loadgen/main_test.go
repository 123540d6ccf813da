package loadgen

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: every
// node, stream and background fetch must end with its context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
