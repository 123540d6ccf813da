package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// NodePlaceholder stands for the node id in a NodeIdentity template.
const NodePlaceholder = "{node}"

// DefaultNodeIdentity is the identity a node's certificate must carry by
// default: a SPIFFE ID in a URI SAN, as Istio and SPIRE issue them.
const DefaultNodeIdentity = "spiffe://wasmfleet.local/node/" + NodePlaceholder

// Errors of identity checks and templates.
var (
	ErrTemplate      = errors.New("node identity template")
	ErrNoCertificate = errors.New("no verified client certificate")
	ErrNodeMismatch  = errors.New("node id does not match the client certificate")
)

// NodeIdentity says which SAN of a client certificate names a node: a URI SAN
// when the template is a URI (it has "://"), otherwise a DNS SAN. The node id
// replaces {node}; the SAN must equal the result exactly (DNS names ignoring
// case). The zero value is unusable; use ParseNodeIdentity.
type NodeIdentity struct {
	prefix, suffix string
	uri            bool
}

// ParseNodeIdentity reads a template such as
// "spiffe://example.org/node/{node}" or "{node}.nodes.example.org".
func ParseNodeIdentity(tmpl string) (NodeIdentity, error) {
	if strings.Count(tmpl, NodePlaceholder) != 1 {
		return NodeIdentity{}, fmt.Errorf("%w: %q must contain %s exactly once", ErrTemplate, tmpl, NodePlaceholder)
	}
	prefix, suffix, _ := strings.Cut(tmpl, NodePlaceholder)
	n := NodeIdentity{prefix: prefix, suffix: suffix, uri: strings.Contains(tmpl, "://")}
	if n.uri {
		u, err := url.Parse(n.Want("x"))
		if err != nil || u.Scheme == "" || u.Host == "" {
			return NodeIdentity{}, fmt.Errorf("%w: %q is not a URI with a host", ErrTemplate, tmpl)
		}
	} else if strings.ContainsAny(tmpl, "/:@ ") {
		return NodeIdentity{}, fmt.Errorf("%w: %q is neither a URI nor a DNS name", ErrTemplate, tmpl)
	}
	return n, nil
}

// Want is the SAN a certificate must carry for nodeID.
func (n NodeIdentity) Want(nodeID string) string { return n.prefix + nodeID + n.suffix }

// Check returns nil if cert names nodeID, else an error wrapping
// ErrNodeMismatch that says what the certificate names instead.
func (n NodeIdentity) Check(cert *x509.Certificate, nodeID string) error {
	if cert == nil {
		return ErrNoCertificate
	}
	want := n.Want(nodeID)
	if nodeID != "" {
		if n.uri {
			for _, u := range cert.URIs {
				if u.String() == want {
					return nil
				}
			}
		} else {
			for _, d := range cert.DNSNames {
				if strings.EqualFold(d, want) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w: node %q needs %s, the certificate names %s", ErrNodeMismatch, nodeID, want, Names(cert))
}

// Names lists a certificate's URI and DNS SANs, for messages and logs.
func Names(cert *x509.Certificate) string {
	var out []string
	for _, u := range cert.URIs {
		out = append(out, u.String())
	}
	out = append(out, cert.DNSNames...)
	if len(out) == 0 {
		return "no URI or DNS name"
	}
	return strings.Join(out, ", ")
}

// PeerCertificate returns the verified client certificate of the gRPC peer
// in ctx.
func PeerCertificate(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, ErrNoCertificate
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, ErrNoCertificate
	}
	return VerifiedLeaf(info.State)
}

// VerifiedLeaf returns the client certificate of a connection if it was
// verified against the client CA.
func VerifiedLeaf(cs tls.ConnectionState) (*x509.Certificate, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil, ErrNoCertificate
	}
	return cs.VerifiedChains[0][0], nil
}
