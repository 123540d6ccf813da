package main

import (
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// side is one direction of the stream: its host calls and how a bad body
// is answered. The same rule code runs on both through it.
type side struct {
	name        string
	header      func(name string) (string, error)
	remove      func(name string) error
	replace     func(name, value string) error
	add         func(name, value string) error
	body        func(start, size int) ([]byte, error)
	replaceBody func(body []byte) error
	// Statuses and error codes of the local reply for a body that is too
	// large / not JSON.
	tooLarge, notJSON         uint32
	tooLargeCode, notJSONCode string
}

var (
	request = side{
		name: "request", header: proxywasm.GetHttpRequestHeader, remove: proxywasm.RemoveHttpRequestHeader,
		replace: proxywasm.ReplaceHttpRequestHeader, add: proxywasm.AddHttpRequestHeader,
		body: proxywasm.GetHttpRequestBody, replaceBody: proxywasm.ReplaceHttpRequestBody,
		tooLarge: 413, notJSON: 400,
		tooLargeCode: "request_body_too_large", notJSONCode: "request_body_not_json",
	}
	response = side{
		name: "response", header: proxywasm.GetHttpResponseHeader, remove: proxywasm.RemoveHttpResponseHeader,
		replace: proxywasm.ReplaceHttpResponseHeader, add: proxywasm.AddHttpResponseHeader,
		body: proxywasm.GetHttpResponseBody, replaceBody: proxywasm.ReplaceHttpResponseBody,
		tooLarge: 502, notJSON: 502,
		tooLargeCode: "response_body_too_large", notJSONCode: "response_body_not_json",
	}
)

// direction is one side of the stream as configured: its host calls, its
// rules and its counter of edited bodies.
type direction struct {
	side    *side
	rules   *Rules
	hasBody bool
	edited  sdk.Counter
}

type plugin struct {
	*sdk.Plugin[Config]
	request, response               *direction
	pathRewritten, passed, rejected sdk.Counter
}

func setup(p *sdk.Plugin[Config]) (sdk.HTTPFactory, error) {
	pl := &plugin{
		Plugin:   p,
		request:  &direction{side: &request, rules: &p.Config.Request, hasBody: p.Config.Request.hasBody()},
		response: &direction{side: &response, rules: &p.Config.Response, hasBody: p.Config.Response.hasBody()},
		// Handles resolved once: a lookup by name per request hashes a
		// string, which is slow in a wasm guest.
		pathRewritten: p.Metrics.Counter("path_rewritten_total"),
		passed:        p.Metrics.Counter("body_passed_total"),
		rejected:      p.Metrics.Counter("body_rejected_total"),
	}
	pl.request.edited = p.Metrics.Counter("request_body_edited_total")
	pl.response.edited = p.Metrics.Counter("response_body_edited_total")
	return func(uint32) types.HttpContext { return &httpContext{p: pl} }, nil
}

// httpContext holds one stream's body state per direction.
type httpContext struct {
	types.DefaultHttpContext
	p                 *plugin
	reqDone, respDone bool // body handled (edited, passed or rejected)
}

func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	h.p.editHeaders(h.p.request)
	if pp := h.p.Config.Request.PathPrefix; pp != nil {
		h.p.rewritePath(pp)
	}
	h.p.unsetLength(h.p.request, endOfStream)
	return types.ActionContinue
}

func (h *httpContext) OnHttpRequestBody(size int, endOfStream bool) types.Action {
	return h.p.onBody(h.p.request, &h.reqDone, size, endOfStream)
}

func (h *httpContext) OnHttpResponseHeaders(_ int, endOfStream bool) types.Action {
	h.p.editHeaders(h.p.response)
	h.p.unsetLength(h.p.response, endOfStream)
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(size int, endOfStream bool) types.Action {
	return h.p.onBody(h.p.response, &h.respDone, size, endOfStream)
}

// unsetLength removes content-length when a body that will be edited
// follows: the headers go on at once, before the edited length is known.
//
// The headers are not held (Pause) until the body has arrived: on Envoy a
// Pause from a headers callback is StopAllIterationAndWatermark unless the
// plugin config sets allow_on_headers_stop_iteration, which a filter cannot
// see, and then the body never reaches the filter and the request hangs
// (proxy-wasm-cpp-host ContextBase::convertVmCallResultToFilterHeadersStatus).
// Buffering from the body callback works under either setting.
func (p *plugin) unsetLength(c *direction, endOfStream bool) {
	if c.hasBody && !endOfStream {
		p.check(c.side, "remove", "content-length", c.side.remove("content-length"))
	}
}

// editHeaders applies remove, rename, set, add in that order. Names go to
// the host as configured: Envoy compares header names case-insensitively.
// A rename moves the first value of a repeated header (the ABI's
// get_header_map_value returns one), replacing any header of the new name.
func (p *plugin) editHeaders(c *direction) {
	s, r := c.side, &c.rules.Headers
	for _, name := range r.Remove {
		p.check(s, "remove", name, s.remove(name))
	}
	for _, rn := range r.Rename {
		v, err := s.header(rn.From)
		if err != nil { // absent
			continue
		}
		p.check(s, "remove", rn.From, s.remove(rn.From))
		p.check(s, "set", rn.To, s.replace(rn.To, v))
	}
	for _, hd := range r.Set {
		p.check(s, "set", hd.Name, s.replace(hd.Name, hd.Value))
	}
	for _, hd := range r.Add {
		p.check(s, "add", hd.Name, s.add(hd.Name, hd.Value))
	}
}

func (p *plugin) check(s *side, op, header string, err error) {
	if err != nil {
		p.Log.Error("cannot edit headers", sdk.String("side", s.name), sdk.String("op", op), sdk.String("header", header), sdk.Err(err))
	}
}

func (p *plugin) rewritePath(pp *Rename) {
	path, ok := sdk.RequestHeader(":path")
	if !ok || !strings.HasPrefix(path, pp.From) {
		return
	}
	newPath := pp.To + path[len(pp.From):]
	if err := proxywasm.ReplaceHttpRequestHeader(":path", newPath); err != nil {
		p.Log.Error("cannot rewrite path", sdk.String("path", path), sdk.Err(err))
		return
	}
	p.pathRewritten.Increment(1)
}

// onBody buffers (Pause) until the end of the body, then edits it once.
// size is the length buffered so far (Envoy and the emulator report the
// whole buffer while the filter keeps pausing).
func (p *plugin) onBody(c *direction, done *bool, size int, endOfStream bool) types.Action {
	if !c.hasBody || *done {
		return types.ActionContinue
	}
	if size > p.Config.MaxBodyBytes {
		*done = true
		return p.bodyFailure(c.side.tooLarge, c.side.tooLargeCode,
			"body exceeds "+strconv.Itoa(p.Config.MaxBodyBytes)+" bytes")
	}
	if !endOfStream {
		return types.ActionPause
	}
	*done = true
	if size == 0 {
		return types.ActionContinue
	}
	body, err := c.side.body(0, size)
	if err != nil {
		p.Log.Error("cannot read body", sdk.String("side", c.side.name), sdk.Err(err))
		return types.ActionContinue
	}
	doc, err := jsonv.Parse(body)
	if err != nil {
		return p.bodyFailure(c.side.notJSON, c.side.notJSONCode, err.Error())
	}
	edit(&c.rules.Body, &doc)
	out := doc.Bytes()
	if err := c.side.replaceBody(out); err != nil {
		p.Log.Error("cannot replace body", sdk.String("side", c.side.name), sdk.Err(err))
		return types.ActionContinue
	}
	c.edited.Increment(1)
	return types.ActionContinue
}

// bodyFailure answers a bad body per on_body_error: a local JSON error
// reply, or the body goes on untouched and is counted. A request's reply
// reaches the client (no response has started; Envoy resets the upstream
// request). A response's headers have already gone downstream, so Envoy
// cannot send the reply and resets the stream instead
// (DownstreamFilterManager::sendLocalReply, source/common/http/filter_manager.cc):
// the client sees the response cut off, never a body that failed its rules.
func (p *plugin) bodyFailure(status uint32, code, detail string) types.Action {
	pass := p.Config.OnBodyError == OnErrorPass
	p.Log.Warn("cannot edit body", sdk.String("reason", code), sdk.String("detail", detail), sdk.Bool("passed", pass))
	if pass {
		p.passed.Increment(1)
		return types.ActionContinue
	}
	p.rejected.Increment(1)
	if err := sdk.SendError(status, code, detail); err != nil {
		p.Log.Error("cannot send local reply", sdk.Err(err))
		return types.ActionContinue
	}
	return types.ActionPause
}

// edit applies rename, remove, set in that order. Paths are split per
// request: a few small allocations beside the body's own parse.
func edit(r *BodyRules, doc *jsonv.Value) {
	for _, rn := range r.Rename {
		from := jsonv.SplitPath(rn.From)
		v := doc.At(from)
		if v == nil {
			continue
		}
		val := *v
		doc.DeleteAt(from)
		if !doc.SetAt(jsonv.SplitPath(rn.To), val) {
			doc.SetAt(from, val) // destination unreachable: leave it where it was
		}
	}
	for _, path := range r.Remove {
		doc.DeleteAt(jsonv.SplitPath(path))
	}
	for _, set := range r.Set {
		doc.SetAt(jsonv.SplitPath(set.Path), set.Value)
	}
}
