// Command osfiles is a filter that reads a file with package os, which pulls
// in WASI functions only a host with proxy-wasm-cpp-host PR #533 provides.
package main

import (
	"os"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if _, err := os.ReadFile("/etc/filter.conf"); err != nil {
		proxywasm.LogWarn("no /etc/filter.conf")
	}
	return types.OnPluginStartStatusOK
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
