package envoyproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
	"github.com/wasmfleet/wasmfleet/envoy"
)

func TestBootstrapParsesStrictly(t *testing.T) {
	tests := []struct {
		name    string
		nodeID  string
		xds     string
		delta   bool
		wantErr bool
	}{
		{name: "loopback", nodeID: "node-1", xds: "127.0.0.1:18000"},
		{name: "delta", nodeID: "node-1", xds: "127.0.0.1:18000", delta: true},
		{name: "quotes in the id", nodeID: `we"ird: id`, xds: "127.0.0.1:1"},
		{name: "no port", nodeID: "n", xds: "127.0.0.1", wantErr: true},
		{name: "port out of range", nodeID: "n", xds: "127.0.0.1:70000", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y, err := Bootstrap(tc.nodeID, "test", tc.xds, tc.delta)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "bootstrap.yaml")
			if err := os.WriteFile(path, y, 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := envoy.LoadBootstrap(path)
			if err != nil {
				t.Fatalf("strict parse: %v\n%s", err, y)
			}
			if b.GetNode().GetId() != tc.nodeID {
				t.Errorf("node id %q, want %q", b.GetNode().GetId(), tc.nodeID)
			}
			want := corev3.ApiConfigSource_GRPC
			if tc.delta {
				want = corev3.ApiConfigSource_DELTA_GRPC
			}
			if got := b.GetDynamicResources().GetAdsConfig().GetApiType(); got != want {
				t.Errorf("api_type %v, want %v", got, want)
			}
			if !b.GetDynamicResources().GetAdsConfig().GetSetNodeOnFirstMessageOnly() {
				t.Error("ads must send the node on the first message only")
			}
		})
	}
}

func TestParseConfigDump(t *testing.T) {
	b, err := os.ReadFile("testdata/config_dump.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseConfigDump(b)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := os.ReadFile("testdata/stats.txt")
	if err != nil {
		t.Fatal(err)
	}
	parseStats(stats).apply(&st)
	types := []struct {
		name string
		typ  string
		want dataplane.TypeStatus
	}{
		{name: "cds", typ: dataplane.ClusterType, want: dataplane.TypeStatus{Version: "c1", Acks: 3}},
		{name: "lds", typ: dataplane.ListenerType, want: dataplane.TypeStatus{Version: "l1", Acks: 2, Nacks: 1}},
		{name: "rds", typ: dataplane.RouteType, want: dataplane.TypeStatus{Version: "r1", Acks: 4}},
		{name: "ecds", typ: dataplane.ExtensionType, want: dataplane.TypeStatus{
			Version: "e1", Rejected: "e2", Error: "Unable to create Wasm HTTP filter tagger", Acks: 3, Nacks: 1,
		}},
	}
	for _, tc := range types {
		t.Run(tc.name, func(t *testing.T) {
			if got := st.Types[tc.typ]; got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	exts := []struct {
		name string
		want dataplane.ExtensionStatus
	}{
		{name: "wasmfleet.slot.0", want: dataplane.ExtensionStatus{
			Version: "e1", Error: "Unable to create Wasm HTTP filter tagger",
			Type: "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", Digest: "ab12",
		}},
		{name: "wasmfleet.slot.1", want: dataplane.ExtensionStatus{
			Version: "e1", Type: "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
		}},
	}
	for _, tc := range exts {
		t.Run(tc.name, func(t *testing.T) {
			if got := st.Extensions[tc.name]; got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if st.Streams != 2 {
		t.Errorf("streams %d, want 2", st.Streams)
	}
	if d := parseStats(stats).drains(); d != 1 {
		t.Errorf("drains %d, want 1", d)
	}
}

func TestParseListeners(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{
			name: "two listeners",
			in: `{"listener_statuses":[{"name":"ingress","local_address":{"socket_address":{"address":"0.0.0.0","port_value":10000}}},
			{"name":"v6","local_address":{"socket_address":{"address":"::1","port_value":10001}}}]}`,
			want: map[string]string{"ingress": "127.0.0.1:10000", "v6": "[::1]:10001"},
		},
		{name: "none", in: `{}`, want: map[string]string{}},
		{name: "not json", in: `listener`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseListeners([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want dataplane.LogLine
		ok   bool
	}{
		{
			name: "plugin and vm id",
			line: "[2026-11-25 08:00:00.000][15][info][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log tagger tagger: tagger: configured a",
			want: dataplane.LogLine{Plugin: "tagger", Level: "info", Message: "tagger: configured a"}, ok: true,
		},
		{
			name: "root id too",
			line: "[2026-11-25 08:00:00.000][15][warning][wasm] [context.cc:1] wasm log gate root gate: denied",
			want: dataplane.LogLine{Plugin: "gate", Level: "warning", Message: "denied"}, ok: true,
		},
		{name: "another component", line: "[2026-11-25 08:00:00.000][15][info][upstream] [cm.cc:1] wasm log x: y"},
		{name: "wasm but not a guest log", line: "[2026-11-25 08:00:00.000][15][info][wasm] [wasm.cc:1] Wasm VM created"},
		{name: "empty", line: ""},
		{name: "unclosed", line: "[2026"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseLogLine(tc.line)
			if ok != tc.ok || got != tc.want {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseLogLine(f *testing.F) {
	f.Add("[2026-11-25 08:00:00.000][15][info][wasm] [context.cc:1195] wasm log tagger tagger: hello")
	f.Add("[a][b][c][wasm] [x] wasm log : ")
	f.Add("[][][][wasm]] wasm log")
	f.Fuzz(func(t *testing.T, line string) {
		l, ok := parseLogLine(line)
		if !ok && l != (dataplane.LogLine{}) {
			t.Errorf("rejected line produced %+v", l)
		}
	})
}

func FuzzParseConfigDump(f *testing.F) {
	b, err := os.ReadFile("testdata/config_dump.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.EcdsConfigDump","ecds_filters":[{"ecds_filter":{"typed_config":1}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseConfigDump(b)
		if err == nil && (st.Types == nil || st.Extensions == nil) {
			t.Error("a parsed dump must have non-nil maps")
		}
	})
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{name: "no node id", cfg: Config{Config: dataplane.Config{XDSAddr: "127.0.0.1:1"}, Binary: "envoy"}, want: dataplane.ErrNoNodeID},
		{name: "listen override", cfg: Config{Config: dataplane.Config{
			NodeID: "n", XDSAddr: "127.0.0.1:1", ListenAddrs: map[string]string{"ingress": "127.0.0.1:0"},
		}, Binary: "envoy"}, want: ErrListenOverride},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, tc.want) {
				t.Errorf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEnvoyStarts runs a real Envoy against a control plane that serves
// nothing, and checks that the driver sees its admin and its ADS stream.
func TestEnvoyStarts(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Skip("envoyproc: no envoy binary on PATH or in $" + EnvVar + "; the real-Envoy driver is not exercised here")
	}
	srv := xdstest.Start(t)
	n, err := New(Config{Config: dataplane.Config{NodeID: "node-1", Cluster: "test", XDSAddr: srv.Addr}, Binary: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := dataplane.Await(wctx, func() bool { return n.Status().Streams > 0 }); err != nil {
		t.Fatalf("envoy never opened an ADS stream: %v", err)
	}
}
