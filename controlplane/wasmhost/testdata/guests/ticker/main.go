// Command ticker is a test guest (for wasmhost and the e2e stand-in) for tick-driven work, written the way SDK
// users write it. Its configuration is a tick period in milliseconds, set
// when the plugin starts, optionally followed by " panic" to make every
// tick panic (a guest that traps in proxy_on_tick). A request carrying
// x-hold is paused and queued;
// each tick resumes every queued request with x-chain set to "tick" (the
// work a filter defers to its timer), and the first tick of each VM logs
// "ticker: first tick".
package main

import (
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	ticks   int
	panics  bool
	pending []uint32 // context ids of held requests
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogError("ticker: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	period, panics := strings.CutSuffix(string(cfg), " panic")
	p.panics = panics
	ms, err := strconv.ParseUint(period, 10, 32)
	if err != nil {
		proxywasm.LogError("ticker: period: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
		proxywasm.LogError("ticker: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	if p.panics {
		panic("ticker: panic in tick")
	}
	p.ticks++
	if p.ticks == 1 {
		proxywasm.LogInfo("ticker: first tick")
	}
	for _, id := range p.pending {
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogError("ticker: " + err.Error())
			continue
		}
		if err := proxywasm.ReplaceHttpRequestHeader("x-chain", "tick"); err != nil {
			proxywasm.LogError("ticker: " + err.Error())
		}
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogError("ticker: resume: " + err.Error())
		}
	}
	p.pending = p.pending[:0]
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{p: p, id: id} }

type stream struct {
	types.DefaultHttpContext
	p  *plugin
	id uint32
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if v, err := proxywasm.GetHttpRequestHeader("x-hold"); err != nil || v == "" {
		return types.ActionContinue
	}
	s.p.pending = append(s.p.pending, s.id)
	return types.ActionPause
}
