//go:build !race

package scenarios

import (
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
)

// dropDeadline is how soon after a module file is written every node must
// enforce it: the 2 s.
const dropDeadline = 2 * time.Second

// trialTimeout bounds admission's trial run: the default.
const trialTimeout = config.DefaultTrialTimeout
