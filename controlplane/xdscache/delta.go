package xdscache

import (
	"context"
	"slices"
	"strings"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// deltaResponse is a delta response whose resources are shared encodings.
// The server sets the nonce on the DeltaDiscoveryResponse it gets, so each
// response builds its own; the Resource messages are shared read-only.
type deltaResponse struct {
	req      *discovery.DeltaDiscoveryRequest
	version  string
	ctx      context.Context
	out      *discovery.DeltaDiscoveryResponse
	returned map[string]string
	size     int
}

var _ cache.DeltaResponse = (*deltaResponse)(nil)

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return r.out, nil
}
func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                 { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                        { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string              { return r.returned }
func (r *deltaResponse) GetReturnedResources() map[string]string           { return r.returned }
func (r *deltaResponse) GetContext() context.Context                       { return r.ctx }

// deltaDiff is what a delta response to sub carries, as go-control-plane's
// snapshot cache computes it (createDeltaResponse): a wildcard subscription
// gets every resource of the type whose version the node lacks and the
// removal of every resource it was returned that is gone; a subscription by
// name gets the same for the names it subscribes to. next is what the node
// has once it took the response. Resources and removals are sorted by name.
func deltaDiff(te *typeEncoding, sub cache.Subscription) (send []*discovery.Resource, removed []string, next map[string]string) {
	known := sub.ReturnedResources()
	consider := func(name string) {
		re, ok := te.byName[name]
		if !ok {
			if _, had := known[name]; had {
				removed = append(removed, name)
			}
			return
		}
		v := re.delta.GetVersion()
		next[name] = v
		if prev, had := known[name]; !had || prev != v {
			send = append(send, re.delta)
		}
	}
	if sub.IsWildcard() {
		next = make(map[string]string, len(te.byName))
		for name := range te.byName {
			consider(name)
		}
		for name := range known {
			if _, ok := te.byName[name]; !ok {
				removed = append(removed, name)
			}
		}
	} else {
		next = make(map[string]string, len(sub.SubscribedResources()))
		for name := range sub.SubscribedResources() {
			consider(name)
		}
	}
	slices.SortFunc(send, func(a, b *discovery.Resource) int { return strings.Compare(a.GetName(), b.GetName()) })
	slices.Sort(removed)
	return send, removed, next
}

// wantsDelta says whether a delta watch is answered now: something changed
// for it, or it is the first request of a subscription that is wildcard
// (go-control-plane's rule, snapshotCache.respondDelta in
// pkg/cache/v3/simple.go: a node waiting for its first update of the type
// would otherwise wait out its initial fetch timeout, the timer
// GrpcSubscriptionImpl::start arms in Envoy's
// source/extensions/config_subscription/grpc/grpc_subscription_impl.cc) or
// that reports resources the node has (a reconnect). The second rule is
// ours: the node ACKs that answer, and its system version then says what
// the node runs of the type, which nothing else would tell the fleet
// registry when the node already has everything.
func wantsDelta(req *discovery.DeltaDiscoveryRequest, sub cache.Subscription, te *typeEncoding) bool {
	first := req.GetResponseNonce() == "" && (sub.IsWildcard() || len(req.GetInitialResourceVersions()) > 0)
	return first || deltaDiffers(te, sub)
}

// deltaDiffers says whether deltaDiff would send or remove anything,
// without building the response: SetSnapshot asks it of every open watch.
func deltaDiffers(te *typeEncoding, sub cache.Subscription) bool {
	known := sub.ReturnedResources()
	differs := func(name string) bool {
		re, ok := te.byName[name]
		if !ok {
			_, had := known[name]
			return had
		}
		prev, had := known[name]
		return !had || prev != re.delta.GetVersion()
	}
	if !sub.IsWildcard() {
		for name := range sub.SubscribedResources() {
			if differs(name) {
				return true
			}
		}
		return false
	}
	for name := range te.byName {
		if differs(name) {
			return true
		}
	}
	for name := range known {
		if _, ok := te.byName[name]; !ok {
			return true
		}
	}
	return false
}

// deltaResponse answers req from s with the shared encodings.
func (e *encoded) deltaResponse(ctx context.Context, req *discovery.DeltaDiscoveryRequest, sub cache.Subscription, s cache.ResourceSnapshot) (*deltaResponse, error) {
	t := req.GetTypeUrl()
	te, err := e.of(t, s)
	if err != nil {
		return nil, err
	}
	send, removed, next := deltaDiff(te, sub)
	version := s.GetVersion(t)
	r := &deltaResponse{req: req, version: version, ctx: ctx, returned: next}
	for _, res := range send {
		r.size += len(res.GetResource().GetValue())
	}
	r.out = &discovery.DeltaDiscoveryResponse{SystemVersionInfo: version, TypeUrl: t, Resources: send, RemovedResources: removed}
	return r, nil
}

// deltaVersion is the version a delta response gives a resource: the
// snapshot's (the builder puts what the node runs in it, see
// snapshot.resourceVersion), or, for a snapshot without one, the sha256 of
// its encoding, as go-control-plane's ConstructVersionMap computes it.
func deltaVersion(s cache.ResourceSnapshot, typeURL, name, hash string) string {
	if v := s.GetVersionMap(typeURL)[name]; v != "" {
		return v
	}
	return hash
}
