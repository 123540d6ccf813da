//go:build !race

package scenarios

import "github.com/wasmfleet/wasmfleet/controlplane/config"

// trialTimeout bounds admission's trial run: the default.
const trialTimeout = config.DefaultTrialTimeout
