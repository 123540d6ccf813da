package controlplane

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive a control plane: not a registry poller stopped
// by a reload, nor any stage after Start returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
