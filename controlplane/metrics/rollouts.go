package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Rollout is one filter's rollout state as the rollout gauges show it.
type Rollout struct {
	Filter string
	// Candidate is true while a candidate version is rolling out.
	Candidate bool
	// Percent of the fleet (or of the requests) on the candidate.
	Percent int
	// Step is the 1-based step of the candidate's rollout, as `wasmfleet
	// status` shows it; 0 with no candidate or a rollout without steps.
	Step int
	// StepSince is when the current step began (zero with no candidate).
	StepSince time.Time
	Paused    bool
	// Failing is true while the filter has a last error (a refused module
	// or settings file, a source that cannot be read).
	Failing bool
}

// RegisterRollouts registers the rollout gauges on reg. They are read from
// rollouts at every scrape rather than set by the controller, so they
// always agree with `wasmfleet status` and a filter that is gone leaves no
// stale series behind. rollouts must be safe for concurrent use.
func RegisterRollouts(reg prometheus.Registerer, rollouts func() []Rollout) {
	reg.MustRegister(rolloutCollector(rollouts))
}

var (
	rolloutCandidate = prometheus.NewDesc("wasmfleet_rollout_candidate",
		"1 while a candidate version of the filter is rolling out.", []string{"filter"}, nil)
	rolloutPercent = prometheus.NewDesc("wasmfleet_rollout_percent",
		"Percent of the fleet or of the requests on the filter's candidate.", []string{"filter"}, nil)
	rolloutStep = prometheus.NewDesc("wasmfleet_rollout_step",
		"1-based step of the candidate's rollout; 0 with no candidate or no steps.", []string{"filter"}, nil)
	rolloutStepStart = prometheus.NewDesc("wasmfleet_rollout_step_start_timestamp_seconds",
		"When the candidate's current step began, in Unix seconds (only while a candidate rolls out).", []string{"filter"}, nil)
	rolloutPaused = prometheus.NewDesc("wasmfleet_rollout_paused",
		"1 while an operator has paused the filter's rollout.", []string{"filter"}, nil)
	filterFailing = prometheus.NewDesc("wasmfleet_filter_error",
		"1 while the filter has an error (its last module or settings refused, its source unreadable).", []string{"filter"}, nil)
)

type rolloutCollector func() []Rollout

func (c rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rolloutCandidate, rolloutPercent, rolloutStep, rolloutStepStart, rolloutPaused, filterFailing} {
		ch <- d
	}
}

func (c rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, filter string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, filter)
	}
	for _, r := range c() {
		gauge(rolloutCandidate, flag(r.Candidate), r.Filter)
		gauge(rolloutPercent, float64(r.Percent), r.Filter)
		gauge(rolloutStep, float64(r.Step), r.Filter)
		gauge(rolloutPaused, flag(r.Paused), r.Filter)
		gauge(filterFailing, flag(r.Failing), r.Filter)
		if r.Candidate && !r.StepSince.IsZero() {
			gauge(rolloutStepStart, float64(r.StepSince.UnixNano())/1e9, r.Filter)
		}
	}
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RegisterBuildInfo registers wasmfleet_build_info: 1, labelled with the
// build's module version, VCS revision and Go version, so a dashboard can
// tell which build each control plane runs. The caller reads them once
// (admin.Build, which GET /api/v1/version also serves).
func RegisterBuildInfo(reg prometheus.Registerer, version, revision, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "wasmfleet_build_info",
		Help:        "1, labelled with the build's module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "go_version": goVersion},
	})
	g.Set(1)
	reg.MustRegister(g)
}
