// Command stamp appends the label of its plugin configuration to the
// request header x-ran (see ../internal/stamp). The bypass scenarios deploy
// it as several differently named filters after auth, so the upstream sees
// which ran, in which order, and how often.
package main

import (
	"github.com/wasmfleet/wasmfleet/e2e/scenarios/testdata/guests/internal/stamp"
	"github.com/wasmfleet/wasmfleet/sdk"
)

func init() { sdk.Run(stamp.Filter(0)) }

func main() {}
