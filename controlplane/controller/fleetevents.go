package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/sequence"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func (c *Controller) handleFleet(ctx context.Context, ev fleet.Event) {
	switch ev.Kind {
	case fleet.NodeConnected:
		c.markConnected(ev.Node, ev.Session)
		if st, ok := c.cfg.Fleet.Node(ev.Node); ok {
			c.countRuns(st)
		}
		c.reconcile(ctx, ev.Node)
	case fleet.Answered:
		if c.answered(ev) {
			c.reconcile(ctx, ev.Node)
		}
	case fleet.NodeDisconnected:
		c.disconnected(ctx, ev.Node)
	case fleet.Acked:
		c.cfg.Metrics.Acks.WithLabelValues("ecds").Inc()
		// A node that failed this candidate is kept on stable and settled
		// as failed; nothing it ACKs of the candidate later counts.
		if rec, ok := c.filters[ev.Filter]; ok && ev.Digest != "" && ev.Digest == rec.state.Candidate && c.connected(ev.Node) &&
			!rec.failed.forCandidate(rec)[ev.Node] {
			rec.ackedCandidate()[ev.Node] = true
			c.confirm(ctx, ev.Filter)
		}
	case fleet.Nacked:
		c.cfg.Metrics.Nacks.WithLabelValues("ecds").Inc()
		c.nacked(ctx, ev)
	case fleet.Resync:
		c.resync(ctx, ev.Nodes)
	}
}

// connected reports whether node has an open stream.
func (c *Controller) connected(node string) bool {
	_, ok := c.nodes[node]
	return ok
}

// disconnected forgets a node whose last stream closed.
func (c *Controller) disconnected(ctx context.Context, node string) {
	delete(c.nodes, node)
	delete(c.sent, node)
	c.seq.Forget(node)
	c.cfg.Cache.ClearSnapshot(node)
	c.cfg.Metrics.ConnectedNodes.Set(float64(len(c.nodes)))
	// The node that left may have been the last one yet to ACK.
	for name, rec := range c.filters {
		delete(rec.ackedCandidate(), node)
		c.confirm(ctx, name)
	}
}

// adopt takes on a node the controller learns of from the registry's state
// rather than from its events (at start, and after a Resync): connected,
// counted for the candidates it runs, and with what it runs reported to the
// sequencer as a new subscription's first request would.
func (c *Controller) adopt(n fleet.NodeStatus) {
	c.markConnected(n.ID, n.Session)
	c.countRuns(n)
	for _, ts := range n.Types {
		c.answered(fleet.Event{Kind: fleet.Answered, Node: n.ID, TypeURL: ts.TypeURL, Version: ts.AckedVersion, Resources: ts.Resources, Report: true})
	}
}

// resync rebuilds the controller's view of the fleet after the registry
// dropped events to it (fleet.Resync): otherwise a lost ACK would hold a
// promotion, and a lost connect or disconnect the whole fleet, for ever.
// Nodes that left are forgotten and nodes that came (or came back, in a new
// session) are adopted; every node's ACKs and NACKs of candidates are read
// from its state, as the Acked and Nacked events dropped would have told.
// The sequencer misses nothing: the registry keeps the answers of nodes
// still connected, and delivered them before the Resync.
func (c *Controller) resync(ctx context.Context, nodes []fleet.NodeStatus) {
	c.log.Warn("fleet events were dropped; resynchronising from the fleet's state",
		zap.Int("nodes", len(nodes)), zap.Uint64("dropped_total", c.cfg.Fleet.DroppedEvents()))
	sessions := make(map[string]uint64, len(nodes))
	for _, n := range nodes {
		sessions[n.ID] = n.Session
	}
	for node, session := range c.nodes {
		if s, ok := sessions[node]; !ok || s != session {
			c.disconnected(ctx, node)
		}
	}
	for _, n := range nodes {
		if c.connected(n.ID) {
			c.countRuns(n)
		} else {
			c.adopt(n)
		}
		c.countFailures(ctx, n)
	}
	for name := range c.filters {
		c.confirm(ctx, name)
	}
	c.reconcile(ctx)
}

// confirm promotes a filter's candidate once it runs at 100%, at least one
// node has ACKed it and every other connected node has ACKed it or failed
// it within max_failed_nodes: only then is there no node left that could
// still reject it, so the previous stable version can be let go. Nodes that
// failed it are then sent the new stable version, which they will likely
// reject again and keep running what they ran; the filter's last error
// names them.
func (c *Controller) confirm(ctx context.Context, filter string) {
	rec, ok := c.filters[filter]
	if !ok || rec.state.Candidate == "" || len(c.nodes) == 0 || len(rec.ackedCandidate()) == 0 {
		return
	}
	acked := len(rec.ackedCandidate()) // connected nodes only
	settled := acked
	var failed []string
	for n := range rec.failed.forCandidate(rec) {
		if c.connected(n) {
			settled++
			failed = append(failed, n)
		}
	}
	if settled < len(c.nodes) {
		return
	}
	d := rec.state.Candidate
	next, promoted := rollout.Confirmed(rec.settings, rec.state, d)
	if !promoted {
		return
	}
	rec.state = next
	log := c.log.With(zap.String("filter", filter))
	log.Info("candidate promoted to stable", zap.String("version", d.Short()),
		zap.Int("acked", acked), zap.Int("failed", len(failed)))
	if len(failed) > 0 {
		slices.Sort(failed)
		c.fail(rec, fmt.Errorf("version %s promoted although nodes %s failed to load it (within max_failed_nodes)", d.Short(), strings.Join(failed, ", ")))
	}
	c.saveAndReconcile(ctx, rec, log)
}

// markConnected records a node with an open stream in session.
func (c *Controller) markConnected(node string, session uint64) {
	c.nodes[node] = session
	c.seq.Connected(node)
	c.cfg.Metrics.ConnectedNodes.Set(float64(len(c.nodes)))
}

// countRuns counts a node toward confirming every candidate its state says
// it has ACKed. A node that reconnects reports the versions it already
// runs, which the registry records without an Acked event; a Resync stands
// for Acked events dropped. A node that failed the candidate is not
// counted: nothing it ACKs of it later counts.
func (c *Controller) countRuns(n fleet.NodeStatus) {
	for _, f := range n.Filters {
		rec, ok := c.filters[f.Filter]
		if !ok {
			continue
		}
		d := rec.state.Candidate
		if d != "" && (f.Acked.Stable == d || f.Acked.Candidate == d) && !rec.failed.forCandidate(rec)[n.ID] {
			rec.ackedCandidate()[n.ID] = true
		}
	}
}

// countFailures handles, after a Resync, the candidates a node's state says
// it rejected and the controller has not counted as failed yet: the Nacked
// events that were dropped.
func (c *Controller) countFailures(ctx context.Context, n fleet.NodeStatus) {
	for _, f := range n.Filters {
		rec, ok := c.filters[f.Filter]
		if !ok {
			continue
		}
		d := rec.state.Candidate
		if d != "" && slices.Contains(f.Nacked, d) && !rec.failed.forCandidate(rec)[n.ID] {
			c.nacked(ctx, fleet.Event{Kind: fleet.Nacked, Node: n.ID, Filter: f.Filter, Digest: d, Reason: f.Reason})
		}
	}
}

// nacked rolls a candidate back when nodes fail to load it.
func (c *Controller) nacked(ctx context.Context, ev fleet.Event) {
	rec, ok := c.filters[ev.Filter]
	if !ok || ev.Digest == "" || ev.Digest != rec.state.Candidate {
		return
	}
	failed := rec.failed.forCandidate(rec)
	failed[ev.Node] = true
	delete(rec.ackedCandidate(), ev.Node)
	ev.Reason = rec.resolved.Redact(ev.Reason) // a node may echo its configuration
	mark := types.BadMark{Digest: ev.Digest, Node: ev.Node, Reason: ev.Reason, At: c.now()}
	next, rolledBack := rollout.Failed(rec.settings, rec.state, mark, len(failed))
	if !rolledBack {
		// Tolerated (max_failed_nodes): the node goes back to stable (the
		// planner keeps failed nodes there) and no longer holds up promotion.
		c.log.Warn("node failed to load the candidate; within max_failed_nodes",
			zap.String("filter", ev.Filter), zap.String("node", ev.Node), zap.String("digest", ev.Digest.Short()), zap.String("reason", ev.Reason))
		c.reconcile(ctx, ev.Node)
		c.confirm(ctx, ev.Filter)
		return
	}
	rec.state = next
	c.cfg.Metrics.Rollbacks.WithLabelValues(ev.Filter, "nack").Inc()
	log := c.log.With(zap.String("filter", ev.Filter), zap.String("node", ev.Node), zap.String("digest", ev.Digest.Short()))
	log.Error("candidate rolled back: a node failed to load it", zap.String("reason", ev.Reason))
	c.fail(rec, fmt.Errorf("version %s rolled back: node %s: %s", ev.Digest.Short(), ev.Node, ev.Reason))
	c.saveAndReconcile(ctx, rec, log)
}

// answered feeds a node's answer (or report) about its listeners, routes
// or filter slots to the sequencer, decoding what it runs from the version,
// or, for a delta stream's report, from the version of each resource.
// It reports whether the node may now be sent something new.
func (c *Controller) answered(ev fleet.Event) bool {
	if c.cfg.Config.Mode == config.ModeECDS || c.cfg.Unsequenced {
		return false
	}
	var kind sequence.Kind
	var routes []types.Link
	var slots []string
	ok := true
	switch ev.TypeURL {
	case resourcev3.ListenerType:
		kind = sequence.Listeners
	case resourcev3.RouteType:
		kind = sequence.Routes
		if ev.Resources != nil {
			routes, ok = snapshot.ParseRouteVersions(ev.Resources)
		} else {
			routes, ok = snapshot.ParseRoutes(ev.Version)
		}
	case resourcev3.ExtensionConfigType:
		kind = sequence.Slots
		if ev.Resources != nil {
			slots, ok = snapshot.ParseSlotVersions(ev.Resources)
		} else {
			slots, ok = snapshot.ParseSlots(ev.Version)
		}
	default:
		return false
	}
	if ev.Report {
		runs := ev.Version != "" || len(ev.Resources) > 0
		if runs && !ok && kind != sequence.Listeners {
			c.log.Warn("node reports a version this control plane cannot read; treating its routes and slots as unknown",
				zap.String("node", ev.Node), zap.String("type", ev.TypeURL), zap.String("version", ev.Version),
				zap.Any("resources", ev.Resources))
		}
		return c.seq.Reported(ev.Node, kind, runs, routes, slots, ok)
	}
	if !ok {
		return false
	}
	switch kind {
	case sequence.Routes:
		c.seq.AnsweredRoutes(ev.Node, routes, ev.NACK)
	case sequence.Slots:
		c.seq.AnsweredSlots(ev.Node, slots, ev.NACK)
	default:
		return false
	}
	return true
}
