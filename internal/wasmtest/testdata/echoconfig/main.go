// Command echoconfig is a test guest that reports what its host gave it:
// the VM configuration it read in proxy_on_vm_start, and the root id and
// plugin configuration it read in proxy_on_configure. It logs them at info
// level once configured, as
//
//	echoconfig root_id=ROOT vm=BASE64 plugin=BASE64
//
// and adds the same "root_id=ROOT vm=BASE64 plugin=BASE64" as an
// x-echoconfig response header to every response, so a test can compare
// the bytes with what the control plane sent.
package main

import (
	"encoding/base64"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct {
	types.DefaultVMContext
	config []byte
}

func (v *vm) OnVMStart(int) types.OnVMStartStatus {
	v.config, _ = proxywasm.GetVMConfiguration() // NotFound when there is none
	return true
}

func (v *vm) NewPluginContext(uint32) types.PluginContext { return &plugin{vm: v} }

type plugin struct {
	types.DefaultPluginContext
	vm     *vm
	report string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	root, _ := proxywasm.GetProperty([]string{"plugin_root_id"})
	cfg, _ := proxywasm.GetPluginConfiguration()
	p.report = "root_id=" + string(root) +
		" vm=" + base64.StdEncoding.EncodeToString(p.vm.config) +
		" plugin=" + base64.StdEncoding.EncodeToString(cfg)
	proxywasm.LogInfo("echoconfig " + p.report)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{report: p.report} }

type stream struct {
	types.DefaultHttpContext
	report string
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-echoconfig", s.report)
	return types.ActionContinue
}
