package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
)

// callbacks turns go-control-plane's stream events into fleet registry calls.
// go-control-plane calls them synchronously on stream goroutines, so they
// only record: the registry never blocks. go-control-plane fills the node
// into every request of a stream from its first one.
//
// With an identity (mTLS), every request is checked against the stream's
// client certificate before the registry hears of it and before
// go-control-plane opens a watch on the cache: a refused request ends the
// stream with PermissionDenied, so nothing is recorded or sent for it.
type callbacks struct {
	fleet fleet.Registry
	log   *zap.Logger
	// identity, when set, binds node ids to client certificates.
	identity *mtls.NodeIdentity

	mu    sync.Mutex
	peers map[streamKey]*peerState
}

// streamKey names a stream: sotw and delta streams are numbered apart.
type streamKey struct {
	id    int64
	delta bool
}

// peerState is what a stream proved: its certificate, and the node id last
// checked against it (go-control-plane leaves the node out of a delta
// stream's later requests when it calls OnStreamDeltaRequest).
type peerState struct {
	cert *x509.Certificate
	node string
}

var _ serverv3.Callbacks = (*callbacks)(nil)

// opened records the peer's certificate, or refuses a stream without one.
func (c *callbacks) opened(ctx context.Context, k streamKey) error {
	if c.identity == nil {
		return nil
	}
	cert, err := mtls.PeerCertificate(ctx)
	if err != nil {
		c.log.Warn("xds stream refused", zap.Int64("stream", k.id), zap.Error(err))
		return status.Errorf(codes.Unauthenticated, "wasmfleet: %v", err)
	}
	c.mu.Lock()
	if c.peers == nil {
		c.peers = map[streamKey]*peerState{}
	}
	c.peers[k] = &peerState{cert: cert}
	c.mu.Unlock()
	return nil
}

func (c *callbacks) closed(k streamKey) {
	if c.identity == nil {
		return
	}
	c.mu.Lock()
	delete(c.peers, k)
	c.mu.Unlock()
}

// authorize checks the node a request claims against its stream's
// certificate. A nil node means the stream's node so far.
func (c *callbacks) authorize(k streamKey, node *core.Node) error {
	if c.identity == nil {
		return nil
	}
	c.mu.Lock()
	p := c.peers[k]
	var checked string
	if p != nil {
		checked = p.node
	}
	c.mu.Unlock()
	if p == nil {
		return status.Error(codes.Unauthenticated, "wasmfleet: stream has no verified client certificate")
	}
	id := checked
	if node != nil {
		id = node.GetId()
	}
	if id != "" && id == checked {
		return nil
	}
	return c.check(p, k.id, id)
}

func (c *callbacks) check(p *peerState, stream int64, id string) error {
	if err := c.identity.Check(p.cert, id); err != nil {
		c.log.Warn("xds stream refused: node id does not match its client certificate",
			zap.String("node", id), zap.Int64("stream", stream), zap.String("certificate", mtls.Names(p.cert)),
			zap.String("want", c.identity.Want(id)))
		return status.Errorf(codes.PermissionDenied, "wasmfleet: %v", err)
	}
	c.mu.Lock()
	p.node = id
	c.mu.Unlock()
	return nil
}

func (c *callbacks) OnStreamOpen(ctx context.Context, id int64, typeURL string) error {
	if err := c.opened(ctx, streamKey{id: id}); err != nil {
		return err
	}
	c.fleet.StreamOpened(fleet.Stream{ID: id})
	c.log.Debug("stream opened", zap.Int64("stream", id), zap.String("type", typeURL))
	return nil
}

func (c *callbacks) OnStreamClosed(id int64, node *core.Node) {
	c.closed(streamKey{id: id})
	c.fleet.StreamClosed(fleet.Stream{ID: id})
	c.log.Debug("stream closed", zap.Int64("stream", id), zap.String("node", node.GetId()))
}

func (c *callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	if err := c.authorize(streamKey{id: id}, req.GetNode()); err != nil {
		return err
	}
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

func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, typeURL string) error {
	if err := c.opened(ctx, streamKey{id: id, delta: true}); err != nil {
		return err
	}
	c.fleet.StreamOpened(fleet.Stream{ID: id, Delta: true})
	c.log.Debug("delta stream opened", zap.Int64("stream", id), zap.String("type", typeURL))
	return nil
}

func (c *callbacks) OnDeltaStreamClosed(id int64, node *core.Node) {
	c.closed(streamKey{id: id, delta: true})
	c.fleet.StreamClosed(fleet.Stream{ID: id, Delta: true})
	c.log.Debug("delta stream closed", zap.Int64("stream", id), zap.String("node", node.GetId()))
}

func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	if err := c.authorize(streamKey{id: id, delta: true}, req.GetNode()); err != nil {
		return err
	}
	c.fleet.Requested(fleet.Stream{ID: id, Delta: true}, identity(req.GetNode()), fleet.Request{
		TypeURL:   req.GetTypeUrl(),
		Nonce:     req.GetResponseNonce(),
		NACK:      req.GetErrorDetail() != nil,
		Reason:    req.GetErrorDetail().GetMessage(),
		Resources: req.GetInitialResourceVersions(),
	})
	return nil
}

func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	c.fleet.Sent(fleet.Stream{ID: id, Delta: true}, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
}

// Fetch (unary) requests carry no stream and no ACKs; nothing to record,
// but they return resources, so they are checked like a stream's.
func (c *callbacks) OnFetchRequest(ctx context.Context, req *discovery.DiscoveryRequest) error {
	if c.identity == nil {
		return nil
	}
	cert, err := mtls.PeerCertificate(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "wasmfleet: %v", err)
	}
	return c.check(&peerState{cert: cert}, 0, req.GetNode().GetId())
}

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
