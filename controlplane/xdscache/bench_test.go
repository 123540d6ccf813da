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
// of a fleet, as far as the cache goes: per iteration, each node's watch is
// answered with a new snapshot (the same value for every node, as the
// controller's builder hands out) and the response the server would send
// is built. go-control-plane's cache encodes the module once per node;
// this one once per push (compare B/op).
//
//	go test -run '^$' -bench FanOut -benchmem ./controlplane/xdscache/
func BenchmarkFanOut(b *testing.B) {
	const nodes = 100
	module := bytes.Repeat([]byte{0x5a}, 2400<<10)
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
		b.Run(fmt.Sprintf("%s/nodes=%d", impl.name, nodes), func(b *testing.B) {
			c := impl.new()
			i := 0
			for b.Loop() {
				i++
				module[0] = byte(i)
				s, err := cache.NewSnapshot(fmt.Sprint(i), map[resource.Type][]types.Resource{ecds: {extension(b, slotA, module)}})
				if err != nil {
					b.Fatal(err)
				}
				for n := range nodes {
					node := fmt.Sprint(n)
					out := make(chan cache.Response, 1)
					req := &discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: ecds, VersionInfo: fmt.Sprint(i - 1), ResourceNames: []string{slotA}}
					cancel, err := c.CreateWatch(req, stream.NewSotwSubscription(req.GetResourceNames(), false), out)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.SetSnapshot(context.Background(), node, s); err != nil {
						b.Fatal(err)
					}
					if _, err := (<-out).GetDiscoveryResponse(); err != nil {
						b.Fatal(err)
					}
					cancel()
				}
			}
		})
	}
}
