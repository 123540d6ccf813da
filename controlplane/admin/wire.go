package admin

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// This file turns the control plane's internal state into the API's wire
// types. Every time leaves in UTC, so the same state gives the same JSON
// wherever the server runs.

// Build is this binary's version, from what the Go toolchain stamped into
// it: GET /api/v1/version serves it, and `wasmfleet version` prints it for
// the client, so both sides say the same thing the same way.
func Build() api.BuildInfo {
	b := api.BuildInfo{Version: "(unknown)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Version = info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Filters is the controller's status as the API shows it; the rollout
// gauges read it too, so they count steps as status does.
func Filters(fs []controller.FilterStatus) []api.Filter {
	out := make([]api.Filter, len(fs))
	for i, f := range fs {
		out[i] = wireFilter(f)
	}
	return out
}

func wireFilter(f controller.FilterStatus) api.Filter {
	w := api.Filter{
		Name: f.Name, Position: f.Position, Stable: f.Stable, Candidate: f.Candidate,
		By: string(f.By), Percent: f.Percent, Steps: f.Steps, StepSince: utc(f.StepSince), NextStepAt: utc(f.NextStepAt),
		Paused: f.Paused, Retired: f.Retired, Required: f.Required, Source: f.Source,
		LastError: f.LastError, LastErrorAt: utc(f.ErrorAt),
	}
	if len(f.Steps) > 0 && f.Candidate != "" {
		w.Step = f.Step + 1
	}
	for _, b := range f.Bad {
		w.Bad = append(w.Bad, api.BadVersion{Digest: b.Digest, Node: b.Node, Reason: b.Reason, At: utc(b.At)})
	}
	if a := f.Admitting; a != nil {
		w.Admitting = &api.Admitting{Digest: a.Digest, Settings: a.Settings, Since: utc(a.Since)}
	}
	return w
}

// candidates maps each filter with a rollout under way to its candidate,
// which is what tells a node's candidate apart from its stable version.
func candidates(fs []controller.FilterStatus) map[string]types.Digest {
	c := make(map[string]types.Digest, len(fs))
	for _, f := range fs {
		if f.Candidate != "" {
			c[f.Name] = f.Candidate
		}
	}
	return c
}

// wireRunning names each version a node runs for its role. Internally a
// node that runs one version holds it as Stable even when that version is
// the filter's candidate (by node, a node on the candidate runs only it);
// on the wire it is the candidate.
func wireRunning(v types.FilterVersions, candidate types.Digest) api.Running {
	if v.Candidate == "" && v.Stable != "" && v.Stable == candidate {
		return api.Running{Candidate: v.Stable}
	}
	return api.Running{Stable: v.Stable, Candidate: v.Candidate, CandidatePercent: float64(v.CandidateShare) / 100}
}

func wireNodes(ns []fleet.NodeStatus, cand map[string]types.Digest) []api.Node {
	out := make([]api.Node, len(ns))
	for i, n := range ns {
		w := api.Node{
			ID: n.ID, Cluster: n.Cluster, UserAgent: n.UserAgent, Metadata: n.Metadata,
			Streams: n.Streams, FirstSeen: utc(n.FirstSeen), LastSeen: utc(n.LastSeen),
		}
		for _, t := range n.Types {
			x := api.TypeExchange{
				TypeURL: t.TypeURL, SentVersion: t.SentVersion, SentNonce: t.SentNonce, SentAt: utc(t.SentAt),
				AckedVersion: t.AckedVersion, AckedAt: utc(t.AckedAt),
			}
			if t.LastNack != nil {
				x.LastNack = &api.Nack{Version: t.LastNack.Version, Reason: t.LastNack.Reason, At: utc(t.LastNack.At)}
			}
			if a := t.LastAnswer; a != nil {
				x.LastAnswer = &api.Answer{Version: a.Version, NACK: a.NACK, SentAt: utc(a.SentAt), At: utc(a.At), Latency: api.Duration(a.Latency)}
			}
			w.Types = append(w.Types, x)
		}
		for _, f := range n.Filters {
			w.Filters = append(w.Filters, api.NodeFilter{
				Filter: f.Filter, Acked: wireRunning(f.Acked, cand[f.Filter]), Nacked: f.Nacked, Reason: f.Reason,
			})
		}
		out[i] = w
	}
	return out
}

func wireVersions(vs []types.Version) []api.Version {
	out := make([]api.Version, len(vs))
	for i, v := range vs {
		out[i] = api.Version{
			Digest: v.Digest, Size: v.Size, AddedAt: utc(v.AddedAt),
			Origin: api.Origin{Kind: string(v.Origin.Kind), Ref: v.Origin.Ref},
		}
		if m := v.Manifest; m != nil {
			out[i].Manifest = &api.Manifest{Name: m.Name, Version: m.Version, Capabilities: m.Capabilities}
		}
	}
	return out
}

func wireActions(as []store.Action) []api.Action {
	out := make([]api.Action, len(as))
	for i, a := range as {
		out[i] = api.Action{Action: a.Action, Actor: a.Actor, Reason: a.Reason, Digest: a.Digest, At: utc(a.At)}
	}
	return out
}

func wirePlan(changes []rollout.Change, cand map[string]types.Digest) api.Plan {
	p := api.Plan{Changes: make([]api.Change, len(changes))}
	running := func(v types.FilterVersions, filter string) *api.Running {
		if v == (types.FilterVersions{}) {
			return nil
		}
		r := wireRunning(v, cand[filter])
		return &r
	}
	for i, c := range changes {
		p.Changes[i] = api.Change{Node: c.Node, Filter: c.Filter, From: running(c.From, c.Filter), To: running(c.To, c.Filter)}
	}
	return p
}

// utc keeps the zero time zero (so omitzero drops it) and moves any other
// time to UTC.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
