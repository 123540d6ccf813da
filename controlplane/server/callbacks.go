package server

import (
	"context"
	"fmt"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
)

// callbacks turns go-control-plane's stream events into fleet registry calls.
// go-control-plane calls them synchronously on stream goroutines, so they
// only record: the registry never blocks. go-control-plane fills the node
// into every request of a stream from its first one.
type callbacks struct {
	fleet fleet.Registry
	log   *zap.Logger
}

var _ serverv3.Callbacks = (*callbacks)(nil)

func (c *callbacks) OnStreamOpen(_ context.Context, id int64, typeURL string) error {
	c.fleet.StreamOpened(fleet.Stream{ID: id})
	c.log.Debug("stream opened", zap.Int64("stream", id), zap.String("type", typeURL))
	return nil
}

func (c *callbacks) OnStreamClosed(id int64, node *core.Node) {
	c.fleet.StreamClosed(fleet.Stream{ID: id})
	c.log.Debug("stream closed", zap.Int64("stream", id), zap.String("node", node.GetId()))
}

func (c *callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	c.fleet.Requested(fleet.Stream{ID: id}, identity(req.GetNode()), fleet.Request{
		TypeURL: req.GetTypeUrl(),
		Version: req.GetVersionInfo(),
		Nonce:   req.GetResponseNonce(),
		NACK:    req.GetErrorDetail() != nil,
		Reason:  req.GetErrorDetail().GetMessage(),
	})
	return nil
}

func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	c.fleet.Sent(fleet.Stream{ID: id}, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce())
}

func (c *callbacks) OnDeltaStreamOpen(_ context.Context, id int64, typeURL string) error {
	c.fleet.StreamOpened(fleet.Stream{ID: id, Delta: true})
	c.log.Debug("delta stream opened", zap.Int64("stream", id), zap.String("type", typeURL))
	return nil
}

func (c *callbacks) OnDeltaStreamClosed(id int64, node *core.Node) {
	c.fleet.StreamClosed(fleet.Stream{ID: id, Delta: true})
	c.log.Debug("delta stream closed", zap.Int64("stream", id), zap.String("node", node.GetId()))
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	c.fleet.Requested(fleet.Stream{ID: id, Delta: true}, identity(req.GetNode()), fleet.Request{
		TypeURL: req.GetTypeUrl(),
		Nonce:   req.GetResponseNonce(),
		NACK:    req.GetErrorDetail() != nil,
		Reason:  req.GetErrorDetail().GetMessage(),
	})
	return nil
}

func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	c.fleet.Sent(fleet.Stream{ID: id, Delta: true}, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
}

// Fetch (REST) requests carry no stream and no ACKs; nothing to record.
func (c *callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error { return nil }

func (c *callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

// identity reads what Envoy says about itself.
func identity(n *core.Node) fleet.Identity {
	id := fleet.Identity{ID: n.GetId(), Cluster: n.GetCluster()}
	if md := n.GetMetadata(); md != nil {
		id.Metadata = md.AsMap()
	}
	if name := n.GetUserAgentName(); name != "" {
		id.UserAgent = name
		if v := n.GetUserAgentVersion(); v != "" {
			id.UserAgent += "/" + v
		} else if bv := n.GetUserAgentBuildVersion().GetVersion(); bv != nil {
			id.UserAgent += fmt.Sprintf("/%d.%d.%d", bv.GetMajorNumber(), bv.GetMinorNumber(), bv.GetPatch())
		}
	}
	return id
}
