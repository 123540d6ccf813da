package xdscache

import (
	"context"
	"errors"
	"fmt"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// ErrTTL is returned for a snapshot with TTL resources, which this cache
// does not serve (go-control-plane wraps them per response).
var ErrTTL = errors.New("xdscache: resources with a TTL are not supported")

// encoded holds one snapshot's resources encoded once, per type, for every
// node set to that snapshot.
type encoded struct {
	nodes int // nodes whose current snapshot this is; guarded by Cache.mu

	mu    sync.Mutex
	types map[string]*typeEncoding
}

// typeEncoding is one type's resources, encoded, by name.
type typeEncoding struct {
	byName map[string]resourceEncoding
	err    error
}

// resourceEncoding is one resource as responses carry it, and the sha256 of
// its encoding: what the subscription records as returned, so that a later
// response can leave out what the node already has. delta is the resource
// as delta responses carry it, sharing any.
type resourceEncoding struct {
	any   *anypb.Any
	hash  string
	delta *discovery.Resource
}

func newEncoded() *encoded { return &encoded{types: map[string]*typeEncoding{}} }

// of returns the type's encodings, encoding them on first use.
func (e *encoded) of(typeURL string, s cache.ResourceSnapshot) (*typeEncoding, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if te, ok := e.types[typeURL]; ok {
		return te, te.err
	}
	te := &typeEncoding{byName: map[string]resourceEncoding{}}
	rs := s.GetResourcesAndTTL(typeURL)
	if !ttlFree(rs) {
		te.err = fmt.Errorf("%s: %w", typeURL, ErrTTL)
	}
	for name, r := range rs {
		if te.err != nil {
			break
		}
		b, err := cache.MarshalResource(r.Resource)
		if err != nil {
			te.err = fmt.Errorf("xdscache: marshal %s %s: %w", typeURL, name, err)
			break
		}
		re := resourceEncoding{any: &anypb.Any{TypeUrl: typeURL, Value: b}, hash: cache.HashResource(b)}
		re.delta = &discovery.Resource{Name: name, Version: deltaVersion(s, typeURL, name, re.hash), Resource: re.any}
		te.byName[name] = re
	}
	e.types[typeURL] = te
	return te, te.err
}

// response answers req from s with the shared encodings: the requested
// resources, or all of the type when the request names none. For a type
// whose state-of-the-world responses need not be complete (all but
// listeners and clusters: the xDS spec's "Grouping Resources into
// Responses"; Envoy keeps what a response leaves out, see doc.go), a resource the
// subscription already returned with the same encoding is left out, so
// changing one filter of three sends one. After a NACK the response is
// complete: the node kept older configs than the subscription records.
func (e *encoded) response(ctx context.Context, req *discovery.DiscoveryRequest, sub cache.Subscription, s cache.ResourceSnapshot) (*response, error) {
	t := req.GetTypeUrl()
	te, err := e.of(t, s)
	if err != nil {
		return nil, err
	}
	known := sub.ReturnedResources()
	complete := cache.ResourceRequiresFullStateInSotw(t) || req.GetErrorDetail() != nil
	version := s.GetVersion(t)
	r := &response{req: req, version: version, ctx: ctx, returned: map[string]string{}}
	out := &discovery.DiscoveryResponse{VersionInfo: version, TypeUrl: t}
	add := func(name string, re resourceEncoding) {
		r.returned[name] = re.hash
		if !complete && known[name] == re.hash {
			return
		}
		out.Resources = append(out.Resources, re.any)
		r.size += len(re.any.GetValue())
	}
	if names := req.GetResourceNames(); len(names) != 0 {
		for _, name := range names {
			if re, ok := te.byName[name]; ok {
				if _, dup := r.returned[name]; !dup {
					add(name, re)
				}
			}
		}
	} else {
		for name, re := range te.byName {
			add(name, re)
		}
	}
	r.out = out
	return r, nil
}
