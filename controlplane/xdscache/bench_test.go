package xdscache

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

// BenchmarkFanOut measures one push of a 2.4 MB filter config to every node
// of a fleet, as far as the cache goes: per iteration, each node's watch
// (state of the world or delta) is answered with a new snapshot (the same
// value for every node, as the controller's builder hands out) and the
// response the server would send is built. go-control-plane's cache
// encodes the module once per node (and for delta hashes it once per node
// and once per snapshot); this one once per push (compare B/op).
//
//	go test -run '^$' -bench FanOut -benchmem ./controlplane/xdscache/
func BenchmarkFanOut(b *testing.B) {
	const nodes = 100
	module := bytes.Repeat([]byte{0x5a}, 2400<<10)
	// watch opens node's watch for the push of version i, the node having
	// the module of version i-1 (had is its delta version), and returns a
	// function that builds the response it got.
	type watch func(c cache.SnapshotCache, node string, i int, had string) (cancel func(), respond func() error, err error)
	sotw := func(c cache.SnapshotCache, node string, i int, _ string) (func(), func() error, error) {
		out := make(chan cache.Response, 1)
		req := &discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: ecds, VersionInfo: fmt.Sprint(i - 1), ResourceNames: []string{slotA}}
		cancel, err := c.CreateWatch(req, stream.NewSotwSubscription(req.GetResourceNames(), false), out)
		return cancel, func() error { _, err := (<-out).GetDiscoveryResponse(); return err }, err
	}
	delta := func(c cache.SnapshotCache, node string, _ int, had string) (func(), func() error, error) {
		out := make(chan cache.DeltaResponse, 1)
		req := &discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: ecds, ResponseNonce: "1", ResourceNamesSubscribe: []string{slotA}}
		sub := stream.NewDeltaSubscription(req.GetResourceNamesSubscribe(), nil, map[string]string{slotA: had}, false)
		cancel, err := c.CreateDeltaWatch(req, sub, out)
		return cancel, func() error { _, err := (<-out).GetDeltaDiscoveryResponse(); return err }, err
	}
	for _, impl := range []struct {
		name string
		new  func() cache.SnapshotCache
	}{
		{name: "go-control-plane", new: func() cache.SnapshotCache { return cache.NewSnapshotCache(false, cache.IDHash{}, nil) }},
		{name: "xdscache", new: func() cache.SnapshotCache {
			c, err := New(Config{PushWindow: nodes})
			if err != nil {
				b.Fatal(err)
			}
			return c
		}},
	} {
		for _, proto := range []struct {
			name  string
			watch watch
		}{{"sotw", sotw}, {"delta", delta}} {
			b.Run(fmt.Sprintf("%s/%s/nodes=%d", impl.name, proto.name, nodes), func(b *testing.B) {
				c := impl.new()
				i, had := 0, ""
				for b.Loop() {
					i++
					module[0] = byte(i)
					s, err := cache.NewSnapshot(fmt.Sprint(i), map[resource.Type][]types.Resource{ecds: {extension(b, slotA, module)}})
					if err != nil {
						b.Fatal(err)
					}
					for n := range nodes {
						node := fmt.Sprint(n)
						cancel, respond, err := proto.watch(c, node, i, had)
						if err != nil {
							b.Fatal(err)
						}
						if err := c.SetSnapshot(context.Background(), node, s); err != nil {
							b.Fatal(err)
						}
						if err := respond(); err != nil {
							b.Fatal(err)
						}
						cancel()
					}
					// Both caches version a resource of a snapshot without a
					// version map by the sha256 of its encoding.
					enc, err := cache.MarshalResource(s.GetResources(ecds)[slotA])
					if err != nil {
						b.Fatal(err)
					}
					had = cache.HashResource(enc)
				}
			})
		}
	}
}
