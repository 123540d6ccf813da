// Command stamp is a test guest: it stamps each request with its plugin
// configuration and a per-VM request count, so tests can tell VMs apart and
// see that their state does not leak between instances.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	label string
	count int
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogError("stamp: no configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.label = string(cfg)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{p: p} }

type stream struct {
	types.DefaultHttpContext
	p *plugin
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.p.count++
	if err := proxywasm.AddHttpRequestHeader("x-stamp", s.p.label+":"+strconv.Itoa(s.p.count)); err != nil {
		proxywasm.LogError("stamp: " + err.Error())
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.ReplaceHttpResponseHeader("x-stamp", s.p.label); err != nil {
		proxywasm.LogError("stamp: " + err.Error())
	}
	return types.ActionContinue
}
