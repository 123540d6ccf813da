// Command demo is the demo filter's module, built by sdktest's tests.
package main

import (
	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest/internal/demofilter"
)

func init() { sdk.Run(demofilter.Filter) }

func main() {}
