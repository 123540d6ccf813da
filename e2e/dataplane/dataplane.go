package dataplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Type URLs a node subscribes to, as they appear in Status.
const (
	ClusterType   = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	ListenerType  = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType     = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ExtensionType = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
)

// Config identifies a node and says where its control plane is. Both
// implementations take it (embedded in their own config).
type Config struct {
	// NodeID and Cluster are the node identity sent to the control plane.
	NodeID  string
	Cluster string
	// XDSAddr is the control plane's ADS endpoint, host:port: plaintext
	// gRPC, or TLS when TLS is set.
	XDSAddr string
	// TLS, when set, is the node's client certificate and the CA it trusts
	// the control plane with, as files (what an Envoy bootstrap names in
	// the tls transport socket of its xDS cluster and in managed.modules_tls).
	TLS *TLSFiles
	// ListenAddrs overrides where a listener (by LDS name) binds, e.g.
	// "127.0.0.1:0" so that tests never depend on a fixed port. A listener
	// without an entry binds the address its LDS resource names. A real Envoy
	// cannot honour an override: envoyproc refuses a config that has one.
	ListenAddrs map[string]string
	// Delta makes the node speak delta xDS (an Envoy bootstrap's
	// ads_config.api_type: DELTA_GRPC) instead of state of the world (GRPC).
	Delta bool
}

// TLSFiles are PEM files for mutual TLS to the control plane.
type TLSFiles struct {
	// Cert and Key are the node's client certificate and key. Both empty
	// means no client certificate (a control plane with mTLS refuses it).
	Cert, Key string
	// CA is the bundle the control plane's server certificate must chain to.
	CA string
	// ServerName is the name checked in the server certificate; empty
	// means the host of XDSAddr.
	ServerName string
}

// ClientConfig reads the files into a TLS client config for a connection
// to addr (host:port).
func (t TLSFiles) ClientConfig(addr string) (*tls.Config, error) {
	var certs []tls.Certificate
	if t.Cert != "" || t.Key != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("dataplane: tls: %w", err)
		}
		certs = append(certs, cert)
	}
	ca, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("dataplane: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("dataplane: tls: %s: no CA certificate", t.CA)
	}
	name := t.ServerName
	if name == "" {
		if name, _, err = net.SplitHostPort(addr); err != nil {
			name = addr
		}
	}
	// TLS 1.2 at most, as Envoy's client contexts default to
	// (source/common/tls/context_config_impl.cc,
	// ClientContextConfigImpl::DEFAULT_MAX_VERSION). It also makes a refused
	// client certificate fail the handshake itself: under TLS 1.3 the client
	// finishes first and may see only a broken pipe on its next write.
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, RootCAs: pool, ServerName: name}
	if len(certs) > 0 {
		// Like Envoy, send the configured certificate whatever CAs the
		// server asks for (Go's default would withhold one the server's
		// list does not name, and a forged certificate would never be
		// seen by the server).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return cfg, nil
}

// Errors of Config.Validate.
var (
	ErrNoNodeID  = errors.New("dataplane: node id is required")
	ErrNoXDSAddr = errors.New("dataplane: xds address is required")
)

// Validate reports every missing field at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, ErrNoNodeID)
	}
	if c.XDSAddr == "" {
		errs = append(errs, ErrNoXDSAddr)
	}
	return errors.Join(errs...)
}

// Node is one running data-plane node. Start blocks; every other method may
// be called from any goroutine at any time, also before Start and after it
// returned, and returns a copy the caller owns.
type Node interface {
	// Start runs the node until ctx ends, then stops it (listeners closed,
	// xDS stream ended) and returns nil, or returns the error that kept it
	// from running at all.
	Start(ctx context.Context) error
	// Listeners maps each active listener's LDS name to an address a client
	// on this machine can dial (see DialAddr). A listener appears once it is
	// warm (its routes and filter configs have arrived), as in Envoy.
	Listeners() map[string]string
	// Status is what the node accepted and rejected over xDS.
	Status() Status
	// Logs returns the Wasm log lines emitted so far, oldest first.
	Logs() []LogLine
	// Drains counts listener drains: LDS updates that changed a listener the
	// node was serving (an unchanged listener is not touched).
	Drains() int
	// AdminAddr is the host:port of the node's admin endpoint (Envoy's
	// admin listener), where GET /stats/prometheus shows the metrics its
	// Wasm filters defined; empty when it has none.
	AdminAddr() string
}

// Status is a node's view of its xDS state.
type Status struct {
	// Types is keyed by type URL.
	Types map[string]TypeStatus
	// Extensions is keyed by ECDS resource name.
	Extensions map[string]ExtensionStatus
	// Streams counts the ADS streams opened so far: 1 after the first
	// connect, one more after each reconnect.
	Streams int
	// StreamError is the error that ended the latest ADS stream or kept it
	// from opening (a refused TLS handshake, a PermissionDenied status);
	// empty before any stream ended.
	StreamError string
}

// TypeStatus is the ACK/NACK state of one type URL.
type TypeStatus struct {
	// Version is the version_info last accepted (sent back in ACKs and NACKs).
	Version string
	// Rejected is the version_info of the last rejected response and Error
	// the error_detail sent with it; both are empty when the latest response
	// was accepted.
	Rejected string
	Error    string
	// Acks and Nacks count the responses accepted and rejected.
	Acks, Nacks int
}

// CodeState says whether a Wasm filter has a running VM.
type CodeState string

const (
	// CodeNone: the resource is not a Wasm filter (e.g. the no-op placeholder).
	CodeNone CodeState = ""
	// CodePending: remote code is being fetched; the filter has no VM yet.
	CodePending CodeState = "pending"
	// CodeReady: the filter runs in a loaded VM.
	CodeReady CodeState = "ready"
	// CodeFailed: remote code could not be fetched or loaded; the filter has
	// no VM and follows its failure_policy.
	CodeFailed CodeState = "failed"
	// CodeNotFetched: uncached remote code replaced the config of a filter
	// on a listener that was already serving. Envoy accepts such an update
	// but never starts the fetch (its init target joins a listener init
	// manager that has finished), so the filter has no VM and is skipped
	// whatever its failure_policy says.
	CodeNotFetched CodeState = "not-fetched"
)

// ExtensionStatus is the state of one ECDS resource (a filter config slot).
type ExtensionStatus struct {
	// Version is the version_info of the response whose config the slot
	// runs. It can lag the type's ACKed version: Envoy ACKs a re-sent config
	// identical to the last one it received without building it, even when
	// that one was rejected, and keeps running the config before it.
	Version string
	// Error says why the latest update to this resource was rejected; empty
	// when it was accepted. A rejected update leaves the previous config in place.
	Error string
	// Type is the type URL of the config inside the TypedExtensionConfig.
	Type string
	// Digest is the sha256 of the Wasm code, when the config is a Wasm filter.
	Digest string
	Code   CodeState
	// CodeError says why the code failed to fetch or load (CodeFailed) or
	// was not fetched (CodeNotFetched).
	CodeError string
}

// LogLine is one line a Wasm filter logged.
type LogLine struct {
	// Filter is the ECDS resource (slot) the filter instance runs in.
	Filter string
	// Plugin is the plugin name from the Wasm config.
	Plugin  string
	Level   string
	Message string
}

// DialAddr turns a bound address into one a local client can dial: an
// unspecified host (0.0.0.0, ::, empty) becomes the loopback of its family.
func DialAddr(bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// Await polls cond every few milliseconds until it is true or ctx ends
// (then it returns ctx's error). Scenarios use it instead of sleeping.
func Await(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// AwaitNil polls check as Await polls a condition, until it returns nil;
// when ctx ends first, the error carries check's last error, which says
// what was still missing.
func AwaitNil(ctx context.Context, check func() error) error {
	var last error
	if err := Await(ctx, func() bool {
		last = check()
		return last == nil
	}); err != nil {
		return fmt.Errorf("%w: %v", err, last)
	}
	return nil
}
