package standin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
)

// maxBodyBytes bounds the buffered request and response bodies, like
// Envoy's per-connection buffer limit does for buffering filters.
const maxBodyBytes = 16 << 20

// chain is what one request runs through, copied from the node's state when
// the request starts so that updates during the request do not affect it.
type chain struct {
	// configs are the enabled filters' configs, refs held (release with
	// done); nil marks where missingConfig stands.
	configs []*slotConfig
	cluster *clusterState
	timeout time.Duration // 0 means none
	noRoute bool
	route   *routeState
	headers headerMap // the request headers, pseudo-headers first
}

// routeState is a request's route. It is picked before the filters run,
// and picked again, from the request headers as the filters left them,
// before the request is forwarded when a filter cleared the route cache.
// Envoy: ActiveStream::clearRouteCache (source/common/http/
// conn_manager_impl.cc) drops the cached route and cluster, and the
// router's route() call refreshes them (refreshCachedRoute). The filters
// that run stay those of the first route (the filter chain is built once),
// and the route filters read (StreamInfo::route()) changes only when it is
// picked again.
type routeState struct {
	rc    *routepb.RouteConfiguration
	cur   atomic.Pointer[routepb.Route]
	stale atomic.Bool // a filter cleared the route cache
}

// streamInfo is what the stream's Wasm filters learn of the route.
func (rs *routeState) streamInfo() wasmhost.StreamInfo {
	return wasmhost.StreamInfo{
		Route: func() *wasmhost.Route {
			r := rs.cur.Load()
			if r == nil {
				return nil
			}
			// An unset metadata field reads as an empty message (proto3);
			// guests see an empty map, not NotFound. Not checked on Envoy.
			md := r.GetMetadata()
			if md == nil {
				md = &corepb.Metadata{}
			}
			return &wasmhost.Route{Name: r.GetName(), Metadata: md}
		},
		ClearRouteCache: func() { rs.stale.Store(true) },
	}
}

func (c *chain) done() {
	for _, sc := range c.configs {
		if sc != nil {
			sc.refs.Done()
		}
	}
}

// handler serves the HTTP traffic of the LDS listener name.
func (n *node) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, ok := n.chainFor(name, r)
		if !ok {
			writeLocal(w, &localReply{status: http.StatusServiceUnavailable, body: []byte("no listener\n")})
			return
		}
		defer n.inflight.Done()
		defer ch.done()
		if ch.noRoute {
			writeLocal(w, &localReply{status: http.StatusNotFound})
			return
		}
		n.serve(w, r, ch)
	})
}

// chainFor resolves the listener's route for r and takes a reference on the
// config of every filter enabled for it. When it returns ok the request is
// counted in inflight; the caller marks it done.
func (n *node) chainFor(name string, r *http.Request) (*chain, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	ls := n.listeners[name]
	if n.stopped || ls == nil || ls.active == nil {
		return nil, false
	}
	n.inflight.Add(1)
	m := ls.active.hcm
	rc := m.GetRouteConfig()
	if rds := m.GetRds(); rds != nil {
		rc = n.routes[rds.GetRouteConfigName()]
	}
	h := requestHeaderMap(r)
	vh, rt := matchRoute(rc, h, n.draw)
	if rt == nil {
		return &chain{noRoute: true}, true
	}
	ch := &chain{route: &routeState{rc: rc}, headers: h}
	ch.route.cur.Store(rt)
	n.target(ch, rt)
	fs := m.GetHttpFilters()
	missing := false
	for _, f := range fs[:len(fs)-1] { // the router is last (checkHCM)
		if !filterEnabled(f.GetName(), f.GetDisabled(), rc, vh, rt) {
			continue
		}
		s := n.slots[f.GetName()]
		if s == nil || s.cur == nil {
			// FilterChainUtility::createFilterChainForFactories puts one
			// MissingConfigFilter where the first enabled filter without a
			// config would be, and nothing for the others.
			if !missing {
				ch.configs = append(ch.configs, nil)
				missing = true
			}
			continue
		}
		s.cur.refs.Add(1)
		ch.configs = append(ch.configs, s.cur)
	}
	return ch, true
}

// target points ch at route rt's cluster and timeout. The caller holds
// n.mu for reading.
func (n *node) target(ch *chain, rt *routepb.Route) {
	ch.cluster = n.clusters[rt.GetRoute().GetCluster()]
	ch.timeout = DefaultRouteTimeout
	if t := rt.GetRoute().GetTimeout(); t != nil {
		ch.timeout = t.AsDuration()
	}
}

// reroute picks the route again after a filter cleared the route cache; it
// reports false when no route matches any more (Envoy's 404).
func (n *node) reroute(ch *chain) bool {
	if !ch.route.stale.Load() {
		return true
	}
	ch.route.stale.Store(false)
	_, rt := matchRoute(ch.route.rc, ch.headers, n.draw)
	ch.route.cur.Store(rt)
	if rt == nil {
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	n.target(ch, rt)
	return true
}

// serve runs the request through the filters, the upstream, and the
// response back through the filters in reverse order.
func (n *node) serve(w http.ResponseWriter, r *http.Request, ch *chain) {
	var streams []filterStream
	defer func() {
		for _, s := range streams {
			s.done()
		}
	}()
	for _, sc := range ch.configs {
		if sc == nil {
			streams = append(streams, missingConfig{})
			continue
		}
		s, err := sc.newStream(ch.route)
		if err != nil {
			n.fail(w, err)
			return
		}
		if s != nil {
			streams = append(streams, s)
		}
	}
	reqBody, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		writeLocal(w, &localReply{status: http.StatusBadRequest})
		return
	}
	if lr, err := decode.run(r.Context(), streams, &ch.headers, &reqBody); lr != nil || err != nil {
		n.reply(w, lr, err)
		return
	}
	if !n.reroute(ch) {
		writeLocal(w, &localReply{status: http.StatusNotFound})
		return
	}
	status, respH, respBody, err := n.forward(r.Context(), ch, ch.headers, reqBody)
	if err != nil {
		n.log.Debug("upstream failed", zap.Error(err))
		writeLocal(w, &localReply{status: status, body: []byte("upstream connect error or disconnect/reset before headers\n")})
		return
	}
	rev := slices.Clone(streams)
	slices.Reverse(rev)
	lr, err := encode.run(r.Context(), rev, &respH, &respBody)
	if errors.Is(err, errHeadersSent) {
		n.log.Warn("filter failed", zap.Error(err))
		resetAfterHeaders(w, responseStatus(respH), respH)
	}
	if lr != nil || err != nil {
		n.reply(w, lr, err)
		return
	}
	writeLocal(w, &localReply{status: responseStatus(respH), headers: respH, body: respBody})
}

func responseStatus(h headerMap) int {
	code, err := strconv.Atoi(firstOr(h, ":status", "502"))
	if err != nil || code < 100 {
		return http.StatusBadGateway
	}
	return code
}

// resetAfterHeaders sends the response headers, which Envoy had sent before
// a filter asked for a local reply, and resets the stream: the client sees
// the status and then a broken body. It does not return.
func resetAfterHeaders(w http.ResponseWriter, status int, h headerMap) {
	for _, kv := range h {
		if regular(kv[0]) {
			w.Header().Add(kv[0], kv[1])
		}
	}
	w.WriteHeader(status)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	panic(http.ErrAbortHandler) // net/http's way to abort a response mid-way
}

func firstOr(h headerMap, name, def string) string {
	if v, ok := h.get(name); ok {
		return v
	}
	return def
}

// forward sends the (filtered) request to an endpoint of the route's cluster.
func (n *node) forward(ctx context.Context, ch *chain, h headerMap, body []byte) (int, headerMap, []byte, error) {
	if ch.cluster == nil {
		return http.StatusServiceUnavailable, nil, nil, errors.New("no healthy upstream: unknown cluster")
	}
	ep, ok := ch.cluster.pick()
	if !ok {
		return http.StatusServiceUnavailable, nil, nil, errors.New("no healthy upstream")
	}
	if ch.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ch.timeout)
		defer cancel()
	}
	method, _ := h.get(":method")
	path, _ := h.get(":path")
	req, err := http.NewRequestWithContext(ctx, method, "http://"+ep+path, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, nil, nil, err
	}
	req.Header = h.httpHeader()
	req.Host, _ = h.get(":authority")
	resp, err := n.upstream.RoundTrip(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return http.StatusGatewayTimeout, nil, nil, err
		}
		return http.StatusServiceUnavailable, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return http.StatusServiceUnavailable, nil, nil, err
	}
	return resp.StatusCode, responseHeaderMap(resp.StatusCode, resp.Header), b, nil
}

// reply writes a filter's local reply, or the error a filter failed with.
func (n *node) reply(w http.ResponseWriter, lr *localReply, err error) {
	if err != nil {
		n.fail(w, err)
		return
	}
	writeLocal(w, lr)
}

// fail answers a request whose filter failed (a trap in the VM, a stream
// that paused for good): Envoy resets or 503s such a stream.
func (n *node) fail(w http.ResponseWriter, err error) {
	n.log.Warn("filter failed", zap.Error(err))
	writeLocal(w, &localReply{status: http.StatusServiceUnavailable, body: []byte(err.Error() + "\n")})
}

func writeLocal(w http.ResponseWriter, lr *localReply) {
	hdr := w.Header()
	for _, kv := range lr.headers {
		if regular(kv[0]) {
			hdr.Add(kv[0], kv[1])
		}
	}
	hdr.Set("Content-Length", strconv.Itoa(len(lr.body)))
	w.WriteHeader(lr.status)
	_, _ = w.Write(lr.body)
}
