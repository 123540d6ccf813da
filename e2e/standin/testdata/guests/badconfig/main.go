// Command badconfig is a test guest whose proxy_on_configure always fails,
// the way a filter refuses a configuration it cannot use.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	proxywasm.LogError("badconfig: refusing configuration")
	return types.OnPluginStartStatusFailed
}
