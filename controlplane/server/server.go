package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	extensionservice "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	runtimeservice "github.com/envoyproxy/go-control-plane/envoy/service/runtime/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
)

// gRPC settings for a control plane with long-lived streams from many proxies.
const (
	// keepaliveTime: ping an idle connection after this long, so a proxy
	// that vanished without a FIN is noticed and its node leaves the fleet.
	keepaliveTime = 30 * time.Second
	// keepaliveTimeout: how long a ping may go unanswered.
	keepaliveTimeout = 5 * time.Second
	// keepaliveMinTime: the most frequent client pings we tolerate before
	// answering with GOAWAY. Envoy sends none by default; operators who set
	// the xDS cluster's HTTP/2 connection_keepalive usually pick 10-30 s.
	keepaliveMinTime = 5 * time.Second
	// maxConcurrentStreams is per HTTP/2 connection. A directly connected
	// Envoy opens one ADS stream (or one per type), but a gRPC-aware front
	// proxy may multiplex a whole fleet onto one connection: sized for 10,000
	// nodes with a few streams each.
	maxConcurrentStreams = 1 << 16
	// stopBound is how long GracefulStop may wait for streams to end before
	// they are cut.
	stopBound = 5 * time.Second
)

// Config wires the server.
type Config struct {
	// Listener is where gRPC is served; the server closes it.
	Listener net.Listener
	// Cache holds the per-node snapshots.
	Cache cache.SnapshotCache
	// Fleet receives stream and ACK/NACK events.
	Fleet fleet.Registry
	Log   *zap.Logger
	// TLS, when set, serves gRPC over TLS with it (mtls.Reloader's config,
	// which requires a client certificate).
	TLS *tls.Config
	// NodeIdentity, when set, refuses any stream or fetch whose node.id
	// its client certificate does not name (PermissionDenied).
	NodeIdentity *mtls.NodeIdentity
}

// Server serves xDS until its context ends.
type Server struct {
	cfg Config
	log *zap.Logger
}

// New returns a server; nothing runs until Start.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Server{cfg: cfg, log: cfg.Log.Named("xds")}
}

// Start serves ADS (state of the world and delta) and the per-type services
// on cfg.Listener. It blocks until ctx ends, then stops gracefully, cutting
// streams still open after a bound. It returns nil after a stop through ctx,
// or the error that made serving fail.
func (s *Server) Start(ctx context.Context) error {
	// Streams end when this context does, which lets GracefulStop finish.
	xdsCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	xds := serverv3.NewServer(xdsCtx, s.cfg.Cache, &callbacks{fleet: s.cfg.Fleet, log: s.log, identity: s.cfg.NodeIdentity},
		sotw.WithLogger(Logger(s.log)))

	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
	}
	if s.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.cfg.TLS)))
	}
	g := grpc.NewServer(opts...)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, xds)
	extensionservice.RegisterExtensionConfigDiscoveryServiceServer(g, xds)
	secretservice.RegisterSecretDiscoveryServiceServer(g, xds)
	runtimeservice.RegisterRuntimeDiscoveryServiceServer(g, xds)

	served := make(chan error, 1)
	go func() { served <- g.Serve(s.cfg.Listener) }()
	s.log.Info("serving xds", zap.String("addr", s.cfg.Listener.Addr().String()), zap.Bool("tls", s.cfg.TLS != nil))

	select {
	case err := <-served:
		return fmt.Errorf("server: %s: %w", s.cfg.Listener.Addr(), err)
	case <-ctx.Done():
	}
	cancel()
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(stopBound)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("streams still open after the graceful stop bound; cutting them")
		g.Stop()
		<-stopped
	}
	<-served
	s.log.Info("stopped xds")
	return nil
}
