package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extensionservice "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics/metricstest"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/controlplane/xdscache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ecds = resource.ExtensionConfigType

var node = &core.Node{
	Id:            "n1",
	Cluster:       "edge",
	UserAgentName: "envoy",
	UserAgentVersionType: &core.Node_UserAgentBuildVersion{UserAgentBuildVersion: &core.BuildVersion{
		Version: &typev3.SemanticVersion{MajorNumber: 1, MinorNumber: 33, Patch: 2},
	}},
}

// xdsClient is what the test needs from one kind of stream: subscribe to
// ECDS, receive a response, and answer it with an ACK or a NACK.
type xdsClient interface {
	subscribe(names []string) error
	recv() (version, nonce string, n int, err error)
	answer(version, nonce, nack string) error
}

// sotwClient speaks state of the world on any bidirectional discovery stream.
type sotwClient struct {
	s grpc.BidiStreamingClient[discovery.DiscoveryRequest, discovery.DiscoveryResponse]
}

func (c sotwClient) subscribe(names []string) error {
	return c.s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: ecds, ResourceNames: names})
}

func (c sotwClient) recv() (string, string, int, error) {
	r, err := c.s.Recv()
	if err != nil {
		return "", "", 0, err
	}
	return r.GetVersionInfo(), r.GetNonce(), len(r.GetResources()), nil
}

func (c sotwClient) answer(version, nonce, nack string) error {
	req := &discovery.DiscoveryRequest{TypeUrl: ecds, VersionInfo: version, ResponseNonce: nonce}
	if nack != "" {
		req.ErrorDetail = &status.Status{Code: 3, Message: nack}
	}
	return c.s.Send(req)
}

type deltaClient struct {
	s grpc.BidiStreamingClient[discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponse]
}

func (c deltaClient) subscribe(names []string) error {
	return c.s.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: ecds, ResourceNamesSubscribe: names})
}

func (c deltaClient) recv() (string, string, int, error) {
	r, err := c.s.Recv()
	if err != nil {
		return "", "", 0, err
	}
	return r.GetSystemVersionInfo(), r.GetNonce(), len(r.GetResources()), nil
}

func (c deltaClient) answer(_, nonce, nack string) error {
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResponseNonce: nonce}
	if nack != "" {
		req.ErrorDetail = &status.Status{Code: 3, Message: nack}
	}
	return c.s.Send(req)
}

// harness is a real server on a loopback port with a real snapshot cache.
type harness struct {
	cache   cache.SnapshotCache
	fleet   fleet.Registry
	metrics *prometheus.Registry
	builder snapshot.Builder
	input   snapshot.Input
	conn    *grpc.ClientConn
	stopped chan error
}

func start(t *testing.T, ctx context.Context) *harness {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	cfg := config.Default()
	// Remote code keeps the resources small: what is tested is the streams.
	cfg.Filters = []config.Filter{{Name: "auth", Code: config.CodeRemote}, {Name: "transform", Code: config.CodeRemote}}
	reg := prometheus.NewRegistry()
	// The cache the control plane runs, with the window's threshold at one
	// byte so that every response goes through the window.
	xc, err := xdscache.New(xdscache.Config{ADS: true, LargeResponseBytes: 1, Log: Logger(log)})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		cache:   xc,
		fleet:   fleet.New(fleet.Config{Log: log, Metrics: metrics.New(reg)}),
		metrics: reg,
		builder: snapshot.NewBuilder(),
		input:   snapshot.Input{Mode: cfg.Mode, Managed: cfg.Managed, ModuleURL: cfg.ModuleURL()},
		stopped: make(chan error, 1),
	}
	for _, f := range cfg.Filters {
		h.input.Filters = append(h.input.Filters, f.WithDefaults())
	}
	srv := New(Config{Listener: lis, Cache: h.cache, Fleet: h.fleet, Log: log})
	go func() { h.stopped <- srv.Start(ctx) }()
	h.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.Close() })
	return h
}

// assign builds and sets n1's snapshot as the control plane would, telling
// the fleet which assignment the ECDS version carries.
func (h *harness) assign(t *testing.T, a types.Assignment) string {
	t.Helper()
	nb, err := h.builder.For(h.input)
	if err != nil {
		t.Fatal(err)
	}
	s, err := nb.Build(a)
	if err != nil {
		t.Fatal(err)
	}
	v := s.GetVersion(ecds)
	h.fleet.Assigned("n1", v, a)
	if err := h.cache.SetSnapshot(context.Background(), "n1", s); err != nil {
		t.Fatal(err)
	}
	return v
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allSlots names every ECDS resource of the default config, as Envoy
// requests them: go-control-plane's ADS cache answers only a request that
// names every resource of the type in the snapshot.
func allSlots() []string {
	slots := make([]string, 0, 2*config.DefaultFilterSlots)
	for p := range config.DefaultFilterSlots {
		slots = append(slots, snapshot.SlotName(p, false), snapshot.SlotName(p, true))
	}
	return slots
}

func filterState(h *harness, name string) fleet.FilterStatus {
	n, _ := h.fleet.Node("n1")
	for _, f := range n.Filters {
		if f.Filter == name {
			return f
		}
	}
	return fleet.FilterStatus{}
}

// opener opens one kind of ECDS stream on conn.
type opener func(ctx context.Context, conn *grpc.ClientConn) (xdsClient, error)

func openADS(ctx context.Context, conn *grpc.ClientConn) (xdsClient, error) {
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	return sotwClient{s}, err
}

func openDeltaADS(ctx context.Context, conn *grpc.ClientConn) (xdsClient, error) {
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	return deltaClient{s}, err
}

func TestStreams(t *testing.T) {
	tests := []struct {
		name string
		open opener
	}{
		{name: "ads state of the world", open: openADS},
		{name: "ads delta", open: openDeltaADS},
		{name: "ecds service state of the world", open: func(ctx context.Context, conn *grpc.ClientConn) (xdsClient, error) {
			s, err := extensionservice.NewExtensionConfigDiscoveryServiceClient(conn).StreamExtensionConfigs(ctx)
			return sotwClient{s}, err
		}},
		{name: "ecds service delta", open: func(ctx context.Context, conn *grpc.ClientConn) (xdsClient, error) {
			s, err := extensionservice.NewExtensionConfigDiscoveryServiceClient(conn).DeltaExtensionConfigs(ctx)
			return deltaClient{s}, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := start(t, ctx)
			auth1, auth2 := types.DigestOf([]byte("auth-1")), types.DigestOf([]byte("auth-2"))
			tr1 := types.DigestOf([]byte("transform-1"))
			v1 := h.assign(t, types.Assignment{"auth": {Stable: auth1}, "transform": {Stable: tr1}})

			streamCtx, closeStream := context.WithCancel(ctx)
			c, err := tt.open(streamCtx, h.conn)
			if err != nil {
				t.Fatal(err)
			}
			slots := allSlots()
			if err := c.subscribe(slots); err != nil {
				t.Fatal(err)
			}
			version, nonce, n, err := c.recv()
			if err != nil {
				t.Fatal(err)
			}
			if version != v1 || n != len(slots) {
				t.Fatalf("got version %q with %d resources, want %q with %d", version, n, v1, len(slots))
			}
			eventually(t, "n1 is registered", func() bool {
				st, ok := h.fleet.Node("n1")
				return ok && st.Cluster == "edge" && st.UserAgent == "envoy/1.33.2"
			})

			if err := c.answer(version, nonce, ""); err != nil {
				t.Fatal(err)
			}
			eventually(t, "auth is acked", func() bool { return filterState(h, "auth").Acked.Stable == auth1 })

			h.assign(t, types.Assignment{"auth": {Stable: auth2}, "transform": {Stable: tr1}})
			_, nonce2, _, err := c.recv()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.answer(version, nonce2, "wasm: failed to load module"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "auth-2 is nacked", func() bool {
				f := filterState(h, "auth")
				return len(f.Nacked) == 1 && f.Nacked[0] == auth2 && f.Reason == "wasm: failed to load module"
			})
			if f := filterState(h, "transform"); len(f.Nacked) != 0 || f.Acked.Stable != tr1 {
				t.Errorf("transform = %+v, want acked and not blamed", f)
			}
			st, _ := h.fleet.Node("n1")
			if !strings.Contains(st.Summary(), "auth NACKed "+auth2.Short()+": wasm: failed to load module") {
				t.Errorf("Summary = %q", st.Summary())
			}

			closeStream()
			eventually(t, "n1 is gone", func() bool { return len(h.fleet.Nodes()) == 0 })
			cancel()
			if err := <-h.stopped; err != nil {
				t.Errorf("Start returned %v after its context ended", err)
			}
		})
	}
}

// TestResponseTime: a node that takes its time to answer a push shows up in
// the response-time histogram and in its status with at least that time.
func TestResponseTime(t *testing.T) {
	// delay stands for Envoy's work between receiving a version and
	// answering it (for inline code: loading the module).
	const delay = 150 * time.Millisecond
	tests := []struct {
		name   string
		open   opener
		nack   string
		result string
	}{
		{name: "state of the world ack", open: openADS, result: "ack"},
		{name: "state of the world nack", open: openADS, nack: "wasm: failed to load", result: "nack"},
		{name: "delta ack", open: openDeltaADS, result: "ack"},
		{name: "delta nack", open: openDeltaADS, nack: "wasm: failed to load", result: "nack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			h := start(t, ctx)
			defer func() {
				cancel()
				<-h.stopped
			}()
			v := h.assign(t, types.Assignment{"auth": {Stable: types.DigestOf([]byte("auth-1"))}})
			c, err := tt.open(ctx, h.conn)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.subscribe(allSlots()); err != nil {
				t.Fatal(err)
			}
			version, nonce, _, err := c.recv()
			if err != nil {
				t.Fatal(err)
			}
			if version != v {
				t.Fatalf("got version %q, want %q", version, v)
			}
			time.Sleep(delay) // the node's work, not a wait for the server
			if err := c.answer(version, nonce, tt.nack); err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{"type": "ecds", "result": tt.result}
			var count uint64
			var sum float64
			eventually(t, "the answer to be observed", func() bool {
				count, sum = metricstest.Histogram(t, h.metrics, "wasmfleet_xds_response_seconds", labels)
				return count > 0
			})
			if count != 1 || sum < delay.Seconds() {
				t.Errorf("%v: %d observations summing to %vs, want 1 of at least %vs", labels, count, sum, delay.Seconds())
			}
			if all, _ := metricstest.Histogram(t, h.metrics, "wasmfleet_xds_response_seconds", nil); all != 1 {
				t.Errorf("%d observations in all, want 1", all)
			}
			st, _ := h.fleet.Node("n1")
			var answer *fleet.Answer
			for _, ts := range st.Types {
				if ts.TypeURL == ecds {
					answer = ts.LastAnswer
				}
			}
			if answer == nil || answer.Version != v || answer.NACK != (tt.nack != "") || answer.Latency < delay {
				t.Errorf("LastAnswer = %+v, want version %s, nack %v, latency at least %v", answer, v, tt.nack != "", delay)
			}
		})
	}
}

// TestStopCutsOpenStreams: ending Start's context with a stream still open
// returns promptly (streams end with the context) and the node is gone.
func TestStopCutsOpenStreams(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := start(t, ctx)
	h.assign(t, types.Assignment{"auth": {Stable: types.DigestOf([]byte("a"))}})
	s, err := discovery.NewAggregatedDiscoveryServiceClient(h.conn).StreamAggregatedResources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := sotwClient{s}
	if err := c.subscribe(allSlots()); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-h.stopped; err != nil {
		t.Fatalf("Start = %v", err)
	}
	if _, _, _, err := c.recv(); err == nil {
		t.Error("stream still open after the server stopped")
	}
	if n := len(h.fleet.Nodes()); n != 0 {
		t.Errorf("%d nodes registered after stop", n)
	}
}

func TestStartFailsOnClosedListener(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	err = New(Config{Listener: lis, Cache: cache.NewSnapshotCache(true, cache.IDHash{}, nil), Fleet: fleet.New(fleet.Config{})}).Start(context.Background())
	if err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Start on a closed listener = %v, want net.ErrClosed", err)
	}
}
