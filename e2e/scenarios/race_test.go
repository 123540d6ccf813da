//go:build race

package scenarios

import "time"

// The race detector makes interpreting Wasm (admission's trial run, every
// node's load) several times slower, and the machine is shared.

// trialTimeout bounds admission's trial run. The default (5 s) is meant for
// guests that never return; under -race an honest guest can take that long.
const trialTimeout = 60 * time.Second
