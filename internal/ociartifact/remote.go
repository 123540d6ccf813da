package ociartifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// MaxManifestBytes bounds an OCI manifest. The distribution spec asks
// registries to accept manifests up to 4 MiB; a module artifact's is under
// 1 KiB.
const MaxManifestBytes = 4 << 20

// ErrNotFound: the registry has no such tag or manifest (HTTP 404).
var ErrNotFound = errors.New("not found in the registry")

// ErrUnauthorized: the registry refused the credentials, or there were none
// (HTTP 401 or 403).
var ErrUnauthorized = errors.New("registry refused access")

// ErrInsecure: the registry would be reached over plain HTTP and
// Remote.Insecure does not allow it.
var ErrInsecure = errors.New("plain http to the registry is not allowed")

// Remote says how to reach a registry. The zero value uses HTTPS with
// credentials from the Docker config file and the usual credential helpers.
type Remote struct {
	// Insecure allows plain HTTP to this registry.
	Insecure bool
	// Keychain finds credentials; nil means authn.DefaultKeychain (the
	// Docker config file in $DOCKER_CONFIG or ~/.docker, and its helpers).
	Keychain authn.Keychain

	// puller, set by Reusing, holds what go-containerregistry learned about
	// each repository: the scheme, the credentials and the auth token.
	puller *remote.Puller
}

// Reusing returns a copy of r whose calls share, per repository, the
// registry's API check (GET /v2/), the credentials and the auth token,
// instead of doing them again for every call: a poller's steady round is
// then its HEAD requests only. The credentials are read once, so a caller
// that keeps the copy should take a new one after a failure. Safe for
// concurrent use.
func (r Remote) Reusing() (Remote, error) {
	r.puller = nil
	p, err := remote.NewPuller(r.options(context.Background())...)
	if err != nil {
		return Remote{}, fmt.Errorf("ociartifact: %w", err)
	}
	r.puller = p
	return r, nil
}

// options turns r into go-containerregistry options. Its own retries are
// off: callers that poll decide how to back off.
func (r Remote) options(ctx context.Context) []remote.Option {
	keychain := r.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithTransport(&guard{base: remote.DefaultTransport, insecure: r.Insecure}),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	if r.puller != nil {
		// The puller was made from the same options; only ctx is per call.
		opts = append(opts, remote.Reuse(r.puller))
	}
	return opts
}

// guard refuses plain HTTP unless allowed and cuts manifest and referrers
// listing bodies off past MaxManifestBytes, whatever the registry said the
// size was.
type guard struct {
	base     http.RoundTripper
	insecure bool
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure {
		return nil, fmt.Errorf("%w: %s (allow it for this registry to use it)", ErrInsecure, req.URL.Host)
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !(strings.Contains(req.URL.Path, "/manifests/") || strings.Contains(req.URL.Path, "/referrers/")) {
		return resp, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: MaxManifestBytes}
	return resp, nil
}

// cappedBody fails a read that goes past its limit instead of returning a
// silently truncated manifest.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, fmt.Errorf("%w: manifest over %d bytes", ErrTooLarge, MaxManifestBytes)
	}
	return n, err
}

func (c *cappedBody) Close() error { return c.rc.Close() }

// registryError adds ErrNotFound or ErrUnauthorized to an error the
// registry answered with, so callers can tell them apart with errors.Is.
func registryError(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return err
}
