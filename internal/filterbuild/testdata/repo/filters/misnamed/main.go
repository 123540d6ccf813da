// Command misnamed is a minimal filter for filterbuild's tests.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
)

type config struct{}

func (*config) DecodeJSON(*sdk.Decoder) {}
func (config) Validate() error          { return nil }

func init() {
	sdk.Run(sdk.Filter[config]{Name: "good", Setup: func(*sdk.Plugin[config]) (sdk.HTTPFactory, error) {
		return func(uint32) types.HttpContext { return &types.DefaultHttpContext{} }, nil
	}})
}

func main() {}
