package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/yaml"
)

// TestRolloutGauges: the gauges show what the status function returns at
// scrape time, and a filter that is gone leaves no series.
func TestRolloutGauges(t *testing.T) {
	since := time.Unix(1_790_000_000, 0)
	state := []Rollout{
		{Filter: "auth", Candidate: true, Percent: 30, Step: 2, StepSince: since, Paused: true},
		{Filter: "logging", Failing: true},
	}
	reg := prometheus.NewRegistry()
	RegisterRollouts(reg, func() []Rollout { return state })
	want := `
# HELP wasmfleet_rollout_percent Percent of the fleet or of the requests on the filter's candidate.
# TYPE wasmfleet_rollout_percent gauge
wasmfleet_rollout_percent{filter="auth"} 30
wasmfleet_rollout_percent{filter="logging"} 0
# HELP wasmfleet_rollout_step_start_timestamp_seconds When the candidate's current step began, in Unix seconds (only while a candidate rolls out).
# TYPE wasmfleet_rollout_step_start_timestamp_seconds gauge
wasmfleet_rollout_step_start_timestamp_seconds{filter="auth"} 1.79e+09
# HELP wasmfleet_filter_error 1 while the filter has an error (its last module or settings refused, its source unreadable).
# TYPE wasmfleet_filter_error gauge
wasmfleet_filter_error{filter="auth"} 0
wasmfleet_filter_error{filter="logging"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"wasmfleet_rollout_percent", "wasmfleet_rollout_step_start_timestamp_seconds", "wasmfleet_filter_error"); err != nil {
		t.Error(err)
	}
	for name, want := range map[string]float64{"wasmfleet_rollout_candidate": 1, "wasmfleet_rollout_step": 2, "wasmfleet_rollout_paused": 1} {
		if got := gaugeValue(t, reg, name, "auth"); got != want {
			t.Errorf("%s{filter=auth} = %v, want %v", name, got, want)
		}
	}

	state = state[1:] // auth retired
	if n, err := testutil.GatherAndCount(reg, "wasmfleet_rollout_candidate"); err != nil || n != 1 {
		t.Errorf("after auth is gone: %d wasmfleet_rollout_candidate series (%v), want 1", n, err)
	}
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name, filter string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "filter" && l.GetValue() == filter {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{filter=%q}", name, filter)
	return 0
}

// TestObservabilityFilesNameRealMetrics: every wasmfleet metric that the
// Grafana dashboard and the alert rules in docs/observability query is
// one the control plane registers, so a renamed metric cannot leave an
// alert that never fires.
func TestObservabilityFilesNameRealMetrics(t *testing.T) {
	known := registeredNames(t)
	exprs := map[string][]string{
		"grafana-dashboard.json": dashboardExprs(t, "../../docs/observability/grafana-dashboard.json"),
		"alerts.yaml":            alertExprs(t, "../../docs/observability/alerts.yaml"),
	}
	for file, es := range exprs {
		if len(es) == 0 {
			t.Errorf("%s: no expressions found", file)
		}
		for _, e := range es {
			if missing := unknownMetrics(e, known); len(missing) > 0 {
				t.Errorf("%s: %q queries %v, which the control plane does not register", file, e, missing)
			}
		}
	}
	if got := unknownMetrics(`rate(wasmfleet_xds_nacks_total[5m]) + wasmfleet_nacks_total`, known); !slices.Equal(got, []string{"wasmfleet_nacks_total"}) {
		t.Errorf("a made-up name: unknownMetrics = %v, want it reported", got)
	}
}

var metricName = regexp.MustCompile(`\bwasmfleet_[a-z0-9_]+`)

// unknownMetrics lists the wasmfleet metrics expr names that are not in
// known, reading a histogram's _bucket, _sum and _count series as the
// histogram.
func unknownMetrics(expr string, known map[string]bool) []string {
	var out []string
	for _, name := range metricName.FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !known[name] && !known[base] {
			out = append(out, name)
		}
	}
	return out
}

// describer records the name of every metric registered through it.
type describer struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for desc := range ch {
			if m := fqName.FindStringSubmatch(desc.String()); m != nil {
				d.names[m[1]] = true
			}
		}
	}
	d.Registerer.MustRegister(cs...)
}

// registeredNames is every metric name the Register functions and New register.
func registeredNames(t *testing.T) map[string]bool {
	d := &describer{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	New(d)
	RegisterRollouts(d, func() []Rollout { return nil })
	RegisterBuildInfo(d, "v0", "rev", "go")
	RegisterPushWindow(d, func() (int, int) { return 0, 0 })
	if len(d.names) < 10 {
		t.Fatalf("only %d metric names read from the collectors: %v", len(d.names), d.names)
	}
	return d.names
}

func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			out = append(out, target.Expr)
		}
	}
	return out
}

func alertExprs(t *testing.T, path string) []string {
	t.Helper()
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %q needs an alert name, a severity and a summary", path, r.Alert)
			}
			out = append(out, r.Expr)
		}
	}
	return out
}
