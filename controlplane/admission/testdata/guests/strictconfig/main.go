// Command strictconfig is an HTTP filter whose plugin configuration must be
// a JSON object with a non-empty "header"; anything else fails
// proxy_on_configure with a logged reason, as a real filter should.
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct {
	types.DefaultPluginContext
	header string
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCritical("config: cannot read plugin configuration")
		return types.OnPluginStartStatusFailed
	}
	var cfg struct {
		Header string `json:"header"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		proxywasm.LogError("config: not a JSON object: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	if cfg.Header == "" {
		proxywasm.LogError("config: header must not be empty")
		return types.OnPluginStartStatusFailed
	}
	p.header = cfg.Header
	proxywasm.LogInfo("strictconfig: adding " + cfg.Header)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{header: p.header}
}

type httpContext struct {
	types.DefaultHttpContext
	header string
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpRequestHeader(h.header, "1")
	return types.ActionContinue
}
