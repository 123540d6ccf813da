// Command tagger is a test guest: it appends its configured tag to the
// request header x-chain (so a test sees the order filters ran in), sets the
// response header x-tagged-<tag>, and appends "<tag>\n" to the response body
// once the whole body is buffered (so a test sees the reverse order of the
// response path and body buffering). Its plugin configuration is the tag.
// It counts requests in the counter "tagger.<tag>.requests" and records the
// length of x-chain it sent in the histogram "tagger.<tag>.chain_bytes".
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	tag        string
	requests   proxywasm.MetricCounter
	chainBytes proxywasm.MetricHistogram
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(cfg) == 0 {
		proxywasm.LogError("tagger: empty configuration")
		return types.OnPluginStartStatusFailed
	}
	p.tag = string(cfg)
	p.requests = proxywasm.DefineCounterMetric("tagger." + p.tag + ".requests")
	p.chainBytes = proxywasm.DefineHistogramMetric("tagger." + p.tag + ".chain_bytes")
	proxywasm.LogInfo("tagger: configured " + p.tag)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{plugin: p} }

type stream struct {
	types.DefaultHttpContext
	*plugin
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	chain, err := proxywasm.GetHttpRequestHeader("x-chain")
	if err != nil || chain == "" {
		chain = s.tag
	} else {
		chain += "," + s.tag
	}
	if err := proxywasm.ReplaceHttpRequestHeader("x-chain", chain); err != nil {
		proxywasm.LogError("tagger: " + err.Error())
	}
	s.requests.Increment(1)
	s.chainBytes.Record(uint64(len(chain)))
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-tagged-"+s.tag, "1"); err != nil {
		proxywasm.LogError("tagger: " + err.Error())
	}
	// The body will grow.
	_ = proxywasm.RemoveHttpResponseHeader("content-length")
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(_ int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause // buffer until the whole body is here
	}
	if err := proxywasm.AppendHttpResponseBody([]byte(s.tag + "\n")); err != nil {
		proxywasm.LogError("tagger: " + err.Error())
	}
	return types.ActionContinue
}
