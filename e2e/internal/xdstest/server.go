package xdstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sync"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Server is a running ADS server that answers state-of-the-world and delta
// streams. Cache and the request logs survive restarts.
type Server struct {
	Addr  string
	Cache cache.SnapshotCache
	stop  func()
	// quiet servers record no requests (Serve).
	quiet bool

	mu       sync.Mutex
	restarts int
	requests []Request
	deltas   []DeltaRequest
}

// Request is one DiscoveryRequest the server received: after how many
// restarts, on which stream of that server run, and the request itself.
type Request struct {
	Restarts int
	Stream   int64
	*discovery.DiscoveryRequest
}

// DeltaRequest is one DeltaDiscoveryRequest the server received, as
// Request is for state of the world.
type DeltaRequest struct {
	Restarts int
	Stream   int64
	*discovery.DeltaDiscoveryRequest
}

// DeltaRequests returns every delta request received so far, oldest first.
func (s *Server) DeltaRequests() []DeltaRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DeltaRequest(nil), s.deltas...)
}

func (s *Server) recordDelta(stream int64, req *discovery.DeltaDiscoveryRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deltas = append(s.deltas, DeltaRequest{s.restarts, stream, proto.Clone(req).(*discovery.DeltaDiscoveryRequest)})
	return nil
}

// Requests returns every request received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) record(stream int64, req *discovery.DiscoveryRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{s.restarts, stream, proto.Clone(req).(*discovery.DiscoveryRequest)})
	return nil
}

// Start serves a fresh snapshot cache on 127.0.0.1:0 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Cache: cache.NewSnapshotCache(true, cache.IDHash{}, nil)}
	s.listen(t, "127.0.0.1:0")
	t.Cleanup(s.Stop)
	return s
}

// Serve serves c on 127.0.0.1:0 until the test ends and records no
// requests: a baseline for benchmarks, which a copy of every request would
// slow down.
func Serve(t testing.TB, c cache.SnapshotCache) *Server {
	t.Helper()
	s := &Server{Cache: c, quiet: true}
	s.listen(t, "127.0.0.1:0")
	t.Cleanup(s.Stop)
	return s
}

// Restart stops the server and serves the same cache on the same address,
// as a control plane restarted with the same state would.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	s.restarts++
	s.mu.Unlock()
	s.listen(t, s.Addr)
}

func (s *Server) listen(t testing.TB, addr string) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := grpc.NewServer()
	var cbs serverv3.Callbacks
	if !s.quiet {
		cbs = serverv3.CallbackFuncs{StreamRequestFunc: s.record, StreamDeltaRequestFunc: s.recordDelta}
	}
	discovery.RegisterAggregatedDiscoveryServiceServer(g, serverv3.NewServer(ctx, s.Cache, cbs))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	s.Addr = lis.Addr().String()
	s.stop = func() {
		cancel()
		g.Stop()
		<-done
	}
}

// Stop stops serving; calling it twice is fine.
func (s *Server) Stop() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// Resources is one node's configuration by type URL.
type Resources map[string][]types.Resource

// Set serves rs to node. Each type's version is a hash of its content, as
// wasmfleet's snapshot builder does: unchanged content, unchanged version.
func (s *Server) Set(t testing.TB, node string, rs Resources) {
	t.Helper()
	snap := &cache.Snapshot{}
	for typ, items := range rs {
		snap.Resources[cache.GetResponseType(typ)] = cache.NewResources(Version(t, items), items)
	}
	if err := snap.Consistent(); err != nil {
		t.Fatal(err)
	}
	if err := s.Cache.SetSnapshot(context.Background(), node, snap); err != nil {
		t.Fatal(err)
	}
}

// Version is the content hash of items, as the snapshot's version string.
func Version(t testing.TB, items []types.Resource) string {
	t.Helper()
	h := sha256.New()
	for _, it := range items {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Type URLs, re-exported so tests need one import.
const (
	ClusterType   = resource.ClusterType
	ListenerType  = resource.ListenerType
	RouteType     = resource.RouteType
	ExtensionType = resource.ExtensionConfigType
)
