package fleet

// What a node's requests and the responses it is sent mean: ACKs and NACKs
// matched to the response they answer, reports of a new subscription, and
// ECDS versions resolved to the filters and modules they carry.

import (
	"maps"
	"slices"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func (r *registry) Requested(s Stream, id Identity, req Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.bind(s, id)
	if n == nil {
		return
	}
	now := r.now()
	n.lastSeen = now
	ts := n.typeState(req.TypeURL)
	ecds := req.TypeURL == resource.ExtensionConfigType
	h := r.assigned[n.id.ID]
	r.publishAnswer(n, ts, s, req, now)
	if req.Nonce == "" {
		if ecds && h != nil && req.Version == "" && !s.Delta {
			h.rejected = "" // a restarted Envoy: nothing rejected is remembered
		}
		// A new subscription. After a reconnect the node reports the
		// version it already runs; record it, but it is no news.
		if s.Delta && len(req.Resources) > 0 && ts.AckedVersion == "" {
			ts.Resources = maps.Clone(req.Resources)
		}
		if !s.Delta && req.Version != "" && ts.AckedVersion == "" && !(ecds && h != nil && req.Version == h.rejected) {
			ts.AckedVersion, ts.AckedAt = req.Version, now
			if req.TypeURL == resource.ExtensionConfigType {
				r.resolveAck(n, req.Version, false, now)
			}
		}
		return
	}
	sentVersion, known := ts.answered(s, req.Nonce)
	if known {
		r.timeAnswer(ts, sentVersion, req.NACK, now)
	}
	if req.NACK {
		ts.LastNack = &Nack{Version: sentVersion, Reason: req.Reason, At: now}
		if ecds && known && h != nil {
			h.rejected = sentVersion
		}
		r.log.Warn("xds update rejected", zap.String("node", n.id.ID), zap.String("type", req.TypeURL),
			zap.String("version", sentVersion), zap.String("reason", req.Reason))
		if req.TypeURL == resource.ExtensionConfigType && known {
			r.resolveNack(n, sentVersion, req.Reason, now)
		}
		return
	}
	v := req.Version
	if s.Delta || v == "" {
		v = sentVersion
	}
	if v == "" {
		return
	}
	if ecds && h != nil && v == h.rejected {
		r.log.Debug("ack of a version the node rejected: a skipped re-send, not a load",
			zap.String("node", n.id.ID), zap.String("version", v))
		return
	}
	// A repeated ACK of the same version still clears a NACK recorded in
	// between; resolveAck announces only digests that are new to the node.
	ts.AckedVersion, ts.AckedAt, ts.Resources = v, now, nil
	if ecds {
		if h != nil {
			h.rejected = "" // the node loaded another config
		}
		r.resolveAck(n, v, true, now)
	}
}

// sequenced are the types whose answers the sequencing stage follows.
var sequenced = map[string]bool{
	resource.ListenerType: true, resource.RouteType: true, resource.ExtensionConfigType: true,
}

// publishAnswer publishes an Answered event for a request of a sequenced
// type: a report on a new subscription, or the ACK or NACK of a known
// response. It does not forget the response (answered does). The caller
// holds r.mu.
func (r *registry) publishAnswer(n *node, ts *typeState, s Stream, req Request, now time.Time) {
	if !sequenced[req.TypeURL] {
		return
	}
	ev := Event{Kind: Answered, Node: n.id.ID, TypeURL: req.TypeURL, NACK: req.NACK, Reason: req.Reason, At: now}
	switch {
	case req.Nonce == "" && s.Delta:
		// Only a delta stream's first request of the type reports what
		// the node has; later ones without a nonce change what it
		// subscribes to.
		if ts.subscribed == s {
			return
		}
		ts.subscribed = s
		ev.Report = true
		if len(req.Resources) > 0 {
			ev.Resources = maps.Clone(req.Resources)
		}
	case req.Nonce == "":
		ev.Report, ev.Version = true, req.Version
	default:
		v, ok := ts.peek(s, req.Nonce)
		if !ok {
			return
		}
		ev.Version = v
	}
	r.publish(ev)
}

// peek returns the version of the response sent on s with nonce.
func (ts *typeState) peek(s Stream, nonce string) (string, bool) {
	for i := len(ts.sent) - 1; i >= 0; i-- {
		if ts.sent[i].stream == s && ts.sent[i].nonce == nonce {
			return ts.sent[i].version, true
		}
	}
	return "", false
}

// answered returns the version of the response sent on s with nonce and
// forgets it and every older response.
func (ts *typeState) answered(s Stream, nonce string) (string, bool) {
	for i := len(ts.sent) - 1; i >= 0; i-- {
		if ts.sent[i].stream == s && ts.sent[i].nonce == nonce {
			v := ts.sent[i].version
			ts.sent = slices.Delete(ts.sent, 0, i+1)
			return v, true
		}
	}
	return "", false
}

// timeAnswer records the node's answer to version v of ts's type; the first
// answer to the push of v ends the push and is timed.
func (r *registry) timeAnswer(ts *typeState, v string, nack bool, now time.Time) {
	p := &ts.push
	if p.version != v || p.answered {
		return
	}
	p.answered = true
	if ts.LastAnswer == nil {
		ts.LastAnswer = new(Answer) // then reused: status hands out copies
	}
	*ts.LastAnswer = Answer{Version: v, NACK: nack, SentAt: p.at, At: now, Latency: now.Sub(p.at)}
	if r.metrics != nil {
		r.metrics.ObserveResponse(ts.TypeURL, nack, ts.LastAnswer.Latency)
	}
}

func (r *registry) Sent(s Stream, typeURL, version, nonce string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.streams[s]
	n := r.nodes[id]
	if n == nil {
		return
	}
	now := r.now()
	ts := n.typeState(typeURL)
	ts.SentVersion, ts.SentNonce, ts.SentAt = version, nonce, now
	if version != ts.push.version {
		ts.push = push{version: version, at: now}
	}
	if len(ts.sent) == sentHistory {
		ts.sent = slices.Delete(ts.sent, 0, 1)
	}
	ts.sent = append(ts.sent, sentResponse{stream: s, nonce: nonce, version: version})
	if typeURL != resource.ExtensionConfigType {
		return
	}
	a, _ := r.lookupAssigned(id, version)
	for name := range a {
		n.filter(name)
	}
}

func (r *registry) Assigned(nodeID, ecdsVersion string, a types.Assignment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	h := r.assigned[nodeID]
	if h == nil {
		h = &assignments{}
		r.assigned[nodeID] = h
	}
	h.versions = slices.DeleteFunc(h.versions, func(av assignedVersion) bool { return av.version == ecdsVersion })
	if len(h.versions) == assignedHistory {
		h.versions = slices.Delete(h.versions, 0, 1)
	}
	h.versions = append(h.versions, assignedVersion{version: ecdsVersion, a: maps.Clone(a)})
	n := r.nodes[nodeID]
	switch {
	case n == nil:
		// Assigned to a node that already left (the control plane had
		// not heard yet): the record must expire like the node's others.
		r.away(nodeID, now)
	case n.unresolved == ecdsVersion:
		r.resolveAck(n, ecdsVersion, true, now)
	}
	r.expire(now)
}

// lookupAssigned returns the assignment that ECDS version v carried for the
// node and its position in the node's history, or nil.
func (r *registry) lookupAssigned(nodeID, v string) (types.Assignment, int) {
	h := r.assigned[nodeID]
	if h == nil {
		return nil, -1
	}
	for i, av := range h.versions {
		if av.version == v {
			return av.a, i
		}
	}
	return nil, -1
}

// resolveAck makes the assignment of ECDS version v the node's acked state
// and, when publish is set, announces every digest the node newly runs.
// Versions assigned before v are forgotten: the node answers in order, so
// none of them can be ACKed or NACKed any more.
func (r *registry) resolveAck(n *node, v string, publish bool, now time.Time) {
	a, i := r.lookupAssigned(n.id.ID, v)
	if a == nil {
		n.unresolved = v
		return
	}
	n.unresolved = ""
	h := r.assigned[n.id.ID]
	h.versions = slices.Delete(h.versions, 0, i)
	for name := range n.filters {
		if _, ok := a[name]; !ok {
			delete(n.filters, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a)) {
		fv := a[name]
		fs := n.filter(name)
		old := fs.Acked
		fs.Acked, fs.Nacked, fs.Reason = fv, nil, ""
		if !publish {
			continue
		}
		for _, d := range newDigests(old, fv) {
			r.publish(Event{Kind: Acked, Node: n.id.ID, Filter: name, Digest: d, Version: v, At: now})
		}
	}
}

// resolveNack blames the rejection of ECDS version v on the digests it would
// have introduced; the node keeps running what it acked before.
func (r *registry) resolveNack(n *node, v, reason string, now time.Time) {
	a, _ := r.lookupAssigned(n.id.ID, v)
	if a == nil {
		r.publish(Event{Kind: Nacked, Node: n.id.ID, Version: v, Reason: reason, At: now})
		return
	}
	blamed := false
	for _, name := range slices.Sorted(maps.Keys(a)) {
		fs := n.filter(name)
		digests := newDigests(fs.Acked, a[name])
		if len(digests) == 0 {
			continue
		}
		blamed = true
		fs.Nacked, fs.Reason = digests, reason
		for _, d := range digests {
			r.log.Warn("module rejected", zap.String("node", n.id.ID), zap.String("filter", name),
				zap.String("digest", string(d)), zap.String("version", v), zap.String("reason", reason))
			r.publish(Event{Kind: Nacked, Node: n.id.ID, Filter: name, Digest: d, Version: v, Reason: reason, At: now})
		}
	}
	if !blamed {
		r.publish(Event{Kind: Nacked, Node: n.id.ID, Version: v, Reason: reason, At: now})
	}
}

// newDigests lists the digests in next that prev did not run.
func newDigests(prev, next types.FilterVersions) []types.Digest {
	var out []types.Digest
	for _, d := range []types.Digest{next.Stable, next.Candidate} {
		if d != "" && d != prev.Stable && d != prev.Candidate {
			out = append(out, d)
		}
	}
	return out
}
