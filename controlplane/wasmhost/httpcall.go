package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// HTTPCaller performs the callouts guests start with proxy_http_call.
//
// Design: the host calls HTTPCall synchronously, inside the guest's
// proxy_http_call, with a context bounded by the callout's timeout (none
// when the guest passed 0) and by the context of the plugin call that is
// running. The response is queued and delivered as proxy_on_http_call_response
// once the guest callback that made the call has returned, before the host
// method that ran the callback (NewPlugin, Tick, an HTTPStream method)
// returns. The guest therefore sees Envoy's asynchronous order (call returns
// a token, response arrives in a later callback), and nothing runs on
// another goroutine, so there is nothing to race. The price: the plugin
// (the VM) is held while the call runs, so its other streams and its ticks
// wait, where Envoy's worker would go on (Context::httpCall in
// source/extensions/common/wasm/context.cc only starts the request).
//
// Implementations shared by plugins that run in parallel must be safe for
// concurrent use, and must not call back into the Plugin that called them.
type HTTPCaller interface {
	// HTTPCall sends req to the cluster it names. An error wrapping
	// ErrUnknownCluster makes proxy_http_call fail with BadArgument, as
	// Envoy does for a cluster it does not know; any other error is
	// delivered as a failed callout: proxy_on_http_call_response with no
	// headers, body or trailers, and proxy_get_status reporting the error.
	HTTPCall(ctx context.Context, req *HTTPCallRequest) (*HTTPCallResponse, error)
}

// HTTPCallerFunc adapts a function to HTTPCaller.
type HTTPCallerFunc func(ctx context.Context, req *HTTPCallRequest) (*HTTPCallResponse, error)

var _ HTTPCaller = HTTPCallerFunc(nil)

// HTTPCall calls f.
func (f HTTPCallerFunc) HTTPCall(ctx context.Context, req *HTTPCallRequest) (*HTTPCallResponse, error) {
	return f(ctx, req)
}

// HTTPCallRequest is one callout as the guest asked for it. Headers always
// carry ":method", ":path" and ":authority" (the host refuses a call
// without them, like Envoy).
type HTTPCallRequest struct {
	Cluster  string
	Headers  *Headers
	Body     []byte
	Trailers *Headers
	// Timeout is the guest's timeout; 0 means none.
	Timeout time.Duration
}

// HTTPCallResponse is what the guest reads back in
// proxy_on_http_call_response. Headers should carry ":status".
type HTTPCallResponse struct {
	Headers  *Headers
	Body     []byte
	Trailers *Headers
}

// ErrUnknownCluster is what an HTTPCaller returns (wrapped) for a cluster it
// cannot reach at all.
var ErrUnknownCluster = errors.New("unknown cluster")

// hostHTTPCall is proxy_http_call: it checks the call as Envoy's
// Context::httpCall does, runs it through the HTTPCaller and queues the
// response for delivery after the running callback.
func hostHTTPCall(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	cluster, ok1 := readString(mod, a[0], a[1])
	rawHeaders, ok2 := viewBytes(mod, a[2], a[3]) // decoded below, before the guest runs again
	body, ok3 := readBytes(mod, a[4], a[5])
	rawTrailers, ok4 := viewBytes(mod, a[6], a[7])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return statusInvalidMemoryAccess
	}
	if st := writeU32(mod, a[9], 0); st != statusOK { // check before calling out, as Envoy does
		return st
	}
	if int32(uint32(a[8])) < 0 { // Envoy takes the timeout as a signed int and refuses a negative one
		return statusBadArgument
	}
	headers, err1 := decodePairs(rawHeaders)
	trailers, err2 := decodePairs(rawTrailers)
	if err1 != nil || err2 != nil {
		return statusBadArgument
	}
	req := &HTTPCallRequest{Cluster: cluster, Headers: &Headers{}, Body: body, Trailers: &Headers{}, Timeout: time.Duration(uint32(a[8])) * time.Millisecond}
	req.Headers.replaceAll(headers)
	req.Trailers.replaceAll(trailers)
	for _, h := range []string{":path", ":method", ":authority"} {
		if _, ok := req.Headers.Get(h); !ok {
			return statusBadArgument
		}
	}
	if p.cfg.HTTPCall == nil {
		return statusBadArgument
	}
	cctx := ctx
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	resp, err := p.cfg.HTTPCall.HTTPCall(cctx, req)
	if errors.Is(err, ErrUnknownCluster) {
		return statusBadArgument
	}
	if err == nil && resp == nil {
		err = fmt.Errorf("cluster %s: no response", cluster)
	}
	if err != nil {
		resp = nil
	}
	p.nextCallout++
	token := p.nextCallout
	p.callouts = append(p.callouts, callout{token: token, resp: resp, err: err})
	return writeU32(mod, a[9], token)
}
