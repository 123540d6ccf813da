package metrics

import (
	"maps"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmfleet/wasmfleet/controlplane/metrics/metricstest"
)

func TestObserveResponse(t *testing.T) {
	tests := []struct {
		name       string
		typeURL    string
		nack       bool
		d          time.Duration
		wantLabels map[string]string
	}{
		{name: "ecds ack", typeURL: resource.ExtensionConfigType, d: 1500 * time.Millisecond,
			wantLabels: map[string]string{"type": "ecds", "result": "ack"}},
		{name: "rds nack", typeURL: resource.RouteType, nack: true, d: 2 * time.Millisecond,
			wantLabels: map[string]string{"type": "rds", "result": "nack"}},
		{name: "a type URL a node made up is other", typeURL: "type.googleapis.com/made.Up", d: time.Second,
			wantLabels: map[string]string{"type": "other", "result": "ack"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := New(reg)
			m.ObserveResponse(tt.typeURL, tt.nack, tt.d)
			count, sum := metricstest.Histogram(t, reg, "wasmfleet_xds_response_seconds", tt.wantLabels)
			if count != 1 || sum != tt.d.Seconds() {
				t.Errorf("series %v: count %d, sum %v; want 1, %v", tt.wantLabels, count, sum, tt.d.Seconds())
			}
		})
	}
}

func TestShortType(t *testing.T) {
	tests := []struct {
		name, typeURL, want string
	}{
		{name: "listeners", typeURL: resource.ListenerType, want: "lds"},
		{name: "routes", typeURL: resource.RouteType, want: "rds"},
		{name: "clusters", typeURL: resource.ClusterType, want: "cds"},
		{name: "endpoints", typeURL: resource.EndpointType, want: "eds"},
		{name: "extension configs", typeURL: resource.ExtensionConfigType, want: "ecds"},
		{name: "secrets", typeURL: resource.SecretType, want: "sds"},
		{name: "runtime", typeURL: resource.RuntimeType, want: "rtds"},
		{name: "empty", typeURL: "", want: "other"},
		{name: "unknown", typeURL: "type.googleapis.com/x", want: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shortType(tt.typeURL); got != tt.want {
				t.Errorf("shortType(%q) = %q, want %q", tt.typeURL, got, tt.want)
			}
		})
	}
}

// TestPushWindow: both gauges carry what the window reports at the scrape.
func TestPushWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	inFlight, queued := 3, 7
	RegisterPushWindow(reg, func() (int, int) { return inFlight, queued })
	for range 2 {
		got := map[string]float64{}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
		want := map[string]float64{
			"wasmfleet_xds_push_window_in_flight": float64(inFlight),
			"wasmfleet_xds_push_window_queued":    float64(queued),
		}
		if !maps.Equal(got, want) {
			t.Errorf("gathered %v, want %v", got, want)
		}
		inFlight, queued = 0, 1
	}
}
