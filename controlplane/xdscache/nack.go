package xdscache

import (
	"maps"
	"slices"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// A delta NACK, and what the node holds after it.
//
// go-control-plane's delta server records a response's versions as the
// subscription's returned resources the moment it sends it
// (processDelta in pkg/server/delta/v3/server.go calls SetReturnedResources
// with the response's GetNextVersionMap), and never undoes that. Envoy
// records them only once its watches took the update: in
// DeltaSubscriptionState::handleResponse
// (source/extensions/config_subscription/grpc/delta_subscription_state.cc,
// and xds_mux/delta_subscription_state.cc for the unified mux),
// handleGoodResponse calls addResourceStateFromServer for the resources and
// forgets the removed ones only after watch_map_.onConfigUpdate returned;
// if that throws, handleBadResponse sends the NACK and records nothing. So
// after a NACK the node holds none of the response's resources, and a
// server that believed otherwise would never send them again: a good config
// that travelled with a bad one would not reach the node until it changed
// again.
//
// The cache therefore remembers, per delta stream and type, what the node
// had of each resource a response carried or removed, keyed by the nonce
// the server gave the response; when a NACK names that nonce, those
// resources count as the node had them before the response, and the next
// answer re-sends them at the snapshot's versions (state of the world
// re-sends after a NACK too, see encoded.response). The server's
// subscription is never written: the cache answers from a corrected copy
// of its returned resources.

// maxUnanswered bounds the responses a stream's type may have unanswered in
// the cache's memory. Envoy answers every response, in order
// (NewGrpcMuxImpl::onDiscoveryResponse queues one ACK or NACK per response
// with kickOffAck, and trySendDiscoveryRequests sends that queue first in,
// first out: source/extensions/config_subscription/grpc/new_grpc_mux_impl.cc),
// and the server opens
// one watch per request, so only a misbehaving client gets near it; the
// oldest is then forgotten (taken as accepted, go-control-plane's view).
const maxUnanswered = 16

// held is what a node has of one resource: a version, or nothing.
type held struct {
	version string
	ok      bool
}

// streamKey names one type of one delta stream. go-control-plane's delta
// server hands every watch of a stream the same response channel
// (processDelta's watches.deltaMuxedResponses), made anew for each
// stream, so a reconnect starts afresh from its initial_resource_versions.
type streamKey struct {
	out     chan cache.DeltaResponse
	typeURL string
}

// deltaStream is what the cache remembers of one type of one delta
// stream: the responses its node has not answered yet and, after a NACK,
// what the node holds instead of what they carried. It is dropped when it
// holds nothing, or with its node (ClearSnapshot); a stream that ended
// with a response unanswered keeps that response's before until then, and
// the response itself when the stream ended before sending it (it never got
// a nonce; go-control-plane's watches.Cancel drops it from the channel).
// Guarded by Cache.mu.
type deltaStream struct {
	// sent are the responses handed to the stream and not answered yet,
	// in the order the server sends them (the stream's channel is FIFO and
	// responses are put on it under Cache.mu).
	sent []*sentDelta
	// lost holds, for the resources NACKed responses carried or removed,
	// what the node has instead; it overrides the subscription's returned
	// resources until the next response is handed out (whose diff took it
	// into account).
	lost map[string]held
}

// sentDelta is one response handed to a stream.
type sentDelta struct {
	// out is the response until its nonce is read (settle): it holds the
	// resources, which a stream that ended unanswered should not keep.
	out *discovery.DeltaDiscoveryResponse
	// nonce is the response's, once the server sent it and settle read it.
	nonce string
	// before is what the node had of each resource the response carries
	// or removes, before it.
	before map[string]held
}

// answered takes in req, the stream's next request of the type: the
// response it answers is forgotten with every older one (Envoy answers in
// order, see maxUnanswered); if it is a NACK, the node keeps what it had before that
// response. Names req unsubscribes are forgotten: the server dropped them
// from the subscription (or, wildcard, marked them to be sent again).
// It runs on the stream's goroutine (see settle).
func (d *deltaStream) answered(req *discovery.DeltaDiscoveryRequest) {
	d.settle()
	if nonce := req.GetResponseNonce(); nonce != "" {
		if i := slices.IndexFunc(d.sent, func(s *sentDelta) bool { return s.nonce == nonce }); i >= 0 {
			if req.GetErrorDetail() != nil {
				d.rejected(i)
			}
			clear(d.sent[:i+1])
			d.sent = d.sent[i+1:]
		}
	}
	for _, name := range req.GetResourceNamesUnsubscribe() {
		delete(d.lost, name)
	}
}

// settle reads the nonces the server wrote into the responses it sent,
// and lets go of those responses. It must run on the stream's goroutine,
// where the server writes them (processDelta's send): go-control-plane
// calls CreateDeltaWatch and a watch's cancel there.
func (d *deltaStream) settle() {
	for _, s := range d.sent {
		if s.out == nil {
			continue
		}
		if s.nonce = s.out.GetNonce(); s.nonce != "" {
			s.out = nil
		}
	}
}

// rejected undoes sent[i]: for each resource it carried or removed, the
// node has what it had before. A later response that carried the same
// resource was computed as if the node had sent[i]'s version, so its own
// before is corrected instead; a later one that did not carry it assumed
// the node had it, which lost now overrides.
func (d *deltaStream) rejected(i int) {
	for name, h := range d.sent[i].before {
		if j := slices.IndexFunc(d.sent[i+1:], func(s *sentDelta) bool { _, ok := s.before[name]; return ok }); j >= 0 {
			d.sent[i+1+j].before[name] = h
			continue
		}
		if d.lost == nil {
			d.lost = map[string]held{}
		}
		d.lost[name] = h
	}
}

// known is what the node has of the type: the subscription's returned
// resources, corrected by lost. It is returned itself when there is
// nothing to correct, and never written.
func (d *deltaStream) known(returned map[string]string) map[string]string {
	if len(d.lost) == 0 {
		return returned
	}
	k := maps.Clone(returned)
	if k == nil {
		k = map[string]string{}
	}
	for name, h := range d.lost {
		if h.ok {
			k[name] = h.version
		} else {
			delete(k, name)
		}
	}
	return k
}

// record remembers r, just handed to the stream, with before, what the
// node had of what r carries or removes (from heldBefore). lost is spent:
// r's diff was computed from it.
func (d *deltaStream) record(r *deltaResponse, before map[string]held) {
	d.sent = append(d.sent, &sentDelta{out: r.out, before: before})
	if n := len(d.sent) - maxUnanswered; n > 0 {
		clear(d.sent[:n])
		d.sent = d.sent[n:]
	}
	d.lost = nil
}

// empty reports whether d remembers nothing.
func (d *deltaStream) empty() bool { return len(d.sent) == 0 && len(d.lost) == 0 }

// heldBefore is what the node has, by known, of each resource r carries
// or removes.
func heldBefore(r *deltaResponse, known map[string]string) map[string]held {
	if len(r.out.GetResources())+len(r.out.GetRemovedResources()) == 0 {
		return nil
	}
	before := make(map[string]held, len(r.out.GetResources())+len(r.out.GetRemovedResources()))
	at := func(name string) {
		v, ok := known[name]
		before[name] = held{version: v, ok: ok}
	}
	for _, res := range r.out.GetResources() {
		at(res.GetName())
	}
	for _, name := range r.out.GetRemovedResources() {
		at(name)
	}
	return before
}

// correctedSub is a subscription whose returned resources are corrected
// for NACKed responses (deltaStream.known); the rest is the server's.
type correctedSub struct {
	cache.Subscription
	returned map[string]string
}

func (s correctedSub) ReturnedResources() map[string]string { return s.returned }
