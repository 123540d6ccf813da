//go:build race

package scenarios

import "time"

// The race detector makes interpreting Wasm (admission's trial run, every
// node's load) several times slower, and the machine is shared.

// dropDeadline is how soon after a module file is written every node must
// enforce it. The issue asks for 2 s, which the scenarios assert without
// -race; with it the bound is looser. BenchmarkDropToEnforced measures it.
const dropDeadline = 15 * time.Second

// trialTimeout bounds admission's trial run. The default (5 s) is meant for
// guests that never return; under -race an honest guest can take that long.
const trialTimeout = 60 * time.Second
