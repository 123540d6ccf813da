// Command unknownimport is a filter that imports a host function no
// proxy-wasm host provides, so no Envoy can load it.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

//go:wasmimport env proxy_does_not_exist
func proxyDoesNotExist() uint32

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if proxyDoesNotExist() != 0 {
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
