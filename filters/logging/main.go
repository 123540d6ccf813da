package main

import "github.com/wasmfleet/wasmfleet/sdk"

// filter is the registration; tests run filter.VMContext() natively.
var filter = sdk.Filter[Config]{
	Name:    "logging",
	Default: DefaultConfig,
	Setup:   setup,
}

func init() { sdk.Run(filter) }

func main() {}
