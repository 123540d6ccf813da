package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
	"github.com/wasmfleet/wasmfleet/internal/certgen"
)

// TestNodeIdentityBound runs the server with mTLS and a client holding
// edge-1's certificate, which claims edge-2 in each way a request can: on
// a new stream, mid-stream after an honest first request, on a delta
// stream and in a unary fetch. Each is refused with PermissionDenied and
// logged, and the fleet registry never hears of edge-2.
func TestNodeIdentityBound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	ca, err := certgen.NewCA("server test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	srvPair, err := ca.Server([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := srvPair.Write(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	core0, logs := observer.New(zap.WarnLevel)
	log := zap.New(core0)
	reloader, err := mtls.NewReloader(mtls.Files{Cert: certFile, Key: keyFile, ClientCA: filepath.Join(dir, "ca.crt")}, log)
	if err != nil {
		t.Fatal(err)
	}
	id, err := mtls.ParseNodeIdentity(config.DefaultNodeIdentity)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := fleet.New(fleet.Config{Log: log})
	srv := New(Config{Listener: lis, Cache: cache.NewSnapshotCache(true, cache.IDHash{}, nil), Fleet: reg, Log: log,
		TLS: reloader.ServerConfig("h2"), NodeIdentity: &id})
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Error(err)
		}
	}()

	node, err := ca.Node("edge-1", certgen.SPIFFEID("wasmfleet.local", "edge-1"), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(node.CertPEM, node.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ads := discovery.NewAggregatedDiscoveryServiceClient(conn)
	edge1, edge2 := &core.Node{Id: "edge-1"}, &core.Node{Id: "edge-2"}
	wantDenied := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v, want PermissionDenied", what, err)
		}
	}
	// Bounded: with the check off, an unrefused stream would wait forever.
	bounded, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	sotw := func(reqs ...*discovery.DiscoveryRequest) error {
		s, err := ads.StreamAggregatedResources(bounded)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if err := s.Send(r); err != nil {
				break // the server ended the stream; Recv says why
			}
		}
		for {
			if _, err := s.Recv(); err != nil {
				return err
			}
		}
	}

	wantDenied("new stream", sotw(&discovery.DiscoveryRequest{Node: edge2, TypeUrl: resource.ClusterType}))
	wantDenied("mid-stream", sotw(
		&discovery.DiscoveryRequest{Node: edge1, TypeUrl: resource.ClusterType},
		&discovery.DiscoveryRequest{Node: edge2, TypeUrl: resource.ListenerType}))

	ds, err := ads.DeltaAggregatedResources(bounded)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Send(&discovery.DeltaDiscoveryRequest{Node: edge2, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	_, err = ds.Recv()
	wantDenied("delta stream", err)

	_, err = clusterservice.NewClusterDiscoveryServiceClient(conn).FetchClusters(bounded, &discovery.DiscoveryRequest{Node: edge2})
	wantDenied("fetch", err)

	for _, n := range reg.Nodes() {
		if n.ID == "edge-2" {
			t.Errorf("the registry recorded edge-2: %+v", n)
		}
	}
	refused := logs.FilterMessage("xds stream refused: node id does not match its client certificate").FilterField(zap.String("node", "edge-2"))
	if refused.Len() != 4 {
		t.Errorf("%d refusals of edge-2 logged, want 4: %v", refused.Len(), logs.All())
	}
}
