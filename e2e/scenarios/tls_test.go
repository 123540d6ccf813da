package scenarios

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/internal/certgen"
)

// tlsLab is a lab PKI in a temp dir: the CA the control plane trusts, its
// server certificate for 127.0.0.1, and node certificates on demand.
type tlsLab struct {
	t   testing.TB
	dir string
	ca  *certgen.CA
}

func newTLSLab(t testing.TB) *tlsLab {
	t.Helper()
	l := &tlsLab{t: t, dir: t.TempDir()}
	ca, err := certgen.NewCA("scenarios CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l.ca = ca
	if err := certgen.WriteFile(l.path("ca.crt"), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server([]string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Write(l.dir, "server"); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *tlsLab) path(name string) string { return filepath.Join(l.dir, name) }

// serverTLS is the control plane's tls section, and the Envoy side of the
// module cluster (paths the stand-in does not read; see its SIMPLIFICATION).
func (l *tlsLab) configure(c *config.Config) {
	c.TLS = config.TLS{
		CertFile: l.path("server.crt"), KeyFile: l.path("server.key"), ClientCAFile: l.path("ca.crt"),
		NodeIdentity: config.DefaultNodeIdentity,
	}
	c.Managed.ModulesTLS = &config.EnvoyTLS{CertFile: "/etc/envoy/tls/node.crt", KeyFile: "/etc/envoy/tls/node.key", CAFile: "/etc/envoy/tls/ca.crt"}
}

// node issues (from ca) a certificate naming the SPIFFE ID of certID and
// returns the files a node uses to connect with it.
func (l *tlsLab) node(ca *certgen.CA, certID string) *dataplane.TLSFiles {
	l.t.Helper()
	p, err := ca.Node(certID, certgen.SPIFFEID("wasmfleet.local", certID), nil, time.Hour)
	if err != nil {
		l.t.Fatal(err)
	}
	dir := l.t.TempDir()
	c, k, err := p.Write(dir, "node")
	if err != nil {
		l.t.Fatal(err)
	}
	return &dataplane.TLSFiles{Cert: c, Key: k, CA: l.path("ca.crt")}
}

// addTLSNode is addNode with TLS files; wait says whether to wait for the
// node's listener (a refused node never gets one).
func (f *testFleet) addTLSNode(id string, files *dataplane.TLSFiles, wait bool) *member {
	f.t.Helper()
	m := f.startNode(id, files, nodeOptions{})
	if wait {
		f.await("node "+id+" serves "+listenerName, func() bool { return m.addr() != "" })
	}
	return m
}

// TestTLSRefusals runs a control plane with mTLS and sends it the clients
// issue 11 names: each claims node id edge-1, none may get a resource or be
// recorded as edge-1, and a node with its own certificate beside them is
// served. The first two fail in the TLS handshake, the third on its node id
// (PermissionDenied), the last never speaks TLS.
func TestTLSRefusals(t *testing.T) {
	lab := newTLSLab(t)
	f := newFleet(t, lab.configure)
	if f.driver.name != "standin" {
		t.Skip("the refusals are observed through the stand-in's stream errors")
	}
	// A node with its own certificate is served (so the refusals below are
	// not a control plane that serves nobody).
	f.addTLSNode("edge-2", lab.node(lab.ca, "edge-2"), true)

	forger, err := certgen.NewCA("forged CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noCert := &dataplane.TLSFiles{CA: lab.path("ca.crt")}
	tests := []struct {
		name  string
		files *dataplane.TLSFiles
		// want is in the error that ended the node's stream.
		want string
	}{
		// edge-1's SPIFFE ID, signed by a CA the control plane does not trust.
		{name: "forged node id", files: lab.node(forger, "edge-1"), want: "tls"},
		{name: "missing client certificate", files: noCert, want: "tls"},
		// A valid certificate, for edge-2, used to claim edge-1.
		{name: "certificate for another node", files: lab.node(lab.ca, "edge-2"), want: "PermissionDenied"},
		{name: "plaintext client", files: nil, want: "Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := f.addTLSNode("edge-1", tt.files, false)
			defer f.stopNode(m)
			// Two refusals: the node tried, was refused, and tried again.
			var last string
			awaitT(t, "edge-1 refused", func() error {
				st := m.node.Status()
				last = st.StreamError
				if last == "" {
					return errors.New("no stream has ended yet")
				}
				if !strings.Contains(last, tt.want) {
					return fmt.Errorf("stream error %q lacks %q", last, tt.want)
				}
				if st.Streams < 2 && tt.want == "PermissionDenied" {
					return fmt.Errorf("%d streams opened", st.Streams)
				}
				return nil
			})
			t.Logf("edge-1 refused: %s", last)
			st := m.node.Status()
			for typ, ts := range st.Types {
				if ts.Acks+ts.Nacks > 0 {
					t.Errorf("edge-1 received %s (%d ACKs, %d NACKs) over a refused connection", typ, ts.Acks, ts.Nacks)
				}
			}
			if len(st.Extensions) > 0 || m.addr() != "" {
				t.Errorf("edge-1 holds filters %v / a listener %q over a refused connection", st.Extensions, m.addr())
			}
			if ns, ok := nodeStatus(f.status(), "edge-1"); ok {
				t.Errorf("the control plane recorded edge-1: %+v", ns)
			}
		})
	}
	if _, ok := nodeStatus(f.status(), "edge-2"); !ok {
		t.Error("edge-2, with its own certificate, is not in the fleet")
	}
}

// TestTLSModuleServer checks that the module server speaks TLS and wants a
// client certificate from the fleet's CA.
func TestTLSModuleServer(t *testing.T) {
	lab := newTLSLab(t)
	f := newFleet(t, lab.configure)
	url := "https://" + f.cp.addrs.Modules + "/modules/sha256/" + strings.Repeat("0", 64)
	roots := x509.NewCertPool()
	roots.AddCert(lab.ca.Cert)
	get := func(c *http.Client, u string) (int, error) {
		resp, err := c.Get(u)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		}}
	}
	if code, err := get(client(), url); err == nil {
		t.Errorf("without a client certificate: status %d, want a refused handshake", code)
	}
	if code, err := get(adminClient, "http://"+f.cp.addrs.Modules+"/modules/sha256/"+strings.Repeat("0", 64)); err == nil && code != http.StatusBadRequest {
		t.Errorf("plaintext: status %d, want a refusal", code)
	}
	files := lab.node(lab.ca, "edge-1")
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(client(cert), url); err != nil || code != http.StatusNotFound {
		t.Errorf("with a node certificate: %d, %v; want 404 for an unknown digest", code, err)
	}
}

// TestTLSFleet runs a fleet over mTLS end to end: three nodes with their own
// certificates, logging as remote code (fetched from the module server with
// the node's certificate while the listener warms), then auth dropped in and
// enforced on every node.
func TestTLSFleet(t *testing.T) {
	mods := buildModules(t)
	lab := newTLSLab(t)
	f := newFleet(t, func(c *config.Config) {
		lab.configure(c)
		c.Filters = []config.Filter{
			{Name: "auth", Config: authConfig(sharedKey)},
			{Name: "logging", Code: config.CodeRemote, Config: loggingConfig},
		}
	})
	f.writeFile("logging.wasm", mods.logging)
	logging := types.DigestOf(mods.logging)
	f.await("logging admitted", func() bool {
		fs, ok := filterStatus(f.status(), "logging")
		return ok && (fs.Stable == logging || fs.Candidate == logging)
	})
	for i := 1; i <= fleetSize; i++ {
		id := fmt.Sprintf("edge-%d", i)
		f.addTLSNode(id, lab.node(lab.ca, id), true)
	}
	f.await("every node ran logging, fetched over mTLS", func() bool {
		for _, m := range f.members() {
			if !slices.ContainsFunc(mapValues(m.node.Status().Extensions), func(e dataplane.ExtensionStatus) bool {
				return e.Digest == string(logging) && e.Code == dataplane.CodeReady
			}) {
				return false
			}
		}
		return true
	})

	f.writeFile("auth.wasm", mods.auth)
	// Admission's trial run can take longer than awaitTimeout under -race.
	authDigest := types.DigestOf(mods.auth)
	awaitT(t, "auth admitted", func() error {
		if fs, ok := filterStatus(f.status(), "auth"); ok && (fs.Stable == authDigest || fs.Candidate == authDigest) {
			return nil
		}
		return errors.New("not yet")
	}, 2*trialTimeout)
	s := &scenario{f: f, mods: mods}
	f.awaitErr("every node enforcing auth", func() error { return s.authBehaves(false) })
	s.awaitStable("auth", posAuth, types.DigestOf(mods.auth))
	for _, m := range f.members() {
		if a := mustSend(t, m.addr(), "/x", nil); a.status != 401 {
			t.Errorf("%s: no key: %d, want 401", m.id, a.status)
		}
	}
}

// awaitT polls check until it returns nil or the timeout (default
// awaitTimeout) passes, failing t
// (a subtest's own, unlike testFleet.awaitErr) with check's last error.
func awaitT(t *testing.T, what string, check func() error, timeout ...time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), append(timeout, awaitTimeout)[0])
	defer cancel()
	if err := dataplane.AwaitNil(ctx, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
