// Command hungrystamp is stamp (../internal/stamp) that first allocates
// 24 MiB at every plugin start and keeps it, like the hungry guest: a node
// with a smaller memory limit per VM fails to load it (a NACK), the others
// (and the control plane's trial run) load it and then stamp requests
// exactly as stamp does. As a candidate for a stamp filter it is a new
// version that one node alone refuses, without changing what a request
// that runs it shows upstream.
package main

import (
	"github.com/wasmfleet/wasmfleet/e2e/scenarios/testdata/guests/internal/stamp"
	"github.com/wasmfleet/wasmfleet/sdk"
)

// need is what every plugin start allocates.
const need = 24 << 20

func init() { sdk.Run(stamp.Filter(need)) }

func main() {}
