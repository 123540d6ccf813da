// Package types holds the plain data that several pipeline stages share:
// digests, where a module came from, versions and what each node is assigned.
// It has no behaviour beyond small, pure helpers, so that any stage can import
// it without pulling in another stage.
package types

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Digest is the lower-case hex sha256 of a module's bytes (64 characters, no
// "sha256:" prefix). It is how Envoy checks remote code and how the store and
// the module server address modules.
type Digest string

// ErrBadDigest is returned by ParseDigest for anything but 64 hex characters.
var ErrBadDigest = errors.New("digest must be 64 lower-case hex characters")

// DigestOf returns the sha256 digest of b.
func DigestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest(hex.EncodeToString(sum[:]))
}

// ParseDigest accepts "HEX" or "sha256:HEX".
func ParseDigest(s string) (Digest, error) {
	if len(s) == 7+64 && s[:7] == "sha256:" {
		s = s[7:]
	}
	if len(s) != 64 {
		return "", ErrBadDigest
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", ErrBadDigest
		}
	}
	return Digest(s), nil
}

// Short is the first 12 characters, for logs and tables.
func (d Digest) Short() string {
	if len(d) > 12 {
		return string(d[:12])
	}
	return string(d)
}

// OriginKind says which kind of source produced a module.
type OriginKind string

const (
	// OriginFile is a file in the watched directory.
	OriginFile OriginKind = "file"
	// OriginOCI is an artifact in an OCI registry.
	OriginOCI OriginKind = "oci"
)

// Origin says where a module's bytes were read from.
type Origin struct {
	Kind OriginKind `json:"kind"`
	// Ref is the file path or the oci:// reference (with the digest it resolved to).
	Ref string `json:"ref"`
}

// Manifest describes a filter build; `wasmfleet build` writes it beside the
// module as NAME.manifest.json and OCI artifacts carry it as annotations.
type Manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Capabilities lists the host features the filter needs, e.g.
	// "http_call", "shared_data", "metrics", "tick".
	Capabilities []string `json:"capabilities,omitempty"`
}

// Version is one admitted module of a filter, as the store records it.
type Version struct {
	Filter  string    `json:"filter"`
	Digest  Digest    `json:"digest"`
	Size    int64     `json:"size"`
	Origin  Origin    `json:"origin"`
	AddedAt time.Time `json:"added_at"`
	// Manifest is present when the module came with one.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// EventKind says what happened at a source.
type EventKind int

const (
	// ModuleChanged: a filter's module bytes appeared or changed.
	ModuleChanged EventKind = iota + 1
	// ModuleRemoved: a filter's module is gone from its source.
	ModuleRemoved
	// SettingsChanged: a filter's NAME.yaml beside the module appeared,
	// changed or vanished (Settings is nil when it vanished).
	SettingsChanged
	// SourceFailed: a source could not read something it should have (a
	// file that is not a regular file, too large, a symlink loop, a bad
	// manifest). Err says what and names the file; nothing else changed.
	SourceFailed
)

func (k EventKind) String() string {
	switch k {
	case ModuleChanged:
		return "module-changed"
	case ModuleRemoved:
		return "module-removed"
	case SettingsChanged:
		return "settings-changed"
	case SourceFailed:
		return "source-failed"
	}
	return "unknown"
}

// Event is what a source reports. For ModuleChanged, Module holds exactly the
// bytes that were read after the write settled and Digest is their sha256:
// downstream stages never read the file again.
type Event struct {
	Kind   EventKind
	Filter string
	Origin Origin
	Module []byte
	Digest Digest
	// Manifest is the NAME.manifest.json beside a file, or the artifact's
	// annotations, when present.
	Manifest *Manifest
	// Settings is the raw YAML of NAME.yaml for SettingsChanged.
	Settings []byte
	// Signature is a detached signature found beside the module
	// (NAME.wasm.sig), when present.
	Signature []byte
	// Err is set for SourceFailed only.
	Err error
}

// BasisPoints is a share in 1/10000ths: 0 is none, 10000 is all. Node buckets
// and request splits both use it, so a percent maps to the same resolution.
type BasisPoints int

// FilterVersions is what one node runs for one filter. Candidate is empty
// unless requests are split between two versions on the node, in which case
// CandidateShare of the requests go through Candidate.
type FilterVersions struct {
	Stable         Digest      `json:"stable"`
	Candidate      Digest      `json:"candidate,omitempty"`
	CandidateShare BasisPoints `json:"candidate_share,omitempty"`
}

// Assignment maps filter name to the versions one node runs. A filter absent
// from the map is not sent to the node.
type Assignment map[string]FilterVersions

// BadMark records why a version was rolled back.
type BadMark struct {
	Digest Digest    `json:"digest"`
	Node   string    `json:"node,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// FilterState is the rollout state of one filter, persisted by the store so a
// restarted control plane serves exactly what it served before.
type FilterState struct {
	Filter string `json:"filter"`
	// Stable is what the fleet runs; empty before the first admitted version.
	Stable Digest `json:"stable,omitempty"`
	// Candidate is the version being rolled out, if any.
	Candidate Digest `json:"candidate,omitempty"`
	// Step is the index into the filter's rollout steps the candidate is at.
	Step int `json:"step,omitempty"`
	// StepSince is when the current step began (the planner never reads a
	// clock; the controller compares this with its own).
	StepSince time.Time `json:"step_since,omitzero"`
	Paused    bool      `json:"paused,omitempty"`
	// Settings is the raw NAME.yaml beside the module, if any, kept so a
	// restart serves the same configuration before the directory is rescanned.
	Settings []byte `json:"settings,omitempty"`
	// Retired is set when the filter's module was removed from its source.
	Retired bool `json:"retired,omitempty"`
	// Bad lists versions that were rolled back; they are not rolled out again
	// unless an operator clears the mark.
	Bad []BadMark `json:"bad,omitempty"`
}

// Full reports whether the candidate has replaced the stable version on
// this node (a share of 10000 or more).
func (v FilterVersions) Full() bool { return v.Candidate != "" && v.CandidateShare >= 10000 }

// Split reports whether requests are divided between stable and candidate.
func (v FilterVersions) Split() bool {
	return v.Candidate != "" && v.CandidateShare > 0 && v.CandidateShare < 10000
}

// Effective is what the node really runs: a candidate at 100% is its only
// version, and a candidate with no share is not run at all.
func (v FilterVersions) Effective() FilterVersions {
	switch {
	case v.Full():
		return FilterVersions{Stable: v.Candidate}
	case !v.Split():
		return FilterVersions{Stable: v.Stable}
	}
	return v
}

// Layout is what a managed node's HTTP connection managers run: the module
// in each filter slot (served over ECDS) and the slots the routes enable
// (served over RDS). The sequencing stage chooses it per node, so that a
// route only ever enables a slot the node has loaded.
type Layout struct {
	// Slots has two entries per slot pair p, in HTTP filter order: the
	// stable slot at 2p and its canary twin at 2p+1. A zero SlotFill is the
	// no-op that fills an unused slot.
	Slots []SlotFill `json:"slots"`
	// Chain is the filter chain the routes run, in order: each link
	// enables its pair's stable slot, and for Share of the requests the
	// canary slot instead.
	Chain []Link `json:"chain,omitempty"`
}

// Pairs is the number of slot pairs.
func (l Layout) Pairs() int { return len(l.Slots) / 2 }

// SlotFill is the module one slot runs.
type SlotFill struct {
	Filter string `json:"filter,omitempty"`
	Digest Digest `json:"digest,omitempty"`
}

// Link is one filter of a route's chain.
type Link struct {
	Pair   int    `json:"pair"`
	Filter string `json:"filter"`
	// Share of the requests run the canary slot of the pair; 0 (or 10000
	// and more) means none (all) are split off, and only the stable slot is
	// enabled.
	Share BasisPoints `json:"share,omitempty"`
}

// Split reports whether the link's requests are divided between its pair's
// stable and canary slots.
func (l Link) Split() bool { return l.Share > 0 && l.Share < 10000 }
