package standin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
)

// httpCall serves a guest's proxy_http_call as Envoy's Context::httpCall
// (source/extensions/common/wasm/context.cc) does: a cluster the node does
// not know (from CDS) fails the call at once with BadArgument; otherwise
// the request goes to one of the cluster's endpoints, with the guest's
// headers and body, no x-forwarded-for, and the guest's timeout (0: none;
// wasmhost puts it on ctx). Envoy sends it through its async client, which
// runs the router, so an upstream failure reaches the guest as the
// router's local reply, a response: 503 when the cluster has no endpoint
// or the connection fails, 504 when the timeout passes.
func (n *node) httpCall(ctx context.Context, req *wasmhost.HTTPCallRequest) (*wasmhost.HTTPCallResponse, error) {
	n.mu.RLock()
	c := n.clusters[req.Cluster]
	n.mu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("standin: callout: cluster %q: %w", req.Cluster, wasmhost.ErrUnknownCluster)
	}
	status, h, body, err := n.forward(ctx, &chain{cluster: c}, headerMap(req.Headers.All()), req.Body)
	if err != nil {
		n.log.Debug("callout failed", zap.String("cluster", req.Cluster), zap.Error(err))
		status, body = calloutFailure(ctx, c)
		h = headerMap{{":status", strconv.Itoa(status)}, {"content-type", "text/plain"}}
	}
	resp := &wasmhost.HTTPCallResponse{Headers: &wasmhost.Headers{}}
	for _, kv := range h {
		resp.Headers.Add(kv[0], kv[1])
	}
	resp.Body = body
	return resp, nil
}

// calloutFailure is the local reply Envoy's router makes for a failed
// upstream request: Filter::onResponseTimeout (504 "upstream request
// timeout"), Filter::sendNoHealthyUpstreamResponse (503 "no healthy
// upstream") and Filter::onUpstreamReset (503 "upstream connect error or
// disconnect/reset before headers. reset reason: ...") in
// source/common/router/router.cc.
func calloutFailure(ctx context.Context, c *clusterState) (int, []byte) {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return http.StatusGatewayTimeout, []byte("upstream request timeout")
	case len(c.endpoints) == 0:
		return http.StatusServiceUnavailable, []byte("no healthy upstream")
	}
	return http.StatusServiceUnavailable, []byte("upstream connect error or disconnect/reset before headers. reset reason: connection failure")
}
