package standin

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// FuzzResponse feeds arbitrary DiscoveryResponses for clusters, listeners
// and routes through decoding, validation and the state updates, then
// routes a request through every route configuration received. Nothing may
// panic; whatever is accepted must leave usable state. ECDS resources go
// through parse (unpacking and validation) only: building them loads Wasm,
// which the other tests cover with real modules.
func FuzzResponse(f *testing.F) {
	seed := func(typ string, items ...types.Resource) {
		resp := &discovery.DiscoveryResponse{TypeUrl: typ, VersionInfo: "1"}
		for _, it := range items {
			a, err := anypb.New(it)
			if err != nil {
				f.Fatal(err)
			}
			resp.Resources = append(resp.Resources, a)
		}
		b, err := proto.Marshal(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "/a/b?c")
	}
	seed(dataplane.ClusterType, xdstest.Cluster(f, "upstream", "127.0.0.1:8080"))
	seed(dataplane.ListenerType, xdstest.Listener(f, "ingress", 10000, "s0", "s1"))
	seed(dataplane.RouteType, xdstest.Routes(f, "ingress",
		xdstest.Route{Prefix: "/a", Cluster: "upstream", Slots: []string{"s0"}, Share: xdstest.Share(5000)},
		xdstest.Route{Prefix: "/", Cluster: "upstream", Slots: []string{"s1"}}))
	seed(dataplane.ExtensionType, xdstest.Noop(f, "s0"),
		xdstest.Wasm(f, "s1", xdstest.Filter{Name: "tagger", Config: "x", ModuleBaseURL: "http://modules", Digest: "ab12"}),
		xdstest.Wasm(f, "s2", xdstest.Filter{Name: "tagger", Config: "y", Inline: []byte("\x00asm")}))
	f.Fuzz(func(t *testing.T, b []byte, path string) {
		resp := &discovery.DiscoveryResponse{}
		if proto.Unmarshal(b, resp) != nil {
			return
		}
		nd, err := New(Config{Config: dataplane.Config{NodeID: "fuzz", XDSAddr: "127.0.0.1:1"}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		n := nd.(*node)
		msgs, err := unpack(resp)
		if err != nil {
			return
		}
		switch resp.GetTypeUrl() {
		case dataplane.ClusterType:
			_ = n.applyClusters(msgs)
		case dataplane.ListenerType:
			if n.applyListeners(msgs) == nil {
				for _, ls := range n.listeners {
					_ = n.warm(ls.hcm)
				}
				_ = n.Names(dataplane.ExtensionType)
			}
		case dataplane.ExtensionType:
			for _, m := range msgs {
				tec := m.(*core.TypedExtensionConfig)
				if p, err := parse(tec.GetName(), tec); err == nil && p.wasm != nil && p.wasm.GetVmConfig() == nil {
					t.Errorf("%s: accepted a wasm config without vm_config", tec.GetName())
				}
			}
		case dataplane.RouteType:
			_ = n.applyRoutes(msgs)
			for _, rc := range n.routes {
				vh, r := matchRoute(rc, request("example.com:80", path), n.draw)
				if r != nil {
					_ = filterEnabled("s0", true, rc, vh, r)
				}
			}
		}
	})
}
