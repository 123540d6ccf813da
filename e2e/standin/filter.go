package standin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// action is what a filter callback asks of the chain.
type action int

const (
	actContinue action = iota
	// actStop is proxy-wasm's Pause (Envoy's StopIteration): the filter holds
	// the stream, normally because it sent a local reply or waits for the body.
	actStop
)

// localReply is a response a filter generated instead of the upstream's.
type localReply struct {
	status  int
	headers [][2]string
	body    []byte
}

// filterStream is one filter instance on one request. The proxy calls it
// from the request's goroutine only; callbacks take the headers or body in
// place and may change them. A filter that stops the end of a stream
// without a reply holds the callback until it resumes the stream from a
// later callback of its own (a tick, a queue notification), sends a reply,
// resets the stream, or ctx (the request's) ends, as Envoy keeps a
// stopped stream.
type filterStream interface {
	requestHeaders(ctx context.Context, h *headerMap, endOfStream bool) (action, error)
	requestBody(ctx context.Context, b *[]byte, endOfStream bool) (action, error)
	responseHeaders(ctx context.Context, h *headerMap, endOfStream bool) (action, error)
	responseBody(ctx context.Context, b *[]byte, endOfStream bool) (action, error)
	// local returns the reply the filter sent, if any.
	local() *localReply
	// done ends the stream (proxy_on_done/proxy_on_delete).
	done()
}

// vm is a loaded filter configuration: a module running in one or more VMs
// with its plugin configured. It is safe for concurrent use: newStream may be
// called from many requests at once.
type vm interface {
	newStream(rs *routeState) (filterStream, error)
	// close releases the VMs once no stream uses them any more.
	close()
}

// failClosed is the filter Envoy puts in place of a Wasm filter that has no
// VM under FAIL_CLOSED: every request through it gets a 503.
type failClosed struct{}

var _ filterStream = failClosed{}

func (failClosed) requestHeaders(context.Context, *headerMap, bool) (action, error) {
	return actStop, nil
}
func (failClosed) requestBody(context.Context, *[]byte, bool) (action, error) { return actStop, nil }
func (failClosed) responseHeaders(context.Context, *headerMap, bool) (action, error) {
	return actContinue, nil
}
func (failClosed) responseBody(context.Context, *[]byte, bool) (action, error) {
	return actContinue, nil
}
func (failClosed) done() {}
func (failClosed) local() *localReply {
	return &localReply{status: http.StatusServiceUnavailable, body: []byte("wasm_fail_closed\n")}
}

// missingConfig is Envoy's MissingConfigFilter
// (source/common/http/filter_chain_helper.h): it stands in the chain where
// a filter enabled for the route has no config, because its first config
// was rejected or never arrived before the listener stopped waiting. It
// answers 500 with an empty body (response flag NFCF, no details) from the
// request headers, so the filters before it run and the ones after it do not.
type missingConfig struct{}

var _ filterStream = missingConfig{}

func (missingConfig) requestHeaders(context.Context, *headerMap, bool) (action, error) {
	return actStop, nil
}
func (missingConfig) requestBody(context.Context, *[]byte, bool) (action, error) { return actStop, nil }
func (missingConfig) responseHeaders(context.Context, *headerMap, bool) (action, error) {
	return actContinue, nil
}
func (missingConfig) responseBody(context.Context, *[]byte, bool) (action, error) {
	return actContinue, nil
}
func (missingConfig) done() {}
func (missingConfig) local() *localReply {
	return &localReply{status: http.StatusInternalServerError}
}

// headerMap is an ordered header list with lower-case names, pseudo-headers
// (:method, :path, :authority, :scheme, :status) first, as proxy-wasm sees it.
type headerMap [][2]string

func (h headerMap) get(name string) (string, bool) {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

func (h *headerMap) set(name, value string) {
	for i, kv := range *h {
		if kv[0] == name {
			(*h)[i][1] = value
			return
		}
	}
	*h = append(*h, [2]string{name, value})
}

// hopByHop headers belong to one connection and are not forwarded.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
}

func requestHeaderMap(r *http.Request) headerMap {
	h := headerMap{{":method", r.Method}, {":path", r.URL.RequestURI()}, {":authority", r.Host}, {":scheme", "http"}}
	return appendHeaders(h, r.Header)
}

func responseHeaderMap(status int, hdr http.Header) headerMap {
	return appendHeaders(headerMap{{":status", strconv.Itoa(status)}}, hdr)
}

func appendHeaders(h headerMap, hdr http.Header) headerMap {
	for name, vs := range hdr {
		name = strings.ToLower(name)
		if hopByHop[name] {
			continue
		}
		for _, v := range vs {
			h = append(h, [2]string{name, v})
		}
	}
	return h
}

// httpHeader copies the regular headers (see regular).
func (h headerMap) httpHeader() http.Header {
	out := http.Header{}
	for _, kv := range h {
		if regular(kv[0]) {
			out.Add(kv[0], kv[1])
		}
	}
	return out
}

// regular says whether a header goes on the wire as written: not a
// pseudo-header, not hop-by-hop, not content-length (set from the body).
func regular(name string) bool {
	return !strings.HasPrefix(name, ":") && !hopByHop[name] && name != "content-length"
}
