package ads

import (
	"context"
	"fmt"
	"maps"
	"slices"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

// The delta protocol below follows Envoy's delta gRPC mux: NewGrpcMuxImpl
// in source/extensions/config_subscription/grpc/new_grpc_mux_impl.cc and
// DeltaSubscriptionState in delta_subscription_state.cc beside it.

// deltaType is one type's state under delta xDS (DeltaSubscriptionState).
type deltaType struct {
	wildcard bool
	// versions holds the version of every resource the client holds: for a
	// wildcard type each one received and not removed, for a named type
	// each subscribed one that a response carried. A subscribed name
	// without an entry is waiting for the server. A new stream sends this
	// map as initial_resource_versions.
	versions map[string]string
	// order and held are a wildcard type's resources, in the order they
	// first arrived: the view its handler gets. A named type keeps none
	// (its handler gets what changed), so that a node does not hold a copy
	// of every module it was sent.
	order []string
	held  map[string]*anypb.Any
	// names are the names of a named type the server was last told about,
	// sorted; sent says whether this stream has carried a request for the
	// type yet.
	names []string
	sent  bool
}

func newDeltaType(wildcard bool) *deltaType {
	return &deltaType{wildcard: wildcard, versions: map[string]string{}, held: map[string]*anypb.Any{}}
}

// pending says whether t has a request to send besides an ACK
// (DeltaSubscriptionState::subscriptionUpdatePending): the first one on a
// stream (for a named type only once it wants names), or a change of names.
func (t *deltaType) pending(want []string) bool {
	if !t.sent {
		return t.wildcard || len(want) > 0
	}
	return !t.wildcard && !slices.Equal(want, t.names)
}

// request returns t's next request for the sorted names want
// (DeltaSubscriptionState::getNextRequestAckless). The first request on a
// stream states everything, since the server may be a new one: every
// wanted name, and the version of every resource held, so that the server
// sends only what changed. A wildcard type names nothing: Envoy's LDS and
// CDS watches ask for no names, which keeps the type in legacy wildcard
// mode (isInitialRequestForLegacyWildcard), so its requests never carry
// names, "*" included. Later requests carry the names added and dropped
// since the last one; a dropped name's version is forgotten, as Envoy
// erases its requested state (updateSubscriptionInterest).
func (t *deltaType) request(typeURL string, want []string) *discovery.DeltaDiscoveryRequest {
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: typeURL}
	if !t.wildcard {
		for name := range t.versions {
			if !has(want, name) {
				delete(t.versions, name)
			}
		}
		if t.sent {
			req.ResourceNamesSubscribe = missing(want, t.names)
			req.ResourceNamesUnsubscribe = missing(t.names, want)
		} else {
			req.ResourceNamesSubscribe = slices.Clone(want)
		}
		t.names = want
	}
	if !t.sent && len(t.versions) > 0 {
		req.InitialResourceVersions = maps.Clone(t.versions)
	}
	t.sent = true
	return req
}

// apply hands resp to h as a state-of-the-world view (see Handler) and, if
// h accepts it, takes in the response's versions and removals
// (DeltaSubscriptionState::handleGoodResponse: the watches are called
// first, and the versions recorded only if none of them failed). A
// rejected response leaves every version and resource as it was
// (handleBadResponse), so a new stream reports the versions from before it.
func (t *deltaType) apply(resp *discovery.DeltaDiscoveryResponse, h Handler) error {
	seen := map[string]bool{}
	var changed []*discovery.Resource
	for _, r := range resp.GetResources() {
		name := r.GetName()
		if seen[name] {
			return fmt.Errorf("duplicate resource %s", name)
		}
		seen[name] = true
		if r.GetResource() == nil {
			// A heartbeat (isHeartbeatResponse) is a resource held, at
			// the version held, without its body; anything else must
			// carry one of the response's type.
			if v, ok := t.versions[name]; ok && v == r.GetVersion() {
				continue
			}
			return fmt.Errorf("resource %s: no resource", name)
		}
		if r.GetResource().GetTypeUrl() != resp.GetTypeUrl() {
			return fmt.Errorf("resource %s: type %s in a %s response", name, r.GetResource().GetTypeUrl(), resp.GetTypeUrl())
		}
		if !t.wildcard && !has(t.names, name) {
			// Not asked for: no watch gets it and no version is kept.
			continue
		}
		changed = append(changed, r)
	}
	var removed []string
	for _, name := range resp.GetRemovedResources() {
		if seen[name] {
			return fmt.Errorf("duplicate resource %s among the added and removed", name)
		}
		seen[name] = true
		if _, held := t.versions[name]; held || (!t.wildcard && has(t.names, name)) {
			removed = append(removed, name)
		}
	}

	view := &discovery.DiscoveryResponse{
		VersionInfo:  resp.GetSystemVersionInfo(),
		TypeUrl:      resp.GetTypeUrl(),
		Nonce:        resp.GetNonce(),
		ControlPlane: resp.GetControlPlane(),
	}
	order, held := t.order, t.held
	if t.wildcard {
		held = maps.Clone(t.held)
		for _, name := range removed {
			delete(held, name)
		}
		order = slices.DeleteFunc(slices.Clone(t.order), func(name string) bool { return held[name] == nil })
		for _, r := range changed {
			if held[r.GetName()] == nil {
				order = append(order, r.GetName())
			}
			held[r.GetName()] = r.GetResource()
		}
		for _, name := range order {
			view.Resources = append(view.Resources, held[name])
		}
	} else {
		for _, r := range changed {
			view.Resources = append(view.Resources, r.GetResource())
		}
	}
	var err error
	if dh, ok := h.(DeltaHandler); ok {
		err = dh.HandleDelta(view, removed)
	} else {
		err = h.Handle(view)
	}
	if err != nil {
		return err
	}
	t.order, t.held = order, held
	for _, r := range changed {
		t.versions[r.GetName()] = r.GetVersion()
	}
	// A removed resource that is still subscribed waits for the server
	// again: no version, so a new stream does not report one.
	for _, name := range removed {
		delete(t.versions, name)
	}
	return nil
}

// deltaStream runs one delta ADS stream (NewGrpcMuxImpl); received says
// whether any response arrived (a stream that worked resets the backoff).
func (c *Client) deltaStream(ctx context.Context, api discovery.AggregatedDiscoveryServiceClient) (received bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := api.DeltaAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.connects++
	c.mu.Unlock()
	// A new stream makes every type state its interest and versions again
	// (onStreamEstablished, markStreamFresh).
	for _, t := range c.deltas {
		t.sent = false
	}
	// send sends typeURL's next request; with a nonce it answers that
	// response (getNextRequestWithAck), as a NACK when detail is set. Every
	// request carries the node: the delta mux sets it on each one
	// (getNextRequestAckless) and has no set_node_on_first_message_only.
	send := func(typeURL string, want []string, nonce string, detail error) error {
		req := c.deltas[typeURL].request(typeURL, want)
		req.Node, req.ResponseNonce = c.cfg.Node, nonce
		if detail != nil {
			// handleBadResponse answers with code Internal.
			req.ErrorDetail = &status.Status{Code: int32(codes.Internal), Message: detail.Error()}
		}
		return s.Send(req)
	}
	// flush sends what the types have to say besides ACKs, in the order
	// their subscriptions began (whoWantsToSendDiscoveryRequest): the
	// wildcard types, then the named ones.
	flush := func() error {
		for _, typeURL := range append(slices.Clone(c.cfg.Wildcard), c.cfg.Named...) {
			want := c.wanted(typeURL)
			if !c.deltas[typeURL].pending(want) {
				continue
			}
			if err := send(typeURL, want, "", nil); err != nil {
				return err
			}
		}
		return nil
	}
	if err := flush(); err != nil {
		return false, err
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return received, err
		}
		received = true
		c.received(resp.GetTypeUrl(), resp)
		t, ok := c.deltas[resp.GetTypeUrl()]
		if !ok {
			// onDiscoveryResponse drops it unanswered.
			c.cfg.Log.Warn("ads: delta response for a type never subscribed", zap.String("type", resp.GetTypeUrl()))
			continue
		}
		herr := t.apply(resp, c.cfg.Handler)
		if err := send(resp.GetTypeUrl(), c.wanted(resp.GetTypeUrl()), resp.GetNonce(), herr); err != nil {
			return received, err
		}
		if err := flush(); err != nil {
			return received, err
		}
	}
}

// wanted is what a named type should subscribe to now (Client.names); nil
// for a wildcard type.
func (c *Client) wanted(typeURL string) []string {
	if c.deltas[typeURL].wildcard {
		return nil
	}
	return c.names(typeURL)
}

// has reports whether the sorted names hold name.
func has(names []string, name string) bool {
	_, ok := slices.BinarySearch(names, name)
	return ok
}

// missing returns the names of the sorted from that the sorted in lacks.
func missing(from, in []string) []string {
	var out []string
	for _, name := range from {
		if !has(in, name) {
			out = append(out, name)
		}
	}
	return out
}
