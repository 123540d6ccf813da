// Command calloutauth is a test guest: an auth filter built on HTTP
// callouts, written the way the proxy-wasm Go SDK's examples write one. For
// each request it asks the cluster named in its configuration
// ("CLUSTER TIMEOUT_MS [CHECKS]") CHECKS times (default 1) with GET /check,
// passing the request's authorization header and x-check: 1, 2, ..., and
// pauses the request. When every answer is in it resumes the request if all
// were 200, and otherwise (a denial, a timeout, a failed connection)
// answers 403 itself with the first bad answer: it fails closed. Like
// the SDK's examples it lets the request through when the callout cannot
// even be dispatched, which is why a host whose callouts always fail
// makes it fail open.
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
	cluster string
	timeout uint32
	checks  int
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	fields := strings.Fields(string(cfg))
	if err != nil || len(fields) < 2 || len(fields) > 3 {
		proxywasm.LogError("calloutauth: configuration must be \"CLUSTER TIMEOUT_MS [CHECKS]\"")
		return types.OnPluginStartStatusFailed
	}
	p.checks = 1
	if len(fields) == 3 {
		if p.checks, err = strconv.Atoi(fields[2]); err != nil || p.checks < 1 {
			proxywasm.LogError("calloutauth: checks: must be a positive number")
			return types.OnPluginStartStatusFailed
		}
	}
	ms, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil {
		proxywasm.LogError("calloutauth: timeout: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.cluster, p.timeout = fields[0], uint32(ms)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{p: p} }

type stream struct {
	types.DefaultHttpContext
	p       *plugin
	pending int    // checks not answered yet
	bad     string // the first answer that was not 200
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	token, _ := proxywasm.GetHttpRequestHeader("authorization")
	for i := 1; i <= s.p.checks; i++ {
		hs := [][2]string{{":method", "GET"}, {":path", "/check"}, {":authority", "authz"},
			{"authorization", token}, {"x-check", strconv.Itoa(i)}}
		if _, err := proxywasm.DispatchHttpCall(s.p.cluster, hs, nil, nil, s.p.timeout, s.onCheck); err != nil {
			proxywasm.LogCritical("calloutauth: dispatch: " + err.Error())
			return types.ActionContinue
		}
		s.pending++
	}
	return types.ActionPause
}

func (s *stream) onCheck(numHeaders, _, _ int) {
	s.pending--
	status := "none"
	if numHeaders > 0 {
		hs, err := proxywasm.GetHttpCallResponseHeaders()
		if err != nil {
			proxywasm.LogError("calloutauth: " + err.Error())
		}
		for _, h := range hs {
			if h[0] == ":status" {
				status = h[1]
			}
		}
	}
	if status != "200" && s.bad == "" {
		s.bad = status
	}
	if s.pending > 0 {
		return
	}
	if s.bad == "" {
		if err := proxywasm.AddHttpRequestHeader("x-auth", "checked"); err != nil {
			proxywasm.LogError("calloutauth: " + err.Error())
		}
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogError("calloutauth: resume: " + err.Error())
		}
		return
	}
	proxywasm.LogWarn("calloutauth: denied, check answered " + s.bad)
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"x-denied-by", "calloutauth"}}, []byte("denied: check answered "+s.bad+"\n"), -1); err != nil {
		proxywasm.LogError("calloutauth: " + err.Error())
	}
}
