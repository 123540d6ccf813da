package oci

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// DefaultMaxBackoff caps the wait between retries while the registry fails.
const DefaultMaxBackoff = 5 * time.Minute

// Config configures one watched reference. Zero fields take defaults.
type Config struct {
	// Filter is the filter the module is for.
	Filter string
	// Ref is oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:HEX.
	Ref string
	// PollInterval is how often the tag is checked (config.DefaultOCIPoll).
	PollInterval time.Duration
	// MaxBackoff caps the retry delay while the registry fails
	// (DefaultMaxBackoff, and never below PollInterval).
	MaxBackoff time.Duration
	// MaxBytes refuses larger modules before downloading them
	// (config.DefaultMaxModuleBytes).
	MaxBytes int64
	// Insecure allows plain HTTP to the registry.
	Insecure bool
	// SignatureRepository is REGISTRY/REPO where cosign keeps the
	// artifact's .sig signatures when they are not beside it (cosign's
	// COSIGN_REPOSITORY); it is reached as the artifact's registry is.
	// Sigstore bundle referrers are always beside the artifact, where
	// cosign 2.6 writes and reads them whatever COSIGN_REPOSITORY says.
	SignatureRepository string
	// Keychain finds credentials; nil: the Docker config file and helpers.
	Keychain authn.Keychain
	// Log is used as given (the caller names it); nil discards.
	Log *zap.Logger
}

// Source polls one reference. It is a runner: New, then Start once; all
// its state belongs to the Start goroutine.
type Source struct {
	cfg Config
	out chan<- types.Event
	log *zap.Logger
	// rem is how the registry is reached; session is rem reusing its
	// transport between polls, nil after a failure (a restarted registry or
	// new credentials get a fresh look).
	rem     ociartifact.Remote
	session *ociartifact.Remote
	// signatures is the repository holding the signatures, set by Start.
	signatures ociartifact.Ref

	// reported is what the last ModuleChanged was built from.
	reported state
	// refused is an artifact reported as SourceFailed, not fetched again.
	refused state
	// failing is the kind of the current registry failure, "" when fine.
	failing  string
	failures int
}

// state identifies what a poll saw: the module's manifest digest, the
// digest of its .sig signature image and the listing of its Sigstore bundle
// referrers ("" when there is none).
type state struct {
	manifest, signatures, bundles string
}

// New returns a source for cfg.Ref that sends to out. Start sends with a
// blocking send (until ctx ends); out is never closed.
func New(cfg Config, out chan<- types.Event) *Source {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = config.DefaultOCIPoll
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.PollInterval)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = config.DefaultMaxModuleBytes
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Source{
		cfg: cfg,
		out: out,
		log: cfg.Log.With(zap.String("filter", cfg.Filter), zap.String("ref", cfg.Ref)),
		rem: ociartifact.Remote{Insecure: cfg.Insecure, Keychain: cfg.Keychain},
	}
}

// Start polls until ctx ends, when it returns nil. It returns an error only
// for a reference or signature repository that cannot be parsed.
func (s *Source) Start(ctx context.Context) error {
	ref, err := ociartifact.ParseRef(s.cfg.Ref)
	if err != nil {
		return fmt.Errorf("source: filter %s: %w", s.cfg.Filter, err)
	}
	s.signatures = ref
	if s.cfg.SignatureRepository != "" {
		if s.signatures, err = ociartifact.ParseRepository(s.cfg.SignatureRepository); err != nil {
			return fmt.Errorf("source: filter %s: signature repository (COSIGN_REPOSITORY): %w", s.cfg.Filter, err)
		}
	}
	s.log.Info("watching registry", zap.Duration("poll_interval", s.cfg.PollInterval))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		err := s.poll(ctx, ref)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, ociartifact.ErrNotFound) {
			s.session = nil
		}
		s.track(err)
		timer.Reset(s.delay())
	}
}

// poll does one round: resolve, and fetch and report if anything moved.
// The error is a registry failure to back off from; problems with the
// artifact itself are reported as events and return nil.
func (s *Source) poll(ctx context.Context, ref ociartifact.Ref) error {
	if s.session == nil {
		rem, err := s.rem.Reusing()
		if err != nil {
			return err
		}
		s.session = &rem
	}
	rem := *s.session
	digest := ref.Digest
	if digest == "" || s.reported.manifest == "" {
		d, err := ociartifact.Resolve(ctx, ref, rem)
		if err != nil {
			return s.failed(ctx, state{manifest: "unresolvable"}, err)
		}
		digest = d
	}
	sigDigest, err := ociartifact.Resolve(ctx, ociartifact.SignatureRef(s.signatures, digest), rem)
	switch {
	case errors.Is(err, ociartifact.ErrNotFound):
		sigDigest = ""
	case err != nil:
		return err
	}
	// cosign (2.6) attaches Sigstore bundles beside the artifact even when
	// COSIGN_REPOSITORY is set, and reads them from there.
	listing, bundles, err := ociartifact.ListSigstoreBundles(ctx, ref, digest, rem)
	if err != nil {
		return s.failed(ctx, state{manifest: digest, signatures: sigDigest, bundles: "unlistable"}, err)
	}
	now := state{manifest: digest, signatures: sigDigest, bundles: listing}
	if now == s.reported || now == s.refused {
		return nil
	}
	a, err := ociartifact.Fetch(ctx, ref.Pinned(digest), s.cfg.MaxBytes, rem)
	if err != nil {
		return s.failed(ctx, now, err)
	}
	ev := types.Event{
		Kind: types.ModuleChanged, Filter: s.cfg.Filter,
		Origin: types.Origin{Kind: types.OriginOCI, Ref: ref.Pinned(digest).String()},
		Module: a.Module, Digest: types.DigestOf(a.Module), Manifest: a.Manifest,
	}
	if sigDigest != "" || len(bundles) > 0 {
		if ev.Signature, err = s.bundle(ctx, rem, ref, sigDigest, bundles, a); err != nil {
			return s.failed(ctx, now, err)
		}
	}
	s.reported, s.refused = now, state{}
	s.log.Info("module changed", zap.String("digest", string(ev.Digest)), zap.String("manifest", digest),
		zap.Bool("signed", ev.Signature != nil), zap.Int("bytes", len(a.Module)))
	s.send(ctx, ev)
	return nil
}

// bundle fetches cosign's signatures of the artifact, from the .sig image
// (sigDigest, "" for none) and the Sigstore bundle referrers found in ref's
// repository, and packs them with what binds them to the module, for the
// verifier.
func (s *Source) bundle(ctx context.Context, rem ociartifact.Remote, ref ociartifact.Ref, sigDigest string, found []v1.Descriptor, a ociartifact.Artifact) ([]byte, error) {
	b := signature.Bundle{Index: a.Index, Manifest: a.RawManifest, Layer: a.Layer}
	var err error
	if sigDigest != "" {
		if b.Signatures, err = ociartifact.FetchSignatures(ctx, s.signatures.Pinned(sigDigest), rem); err != nil {
			return nil, err
		}
	}
	if b.Sigstore, err = ociartifact.FetchSigstoreBundles(ctx, ref, found, rem); err != nil {
		return nil, err
	}
	return b.Marshal()
}

// failed sorts an error from reading st: an artifact that can never be used
// is refused and nil returned; a registry that failed to serve it is
// returned, to back off from.
func (s *Source) failed(ctx context.Context, st state, err error) error {
	if errors.Is(err, ociartifact.ErrMediaType) || errors.Is(err, ociartifact.ErrTooLarge) ||
		errors.Is(err, ociartifact.ErrDigestMismatch) || errors.Is(err, ociartifact.ErrNoPlugin) {
		s.refuse(ctx, st, err)
		return nil
	}
	return err
}

// refuse reports an unusable artifact once; what was reported before stays
// in force.
func (s *Source) refuse(ctx context.Context, st state, err error) {
	if st == s.refused {
		return
	}
	s.refused = st
	err = fmt.Errorf("source: %s: %w", s.cfg.Ref, err)
	s.log.Warn("cannot use artifact", zap.String("digest", st.manifest), zap.Error(err))
	s.send(ctx, types.Event{Kind: types.SourceFailed, Filter: s.cfg.Filter,
		Origin: types.Origin{Kind: types.OriginOCI, Ref: s.cfg.Ref}, Err: err})
}

// track counts consecutive failures and logs changes of state only.
func (s *Source) track(err error) {
	kind := failureKind(err)
	switch {
	case kind == s.failing:
		if err != nil {
			s.log.Debug("registry still failing", zap.Int("failures", s.failures+1), zap.Error(err))
		}
	case kind == "":
		s.log.Info("registry reachable again; polling resumed", zap.Int("failures", s.failures))
	case kind == gone:
		s.log.Warn("tag not found; keeping the last good version and polling at the normal interval",
			zap.String("state", kind), zap.Error(err))
	default:
		s.log.Warn("registry failing; keeping the last good version and backing off",
			zap.String("state", kind), zap.Error(err))
	}
	s.failing = kind
	// A deleted tag is gone, not down: the registry answered, and the next
	// push should be seen within one poll interval.
	if err == nil || kind == gone {
		s.failures = 0
	} else {
		s.failures++
	}
}

// gone is the failure kind of a reference the registry does not have.
const gone = "not-found"

// failureKind names a failure for state-change logging; "" is no failure.
func failureKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ociartifact.ErrNotFound):
		return gone
	case errors.Is(err, ociartifact.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ociartifact.ErrInsecure):
		return "insecure"
	}
	return "unreachable"
}

// delay is the wait before the next poll: the poll interval, doubled for
// each consecutive failure, capped at MaxBackoff.
func (s *Source) delay() time.Duration {
	return backoff(s.cfg.PollInterval, s.cfg.MaxBackoff, s.failures)
}

func backoff(interval, maxDelay time.Duration, failures int) time.Duration {
	d := interval
	for i := 0; i < failures && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

func (s *Source) send(ctx context.Context, ev types.Event) {
	select {
	case s.out <- ev:
	case <-ctx.Done():
	}
}
