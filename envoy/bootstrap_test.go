package envoy

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
)

func load(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := LoadBootstrap(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBootstraps(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		wantLDS    bool
		wantModCls bool // a static wasmfleet_modules cluster (ECDS-only mode)
	}{
		{name: "managed", file: "bootstrap.yaml", wantLDS: true},
		{name: "managed-mtls", file: "bootstrap-mtls.yaml", wantLDS: true},
		{name: "ecds-only", file: "bootstrap-ecds.yaml", wantModCls: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := load(t, tt.file)
			if b.GetNode().GetId() == "" || b.GetNode().GetCluster() == "" {
				t.Error("node id and cluster must be set (rollouts hash the node id)")
			}
			if a := b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); a != "127.0.0.1" {
				t.Errorf("admin bound to %q, want loopback", a)
			}
			ads := b.GetDynamicResources().GetAdsConfig()
			if ads.GetApiType() != corev3.ApiConfigSource_GRPC || ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != "wasmfleet_xds" {
				t.Errorf("ads_config does not use gRPC to wasmfleet_xds: %v", ads)
			}
			if got := b.GetDynamicResources().GetLdsConfig().GetAds() != nil; got != tt.wantLDS {
				t.Errorf("LDS over ADS = %v, want %v", got, tt.wantLDS)
			}
			clusters := map[string]int{}
			for _, c := range b.GetStaticResources().GetClusters() {
				ep := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
				clusters[c.GetName()] = int(ep.GetPortValue())
			}
			if want := port(t, config.DefaultXDSAddr); clusters["wasmfleet_xds"] != want {
				t.Errorf("wasmfleet_xds port = %d, want the default xDS port %d", clusters["wasmfleet_xds"], want)
			}
			if _, ok := clusters["wasmfleet_modules"]; ok != tt.wantModCls {
				t.Errorf("static wasmfleet_modules cluster present = %v, want %v", ok, tt.wantModCls)
			} else if ok && clusters["wasmfleet_modules"] != port(t, config.DefaultModulesAddr) {
				t.Errorf("wasmfleet_modules port = %d, want the default module port", clusters["wasmfleet_modules"])
			}
		})
	}
}

// TestDeltaIsOneLine checks the README's way to delta xDS: in every
// bootstrap, the one line api_type: GRPC changed to DELTA_GRPC gives a
// valid bootstrap that differs in nothing else.
func TestDeltaIsOneLine(t *testing.T) {
	for _, file := range []string{"bootstrap.yaml", "bootstrap-mtls.yaml", "bootstrap-ecds.yaml", "compose/bootstrap.yaml"} {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			const from, to = "api_type: GRPC ", "api_type: DELTA_GRPC "
			if n := strings.Count(string(raw), from); n != 1 {
				t.Fatalf("%q appears %d times, want once", from, n)
			}
			path := filepath.Join(t.TempDir(), "bootstrap.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(raw), from, to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			delta, want := load(t, path), load(t, file)
			want.GetDynamicResources().GetAdsConfig().ApiType = corev3.ApiConfigSource_DELTA_GRPC
			if !proto.Equal(delta, want) {
				t.Errorf("the delta bootstrap differs from %s in more than api_type", file)
			}
		})
	}
}

// TestMTLSBootstrap checks that the mTLS bootstrap's xDS cluster presents a
// client certificate, checks the server against a CA and the name it
// dials, offers h2, and names a node id that the default node identity
// maps to a SPIFFE ID.
func TestMTLSBootstrap(t *testing.T) {
	b := load(t, "bootstrap-mtls.yaml")
	var xds *clusterv3.Cluster
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "wasmfleet_xds" {
			xds = c
		}
	}
	ts := xds.GetTransportSocket()
	if ts.GetName() != "envoy.transport_sockets.tls" {
		t.Fatalf("wasmfleet_xds transport socket = %q, want envoy.transport_sockets.tls", ts.GetName())
	}
	var up tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	ctx := up.GetCommonTlsContext()
	certs := ctx.GetTlsCertificates()
	if len(certs) != 1 || certs[0].GetCertificateChain().GetFilename() == "" || certs[0].GetPrivateKey().GetFilename() == "" {
		t.Errorf("want one client certificate and key from files, got %v", certs)
	}
	vc := ctx.GetValidationContext()
	if vc.GetTrustedCa().GetFilename() == "" {
		t.Error("no trusted_ca: Envoy would accept any server certificate")
	}
	sans := vc.GetMatchTypedSubjectAltNames()
	if len(sans) == 0 || sans[0].GetMatcher().GetExact() != up.GetSni() {
		t.Errorf("server SAN check %v does not match the SNI %q", sans, up.GetSni())
	}
	if !slices.Contains(ctx.GetAlpnProtocols(), "h2") {
		t.Errorf("alpn_protocols %v lack h2 (gRPC)", ctx.GetAlpnProtocols())
	}
	id, err := mtls.ParseNodeIdentity(config.DefaultNodeIdentity)
	if err != nil {
		t.Fatal(err)
	}
	if want := id.Want(b.GetNode().GetId()); !strings.HasPrefix(want, "spiffe://") {
		t.Errorf("node %q maps to %q, want a SPIFFE ID", b.GetNode().GetId(), want)
	}
}

// TestECDSSnippet checks that the HCM in the ECDS-only bootstrap references
// wasmfleet's filters the way the README tells people to: by name, over ADS,
// for the Wasm type, with the router last.
func TestECDSSnippet(t *testing.T) {
	b := load(t, "bootstrap-ecds.yaml")
	var hcm hcmv3.HttpConnectionManager
	if err := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	filters := hcm.GetHttpFilters()
	if last := filters[len(filters)-1].GetName(); last != "envoy.filters.http.router" {
		t.Errorf("last filter = %q, want the router", last)
	}
	var wasm int
	for _, f := range filters[:len(filters)-1] {
		if !strings.HasPrefix(f.GetName(), "wasmfleet.") {
			continue
		}
		wasm++
		cd := f.GetConfigDiscovery()
		if cd.GetConfigSource().GetAds() == nil || len(cd.GetTypeUrls()) != 1 ||
			cd.GetTypeUrls()[0] != "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm" {
			t.Errorf("%s: config_discovery must be ADS for the Wasm type, got %v", f.GetName(), cd)
		}
	}
	if wasm == 0 {
		t.Error("no wasmfleet.* filter in the HCM")
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
