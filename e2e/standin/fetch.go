package standin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

const (
	// defaultFetchBackoffMax caps Envoy's remote code backoff (from 1 s,
	// DefaultFetchBackoff, to 10 s).
	defaultFetchBackoffMax = 10 * time.Second
	// maxModuleBytes bounds one fetched module.
	maxModuleBytes = 256 << 20
)

// fetch gets remote code through the cluster http_uri names, checks the
// sha256 and caches the bytes by digest. With retry it retries as the
// resource's retry_policy says (Envoy's default: once, after 1 s); without,
// it makes one attempt, as Envoy's fetch after a cache-miss NACK does. A
// digest mismatch is a failed attempt like any other.
func (n *node) fetch(ctx context.Context, remote *core.RemoteDataSource, retry bool) ([]byte, error) {
	want := strings.ToLower(remote.GetSha256())
	retries := DefaultFetchRetries
	base, maxDelay := DefaultFetchBackoff, defaultFetchBackoffMax
	if !retry {
		retries = 0
	} else if rp := remote.GetRetryPolicy(); rp != nil {
		if nr := rp.GetNumRetries(); nr != nil {
			retries = int(nr.GetValue())
		}
		if bo := rp.GetRetryBackOff(); bo != nil {
			base = bo.GetBaseInterval().AsDuration()
			if bo.GetMaxInterval() != nil {
				maxDelay = bo.GetMaxInterval().AsDuration()
			}
		}
	}
	if n.cfg.FetchBackoff > 0 {
		base, maxDelay = n.cfg.FetchBackoff, 10*n.cfg.FetchBackoff
	}
	var err error
	delay := base
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			wait := delay/2 + time.Duration(n.draw(uint64(delay/2)+1))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			delay = min(2*delay, maxDelay)
		}
		var b []byte
		b, err = n.get(ctx, remote.GetHttpUri())
		if err != nil {
			continue
		}
		if got := string(wftypes.DigestOf(b)); got != want {
			err = fmt.Errorf("%w: %s: got %s, want %s", ErrDigestMismatch, remote.GetHttpUri().GetUri(), got, want)
			continue
		}
		n.mu.Lock()
		n.codeCache[want] = b
		n.mu.Unlock()
		return b, nil
	}
	return nil, err
}

// get does one GET of an http_uri through its cluster: the connection goes
// to a cluster endpoint, the URI's host is the Host header.
func (n *node) get(ctx context.Context, hu *core.HttpUri) ([]byte, error) {
	u, err := url.Parse(hu.GetUri())
	if err != nil {
		return nil, fmt.Errorf("wasm: fetch %s: %w", hu.GetUri(), err)
	}
	n.mu.RLock()
	c := n.clusters[hu.GetCluster()]
	n.mu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("wasm: fetch %s: unknown cluster %q", hu.GetUri(), hu.GetCluster())
	}
	ep, ok := c.pick()
	if !ok {
		return nil, fmt.Errorf("wasm: fetch %s: cluster %s has no endpoints", hu.GetUri(), hu.GetCluster())
	}
	timeout := DefaultFetchTimeout
	if t := hu.GetTimeout(); t != nil && t.AsDuration() > 0 {
		timeout = t.AsDuration()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := *u
	target.Scheme, target.Host = "http", ep
	if c.proto.GetTransportSocket().GetName() == "envoy.transport_sockets.tls" {
		// SIMPLIFICATION: Envoy follows the cluster's UpstreamTlsContext
		// (its SNI, client certificate and validation context); the
		// stand-in dials TLS with its node's files (Config.TLS), checking
		// the server certificate against the endpoint's address.
		target.Scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("wasm: fetch %s: %w", hu.GetUri(), err)
	}
	req.Host = u.Host
	resp, err := n.upstream.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("wasm: fetch %s: %w", hu.GetUri(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("wasm: fetch %s: status %d", hu.GetUri(), resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxModuleBytes))
	if err != nil {
		return nil, fmt.Errorf("wasm: fetch %s: %w", hu.GetUri(), err)
	}
	return b, nil
}

// startPrefetch fills the code cache in the background after a NACK for a
// cache miss (nack_on_code_cache_miss), once per digest at a time, with no
// retries.
func (n *node) startPrefetch(remote *core.RemoteDataSource) {
	digest := strings.ToLower(remote.GetSha256())
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fetching[digest] {
		return
	}
	n.fetching[digest] = true
	n.goBackground(func() {
		if _, err := n.fetch(n.ctx, remote, false); err != nil {
			n.log.Warn("wasm prefetch failed", zap.String("digest", digest), zap.Error(err))
		}
		n.mu.Lock()
		delete(n.fetching, digest)
		n.mu.Unlock()
	})
}
