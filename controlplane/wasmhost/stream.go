package wasmhost

import (
	"context"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"
	"google.golang.org/protobuf/proto"
)

// StreamInfo is what the host knows about a stream beyond its headers; it
// feeds the source.*, destination.* and request.* properties.
type StreamInfo struct {
	// Source and Destination are "ip:port" (source.address, ...).
	Source, Destination string
	// Protocol is request.protocol, e.g. "HTTP/1.1".
	Protocol string
	// Start is request.time; zero = the plugin's clock at NewHTTPStream.
	Start time.Time
	// Properties adds per-stream properties, keyed like
	// PluginConfig.Properties ("connection.mtls", ...).
	Properties map[string][]byte
	// Route returns the stream's route as Envoy's StreamInfo::route() has
	// it, nil for none. It feeds xds.route_name and xds.route_metadata and
	// is asked at each lookup, so a caller that picks the route again
	// (after proxy_clear_route_cache) changes what guests read from then on.
	Route func() *Route
	// ClearRouteCache is proxy_clear_route_cache: the caller picks the
	// route again, from the request headers as they are then, before it
	// forwards the request. Nil does nothing.
	ClearRouteCache func()
}

// Route is what a guest can read of the stream's route.
type Route struct {
	Name string
	// Metadata is the route's metadata (envoy.config.core.v3.Metadata), or
	// nil.
	Metadata proto.Message
}

// LocalResponse is a response the filter asked the host to send in place of
// the upstream's (proxy_send_local_response).
type LocalResponse struct {
	Status  int
	Headers *Headers
	Body    []byte
	// Details is Envoy's response code details (may be empty).
	Details string
	// GRPCStatus is the gRPC status to send, or -1 for none.
	GRPCStatus int32
}

// HTTPStream is one request and its response through one plugin: an HTTP
// context in the guest. Call its methods in the order of the exchange
// (request headers, body, trailers, response headers, body, trailers),
// skipping what the exchange does not have, then Done. It is meant for one
// goroutine; its calls, like all calls into its Plugin, take the plugin's
// lock.
//
// Each method returns the Action the filter chose, after the callouts and
// notifications it caused were delivered: a stream the filter paused and
// then resumed with proxy_continue_stream returns ActionContinue; a filter
// that sent a local response returns ActionPause with LocalResponse set
// (Envoy stops iteration after a local reply). On error the stream's VM
// has failed (ErrVMFailed for later calls): apply the filter's failure
// policy.
type HTTPStream struct {
	p    *Plugin
	id   uint32
	ctx  context.Context // every guest call of the stream runs with it (carrying p); the methods have no ctx of their own
	info StreamInfo

	// The maps the caller passed in; the guest reads and edits them.
	requestHeaders, requestTrailers   *Headers
	responseHeaders, responseTrailers *Headers
	requestBody, responseBody         body

	waiting [2]bool           // by streamType: paused, not resumed yet
	local   *LocalResponse    // proxy_send_local_response
	reset   bool              // proxy_close_stream
	props   map[string][]byte // proxy_set_property
	done    bool
	wake    chan struct{} // one pending "resumed, replied or reset" for await
}

// body is the buffer of one direction. Envoy hands the filter the current
// chunk, or, after the filter asked to buffer (StopIterationAndBuffer or
// ...Watermark), everything buffered so far plus the chunk.
type body struct {
	buf       []byte
	buffering bool
	total     int // bytes received, for request.size / response.size
}

// NewHTTPStream creates an HTTP context in the guest
// (proxy_on_context_create). ctx bounds every guest callback of the stream
// (unless the runtime is Uninterruptible).
func (p *Plugin) NewHTTPStream(ctx context.Context) (*HTTPStream, error) {
	return p.NewHTTPStreamInfo(ctx, StreamInfo{})
}

// NewHTTPStreamInfo is NewHTTPStream with what the host knows of the
// connection and request.
func (p *Plugin) NewHTTPStreamInfo(ctx context.Context, info StreamInfo) (*HTTPStream, error) {
	if err := p.enter(ctx); err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	if info.Start.IsZero() {
		info.Start = p.cfg.Clock()
	}
	s := &HTTPStream{p: p, id: p.nextID, ctx: withPlugin(ctx, p), info: info, wake: make(chan struct{}, 1)}
	p.nextID++
	p.streams[s.id] = s
	if _, _, err := p.invoke(s.ctx, s.id, p.fn.contextCreate, uint64(s.id), uint64(p.rootID)); err != nil {
		delete(p.streams, s.id)
		return nil, fmt.Errorf("wasmhost: %s: new stream: %w", p.name(), err)
	}
	return s, nil
}

// RequestHeaders runs proxy_on_request_headers. The filter may change h in
// place; the stream keeps h for the rest of the exchange (the request.*
// properties read it).
func (s *HTTPStream) RequestHeaders(h *Headers, endOfStream bool) (Action, error) {
	return s.runHeaders(streamRequest, &s.requestHeaders, h, endOfStream)
}

// RequestBody runs proxy_on_request_body with chunk appended to what the
// filter buffered; Body(RequestBody) is then what goes on (after
// ActionContinue) or what stays buffered (after ActionPause).
func (s *HTTPStream) RequestBody(chunk []byte, endOfStream bool) (Action, error) {
	return s.runBody(streamRequest, &s.requestBody, chunk, endOfStream)
}

// RequestTrailers runs proxy_on_request_trailers; the filter may change h.
func (s *HTTPStream) RequestTrailers(h *Headers) (Action, error) {
	return s.runTrailers(streamRequest, &s.requestTrailers, h)
}

// ResponseHeaders runs proxy_on_response_headers; the filter may change h.
func (s *HTTPStream) ResponseHeaders(h *Headers, endOfStream bool) (Action, error) {
	return s.runHeaders(streamResponse, &s.responseHeaders, h, endOfStream)
}

// ResponseBody runs proxy_on_response_body, like RequestBody.
func (s *HTTPStream) ResponseBody(chunk []byte, endOfStream bool) (Action, error) {
	return s.runBody(streamResponse, &s.responseBody, chunk, endOfStream)
}

// ResponseTrailers runs proxy_on_response_trailers; the filter may change h.
func (s *HTTPStream) ResponseTrailers(h *Headers) (Action, error) {
	return s.runTrailers(streamResponse, &s.responseTrailers, h)
}

func (s *HTTPStream) runHeaders(dir streamType, slot **Headers, h *Headers, endOfStream bool) (Action, error) {
	if h == nil {
		h = &Headers{}
	}
	f := s.p.fn.requestHeaders
	if dir == streamResponse {
		f = s.p.fn.responseHeaders
	}
	return s.run(dir, f, headersAction, func() ([2]uint64, int) {
		*slot = h
		return [2]uint64{uint64(h.Len()), boolArg(endOfStream)}, 2
	})
}

func (s *HTTPStream) runTrailers(dir streamType, slot **Headers, h *Headers) (Action, error) {
	if h == nil {
		h = &Headers{}
	}
	f := s.p.fn.requestTrailers
	if dir == streamResponse {
		f = s.p.fn.responseTrailers
	}
	return s.run(dir, f, trailersAction, func() ([2]uint64, int) {
		*slot = h
		return [2]uint64{uint64(h.Len())}, 1
	})
}

func (s *HTTPStream) runBody(dir streamType, b *body, chunk []byte, endOfStream bool) (Action, error) {
	f := s.p.fn.requestBody
	if dir == streamResponse {
		f = s.p.fn.responseBody
	}
	a, err := s.run(dir, f, bodyAction, func() ([2]uint64, int) {
		if !b.buffering {
			b.buf = b.buf[:0:0] // what was continued went on; start afresh
		}
		b.buf = append(b.buf, chunk...)
		b.total += len(chunk)
		return [2]uint64{uint64(len(b.buf)), boolArg(endOfStream)}, 2
	})
	if err == nil {
		b.buffering = a == ActionPause || a == actionStopIterationAndWatermark
	}
	return a, err
}

// run is one stream callback: prepare updates the stream's state under the
// plugin's lock and returns the callback's arguments after the context id
// (n of them; an array, not a slice, so that nothing is allocated).
func (s *HTTPStream) run(dir streamType, f api.Function, clamp func(uint64) Action, prepare func() (args [2]uint64, n int)) (Action, error) {
	p := s.p
	if err := p.enter(s.ctx); err != nil {
		return ActionPause, err
	}
	defer p.mu.Unlock()
	if s.done {
		return ActionPause, fmt.Errorf("wasmhost: %s: stream %d: %w", p.name(), s.id, ErrClosed)
	}
	rest, n := prepare()
	args := [3]uint64{uint64(s.id), rest[0], rest[1]}
	hadLocal := s.local != nil
	a := ActionContinue
	if f != nil {
		res, err := p.call(s.ctx, s.id, f, args[:1+n]...)
		if err != nil {
			return ActionPause, fmt.Errorf("wasmhost: %s: stream %d: %w", p.name(), s.id, err)
		}
		a = clamp(res)
	}
	s.waiting[dir] = a != ActionContinue
	if err := p.afterCall(s.ctx); err != nil {
		return ActionPause, fmt.Errorf("wasmhost: %s: stream %d: %w", p.name(), s.id, err)
	}
	switch {
	case s.local != nil && !hadLocal:
		return ActionPause, nil
	case !s.waiting[dir]:
		return ActionContinue, nil
	}
	return a, nil
}

// AwaitRequest is for a request callback that returned ActionPause with
// no local response: it waits until the filter resumes the request
// (proxy_continue_stream) from a later callback, such as a tick or a queue
// notification, as Envoy keeps a stopped stream until the filter continues
// it. It returns ActionContinue once resumed; ActionPause when the filter
// sent a local response (LocalResponse) or reset the stream (WasReset)
// instead; an error when ctx ends first (ctx's error) or the VM fails or
// closes. Envoy bounds the wait only by the connection manager's timeouts:
// give ctx the request's.
func (s *HTTPStream) AwaitRequest(ctx context.Context) (Action, error) {
	return s.await(ctx, streamRequest)
}

// AwaitResponse is AwaitRequest for a response callback.
func (s *HTTPStream) AwaitResponse(ctx context.Context) (Action, error) {
	return s.await(ctx, streamResponse)
}

func (s *HTTPStream) await(ctx context.Context, dir streamType) (Action, error) {
	p := s.p
	for {
		p.mu.Lock()
		err := p.usable()
		switch {
		case err == nil && s.done:
			err = fmt.Errorf("wasmhost: %s: stream %d: %w", p.name(), s.id, ErrClosed)
		case err == nil && (s.local != nil || s.reset):
			p.mu.Unlock()
			return ActionPause, nil
		case err == nil && !s.waiting[dir]:
			p.mu.Unlock()
			return ActionContinue, nil
		}
		p.mu.Unlock()
		if err != nil {
			return ActionPause, err
		}
		select {
		case <-s.wake:
		case <-p.dead:
		case <-ctx.Done():
			return ActionPause, fmt.Errorf("wasmhost: %s: stream %d: paused: %w", p.name(), s.id, ctx.Err())
		}
	}
}

// wakeUp tells an await that the stream may have changed. Must hold p.mu.
func (s *HTTPStream) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func boolArg(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Envoy clamps what a guest returns to the statuses it knows.
func headersAction(r uint64) Action  { return Action(min(r, uint64(actionStopAllIterationWatermark))) }
func bodyAction(r uint64) Action     { return Action(min(r, uint64(actionStopIterationNoBuffer))) }
func trailersAction(r uint64) Action { return Action(min(r, uint64(ActionPause))) }

// Body returns a copy of the current body of that direction: after
// ActionContinue what goes on (possibly rewritten by the filter), after
// ActionPause what the host keeps buffered.
func (s *HTTPStream) Body(t BufferType) []byte {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	switch t {
	case RequestBody:
		return append([]byte(nil), s.requestBody.buf...)
	case ResponseBody:
		return append([]byte(nil), s.responseBody.buf...)
	}
	return nil
}

// LocalResponse is non-nil once the filter called proxy_send_local_response.
func (s *HTTPStream) LocalResponse() *LocalResponse {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.local
}

// WasReset reports whether the filter called proxy_close_stream: the host
// should reset the stream.
func (s *HTTPStream) WasReset() bool {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.reset
}

// Done ends the stream as Envoy does: proxy_on_done, proxy_on_log, then
// proxy_on_delete. Calling it again does nothing.
func (s *HTTPStream) Done() error {
	p := s.p
	if err := p.enter(s.ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	defer delete(p.streams, s.id)
	for _, f := range []api.Function{p.fn.done, p.fn.log, p.fn.delete} {
		if _, _, err := p.invoke(s.ctx, s.id, f, uint64(s.id)); err != nil {
			return fmt.Errorf("wasmhost: %s: stream %d: done: %w", p.name(), s.id, err)
		}
	}
	return nil
}

// Host functions of HTTP streams.

func (p *Plugin) continueStream(t streamType) status {
	if t > streamResponse {
		return statusBadArgument
	}
	if s := p.stream(); s != nil {
		s.waiting[t] = false
		s.wakeUp()
	}
	return statusOK
}

func hostCloseStream(_ context.Context, p *Plugin, _ api.Module, a []uint64) status {
	if streamType(a[0]) > streamResponse {
		return statusBadArgument
	}
	if s := p.stream(); s != nil {
		s.reset = true
		s.wakeUp()
	}
	return statusOK
}

func hostSendLocalResponse(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	details, ok1 := readString(mod, a[1], a[2])
	body, ok2 := readBytes(mod, a[3], a[4])
	raw, ok3 := viewBytes(mod, a[5], a[6]) // decodePairs copies into strings
	if !ok1 || !ok2 || !ok3 {
		return statusInvalidMemoryAccess
	}
	pairs, err := decodePairs(raw)
	if err != nil {
		pairs = nil // Envoy's parser yields no headers for malformed pairs
	}
	s := p.stream()
	if s == nil {
		return statusOK // Envoy ignores it outside a stream
	}
	h := &Headers{}
	h.replaceAll(pairs)
	s.local = &LocalResponse{Status: int(uint32(a[0])), Headers: h, Body: body, Details: details, GRPCStatus: int32(uint32(a[7]))}
	s.wakeUp()
	return statusOK
}
