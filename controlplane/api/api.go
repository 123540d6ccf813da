package api

import (
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Prefix is the path every call of this version of the API starts with.
const Prefix = "/api/v1"

// Status is the body of GET /api/v1/status: each filter's rollout, and what
// each connected node runs.
type Status struct {
	// RefusedReload is the last change of the config file, if it was
	// refused and the file has not been fixed since: the control plane
	// runs the config from before it.
	RefusedReload *RefusedReload `json:"refused_reload,omitempty"`
	Filters       []Filter       `json:"filters"`
	Nodes         []Node         `json:"nodes"`
}

// RefusedReload is a change of the config file that was not applied, with
// every problem found in it.
type RefusedReload struct {
	Path   string    `json:"path"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Filter is one filter's versions and rollout. It is also the answer to a
// rollout command: the filter as the command left it.
type Filter struct {
	Name string `json:"name"`
	// Position in the HTTP filter chain, from 0; -1 when the filter is not
	// served (retired, or no version admitted yet).
	Position int `json:"position"`
	// Stable is the version the fleet runs outside the rollout; Candidate
	// the version rolling out, if any.
	Stable    types.Digest `json:"stable,omitempty"`
	Candidate types.Digest `json:"candidate,omitempty"`
	// By is "node" (a share of the nodes run the candidate) or "request"
	// (every node splits its requests).
	By string `json:"by"`
	// Percent of the nodes or requests on the candidate.
	Percent int   `json:"percent"`
	Steps   []int `json:"steps,omitempty"`
	// Step is the candidate's current step counted from 1, as people count
	// (step 1 of 3 is Steps[0]); 0 without a candidate or without steps.
	Step int `json:"step,omitempty"`
	// StepSince is when the current step began, and NextStepAt when the
	// candidate moves to the next step: absent while paused, at 100%, at
	// the last step, or without steps.
	StepSince  time.Time `json:"step_since,omitzero"`
	NextStepAt time.Time `json:"next_step_at,omitzero"`
	Paused     bool      `json:"paused"`
	Retired    bool      `json:"retired,omitempty"`
	Required   bool      `json:"required,omitempty"`
	// Source is the URL of the source that owns the filter.
	Source string `json:"source,omitempty"`
	// LastError is the filter's most recent problem (a rejected module, a
	// NACK, a refused settings file), and LastErrorAt when it happened.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Bad lists the versions rolled back, which are not rolled out again
	// until cleared (POST /api/v1/rollout/FILTER/clear-bad).
	Bad []BadVersion `json:"bad,omitempty"`
	// Admitting is the admission under way, absent when none is: trial
	// runs take up to limits.trial_timeout and run beside everything else,
	// so a module or settings file just dropped shows here first.
	Admitting *Admitting `json:"admitting,omitempty"`
}

// Admitting is a filter's admission under way: a module on trial, new
// settings on trial against the versions the fleet may run, or both.
// Nothing of it reaches the fleet before it passes; what it decides shows
// as a new candidate, new settings, or LastError.
type Admitting struct {
	// Digest is the module on trial; absent when only settings are.
	Digest types.Digest `json:"digest,omitempty"`
	// Settings names where the settings on trial come from (the filter's
	// NAME.yaml in the watch directory, or "config" for a reload of the
	// config file); absent when the module is tried with the settings in
	// force.
	Settings string `json:"settings,omitempty"`
	// Since is when the admission was asked for; it may wait for a free
	// admission worker first.
	Since time.Time `json:"since"`
}

// BadVersion is a version that was rolled back, and why.
type BadVersion struct {
	Digest types.Digest `json:"digest"`
	// Node is the node whose NACK or failed load caused the rollback;
	// empty when an operator rolled it back.
	Node   string    `json:"node,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Node is one connected Envoy and what it was sent and answered.
type Node struct {
	ID        string         `json:"id"`
	Cluster   string         `json:"cluster,omitempty"`
	UserAgent string         `json:"user_agent,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	// Streams is the number of xDS streams the node has open.
	Streams   int       `json:"streams"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Types is the exchange per xDS resource type, sorted by type URL.
	Types []TypeExchange `json:"types,omitempty"`
	// Filters the node was sent, sorted by name.
	Filters []NodeFilter `json:"filters,omitempty"`
}

// TypeExchange is the state of one xDS resource type with a node.
type TypeExchange struct {
	TypeURL      string    `json:"type_url"`
	SentVersion  string    `json:"sent_version,omitempty"`
	SentNonce    string    `json:"sent_nonce,omitempty"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	AckedVersion string    `json:"acked_version,omitempty"`
	AckedAt      time.Time `json:"acked_at,omitzero"`
	// LastNack is the most recent rejection; it stays after later ACKs.
	LastNack *Nack `json:"last_nack,omitempty"`
	// LastAnswer is how the node answered the last push it answered.
	LastAnswer *Answer `json:"last_answer,omitempty"`
}

// Nack is a version a node rejected, with Envoy's reason.
type Nack struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// Answer is how a node answered a push: for inline module code, Latency is
// about the time it took to load the module.
type Answer struct {
	Version string    `json:"version"`
	NACK    bool      `json:"nack"`
	SentAt  time.Time `json:"sent_at"`
	At      time.Time `json:"at"`
	Latency Duration  `json:"latency"`
}

// NodeFilter is what one node runs of one filter.
type NodeFilter struct {
	Filter string `json:"filter"`
	// Acked is what the node accepted last (empty before any ACK).
	Acked Running `json:"acked"`
	// Nacked are the versions of the last change to this filter the node
	// rejected, with its Reason; cleared when a later change is accepted.
	Nacked []types.Digest `json:"nacked,omitempty"`
	Reason string         `json:"reason,omitempty"`
}

// Running is what one node runs (or would run) of one filter. Each version
// is named for its role in the filter's rollout: a node that runs only the
// candidate has Candidate and no Stable; a node splitting requests (by
// request) has both, with CandidatePercent of its requests on Candidate.
// Stable holds any version that is not the filter's candidate.
type Running struct {
	Stable           types.Digest `json:"stable,omitempty"`
	Candidate        types.Digest `json:"candidate,omitempty"`
	CandidatePercent float64      `json:"candidate_percent,omitempty"`
}

// History is the body of GET /api/v1/filters/FILTER/history.
type History struct {
	Filter string `json:"filter"`
	// Versions are the admitted versions, oldest first.
	Versions []Version `json:"versions"`
	// Actions are what operators did to the filter's rollout, oldest
	// first.
	Actions []Action `json:"actions"`
}

// Action is one operator action on a filter: a rollout command (promote,
// pause, resume, rollback, clear-bad) or "reload", a config file edit that
// changed the filter's entry.
type Action struct {
	Action string `json:"action"`
	// Actor is who asked, as the client said (CommandRequest.Actor or the
	// ActorHeader; "admin-api" when it said nothing), or "config file".
	// The admin API authenticates its token, not people: it is a label.
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	// Digest is the version acted on: the candidate, or the version
	// clear-bad cleared.
	Digest types.Digest `json:"digest,omitempty"`
	At     time.Time    `json:"at"`
}

// Version is one admitted module of a filter.
type Version struct {
	Digest  types.Digest `json:"digest"`
	Size    int64        `json:"size"`
	Origin  Origin       `json:"origin"`
	AddedAt time.Time    `json:"added_at"`
	// Manifest is present when the module came with one.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// Origin is where a module's bytes were read from.
type Origin struct {
	// Kind is "file" or "oci".
	Kind string `json:"kind"`
	// Ref is the file path, or the oci:// reference with its digest.
	Ref string `json:"ref"`
}

// Manifest is what the module's build said about it.
type Manifest struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Capabilities []string `json:"capabilities,omitempty"`
}

// CommandRequest is the optional body of POST /api/v1/rollout/FILTER/ACTION
// (ACTION one of promote, pause, resume, rollback, clear-bad). The answer is
// the Filter as the command left it.
type CommandRequest struct {
	// Digest names the version for clear-bad: the whole digest or a prefix
	// of at least MinDigestPrefix hex characters, with or without
	// "sha256:"; a prefix naming two versions of the filter is refused.
	Digest string `json:"digest,omitempty"`
	// Reason is recorded with the action in the filter's history; for a
	// rollback it is also the bad mark's reason.
	Reason string `json:"reason,omitempty"`
	// Actor is who asks, recorded in the history (the CLI sends
	// USER@HOST unless told otherwise); when empty, the ActorHeader says,
	// else DefaultActor.
	Actor string `json:"actor,omitempty"`
}

// ActorHeader names the actor of a command that has no body, or whose body
// names none (a script with curl, a web page).
const ActorHeader = "Wasmfleet-Actor"

// DefaultActor is the actor recorded for a command that names none: the
// caller is whoever holds the admin token.
const DefaultActor = "admin-api"

// Plan is the answer to POST /api/v1/rollout/plan (the body is a whole
// config file): what would change on each node if it were applied now.
type Plan struct {
	Changes []Change `json:"changes"`
}

// Change is one node's versions of one filter before and after; From or To
// is null where the node does not (or would not) run the filter.
type Change struct {
	Node   string   `json:"node"`
	Filter string   `json:"filter"`
	From   *Running `json:"from"`
	To     *Running `json:"to"`
}

// BuildInfo is the body of GET /api/v1/version, and what `wasmfleet
// version` prints for the client.
type BuildInfo struct {
	// Version is the module version the binary was built from, as the Go
	// toolchain stamped it ("(devel)" for a plain build outside a VCS).
	Version string `json:"version"`
	// Revision is the VCS commit, with Modified when the tree had changes.
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Error is the body of every answer that is not 2xx.
type Error struct {
	Error string `json:"error"`
}

// Duration is a time.Duration that travels as Go's notation ("1.5s",
// "250ms"), which people can read and every language can parse.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText writes.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
