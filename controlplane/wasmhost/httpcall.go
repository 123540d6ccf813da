package wasmhost

import (
	"context"
	"errors"
	"time"
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
// another goroutine, so there is nothing to race.
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
