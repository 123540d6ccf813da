package xdscheck

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: the
// control plane and the node's ADS client must end with their context.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
