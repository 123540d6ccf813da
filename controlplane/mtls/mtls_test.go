package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/internal/certgen"
)

func TestNodeIdentity(t *testing.T) {
	ca, err := certgen.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(uri string, dns ...string) *x509.Certificate {
		p, err := ca.Node("n", uri, dns, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	tests := []struct {
		name     string
		template string
		cert     *x509.Certificate
		node     string
		wantErr  error
	}{
		{name: "spiffe match", template: DefaultNodeIdentity, cert: leaf(certgen.SPIFFEID("wasmfleet.local", "edge-1")), node: "edge-1"},
		{name: "spiffe other node", template: DefaultNodeIdentity, cert: leaf(certgen.SPIFFEID("wasmfleet.local", "edge-2")), node: "edge-1", wantErr: ErrNodeMismatch},
		{name: "spiffe other trust domain", template: DefaultNodeIdentity, cert: leaf(certgen.SPIFFEID("evil.example", "edge-1")), node: "edge-1", wantErr: ErrNodeMismatch},
		{name: "spiffe prefix is not enough", template: DefaultNodeIdentity, cert: leaf(certgen.SPIFFEID("wasmfleet.local", "edge-10")), node: "edge-1", wantErr: ErrNodeMismatch},
		{name: "empty node id", template: DefaultNodeIdentity, cert: leaf(certgen.SPIFFEID("wasmfleet.local", "")), node: "", wantErr: ErrNodeMismatch},
		{name: "dns match ignores case", template: "{node}.nodes.example.org", cert: leaf("", "Edge-1.nodes.example.org"), node: "edge-1"},
		{name: "dns template ignores uri", template: "{node}.nodes.example.org", cert: leaf("spiffe://edge-1.nodes.example.org"), node: "edge-1", wantErr: ErrNodeMismatch},
		{name: "uri template ignores dns", template: DefaultNodeIdentity, cert: leaf("", "spiffe://wasmfleet.local/node/edge-1"), node: "edge-1", wantErr: ErrNodeMismatch},
		{name: "no certificate", template: DefaultNodeIdentity, node: "edge-1", wantErr: ErrNoCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseNodeIdentity(tt.template)
			if err != nil {
				t.Fatal(err)
			}
			if err := id.Check(tt.cert, tt.node); !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseNodeIdentityRefuses(t *testing.T) {
	for _, tmpl := range []string{"", "spiffe://x/node", "{node}{node}", "spiffe:///node/{node}", "a/{node}"} {
		if _, err := ParseNodeIdentity(tmpl); !errors.Is(err, ErrTemplate) {
			t.Errorf("ParseNodeIdentity(%q) = %v, want ErrTemplate", tmpl, err)
		}
	}
}

// lab writes a CA, a server certificate and a node certificate to dir.
type lab struct {
	dir         string
	ca          *certgen.CA
	files       Files
	serverRoots *x509.CertPool
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{dir: t.TempDir()}
	l.files = Files{Cert: filepath.Join(l.dir, "server.crt"), Key: filepath.Join(l.dir, "server.key"), ClientCA: filepath.Join(l.dir, "ca.crt")}
	l.rotate(t)
	return l
}

// rotate replaces the CA and every certificate, as a rotation of the whole
// PKI does, and returns a node certificate from the new CA.
func (l *lab) rotate(t *testing.T) tls.Certificate {
	t.Helper()
	ca, err := certgen.NewCA("lab CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Write(l.dir, "server"); err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteFile(l.files.ClientCA, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	node, err := ca.Node("edge-1", certgen.SPIFFEID("wasmfleet.local", "edge-1"), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(node.CertPEM, node.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l.ca = ca
	l.serverRoots = x509.NewCertPool()
	l.serverRoots.AddCert(ca.Cert)
	return cert
}

// handshake dials srv with cert, trusting roots, and returns the serial of
// the server's certificate.
func handshake(addr string, cert *tls.Certificate, roots *x509.CertPool) (string, error) {
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3 clients learn of a refused certificate on their first read.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// serve echoes four bytes per connection over TLS from r until the test ends.
func serve(t *testing.T, r *Reloader) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4)
				if _, err := c.Read(buf); err == nil {
					c.Write(buf)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestRotation replaces the server certificate and the client CA on disk
// under a running listener: the next handshake uses the new ones without a
// restart, a node certificate from the old CA is refused, and a broken
// rotation keeps the last good set.
func TestRotation(t *testing.T) {
	l := newLab(t)
	oldRoots := l.serverRoots
	node, err := l.ca.Node("edge-1", certgen.SPIFFEID("wasmfleet.local", "edge-1"), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oldNode, err := tls.X509KeyPair(node.CertPEM, node.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(l.files, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r)

	before, err := handshake(addr, &oldNode, oldRoots)
	if err != nil {
		t.Fatalf("handshake before rotation: %v", err)
	}
	if _, err := handshake(addr, nil, oldRoots); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}

	newNode := l.rotate(t)
	after, err := handshake(addr, &newNode, l.serverRoots)
	if err != nil {
		t.Fatalf("handshake after rotation: %v", err)
	}
	if after == before {
		t.Fatal("the server still presents the certificate from before the rotation")
	}
	if _, err := handshake(addr, &oldNode, l.serverRoots); err == nil {
		t.Fatal("a node certificate from the replaced CA was accepted after rotation")
	}

	// A half-done rotation (a key that does not match the certificate)
	// keeps serving the last good set.
	other, err := l.ca.Server([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.files.Key, other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if kept, err := handshake(addr, &newNode, l.serverRoots); err != nil || kept != after {
		t.Fatalf("after a broken rotation: serial %s, %v; want the last good %s", kept, err, after)
	}
}

func TestNewReloaderRefusesUnusableFiles(t *testing.T) {
	l := newLab(t)
	bad := l.files
	bad.ClientCA = l.files.Key
	if _, err := NewReloader(bad, nil); !errors.Is(err, ErrNoCA) {
		t.Fatalf("NewReloader with a key as CA = %v, want ErrNoCA", err)
	}
	bad = l.files
	bad.Cert = filepath.Join(l.dir, "missing.crt")
	if _, err := NewReloader(bad, nil); err == nil {
		t.Fatal("NewReloader with a missing certificate succeeded")
	}
}
