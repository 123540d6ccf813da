package scale

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/loadgen"
	"github.com/wasmfleet/wasmfleet/internal/certgen"
)

// ChildEnv is the environment variable that turns a re-executed binary into
// a fleet: it holds the FleetSpec as JSON. A test binary's TestMain checks
// it and, when set, exits with ChildMain's code instead of running tests.
const ChildEnv = "WASMFLEET_SCALE_FLEET"

// Child process bounds.
const (
	// defaultWaitTimeout bounds a WaitAcked whose context has no deadline.
	defaultWaitTimeout = 5 * time.Minute
	// stopGrace is how long a child may take to disconnect its nodes and
	// exit after its input closes, before it is killed.
	stopGrace = 10 * time.Second
)

// FleetSpec is the loadgen fleet a child process runs.
type FleetSpec struct {
	XDSAddr      string `json:"xds_addr"`
	N            int    `json:"n"`
	NodesPerConn int    `json:"nodes_per_conn"`
	NodePrefix   string `json:"node_prefix,omitempty"`
	// TLSCADir, when set, holds ca.crt and ca.key (as `wasmfleet certs`
	// writes them): each node gets a client certificate for its SPIFFE ID
	// (spiffe://wasmfleet.local/node/ID), issued in memory, and connects
	// over mTLS, trusting ca.crt.
	TLSCADir string `json:"tls_ca_dir,omitempty"`
	// Delta makes the nodes speak delta xDS instead of state of the world.
	Delta bool `json:"delta,omitempty"`
}

// Summary is the child's answer to WaitAcked: when the version reached the
// fleet, and the CPU the child has used since it started.
type Summary struct {
	Version string `json:"version"`
	// Acked nodes have the version; Missing nodes did not get it in time.
	Acked, Missing int
	// First and Last are arrival times over the nodes that have it (wall
	// clock, comparable with the parent's: same machine).
	First, Last time.Time
	// CPU is the child's user plus system time so far (cumulative).
	CPU time.Duration
	// ECDSBytes is the encoded size of every ECDS response the fleet's
	// nodes received so far, summed over nodes (cumulative).
	ECDSBytes int64 `json:"ecds_bytes"`
	// Digests are the modules the version runs, as the nodes found them
	// (inline code hashed), sorted.
	Digests []types.Digest `json:"digests"`
}

// ErrChild is wrapped by every error about the child process itself (it
// exited, could not start, or said something unreadable).
var ErrChild = errors.New("scale: fleet child")

// request and reply are the lines exchanged over the child's stdin and
// stdout, one JSON object per line.
type request struct {
	ID      int           `json:"id"`
	Version string        `json:"version"`
	Timeout time.Duration `json:"timeout"`
}

type reply struct {
	ID      int     `json:"id"`
	Summary Summary `json:"summary"`
	Err     string  `json:"err,omitempty"`
}

// ChildMain runs the fleet ChildEnv describes until its stdin closes or it
// is interrupted, answering WaitAcked requests, and returns the exit code.
func ChildMain() int {
	var spec FleetSpec
	if err := json.Unmarshal([]byte(os.Getenv(ChildEnv)), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "scale: fleet child: %s: %v\n", ChildEnv, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ServeFleet(ctx, spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// NodeTLS returns a function that issues a node a client certificate for
// its SPIFFE ID from the CA in dir (ca.crt, ca.key) and returns its TLS
// client config for the control plane at addr.
func NodeTLS(dir, addr string) (func(nodeID string) (*tls.Config, error), error) {
	ca, err := certgen.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	return func(id string) (*tls.Config, error) {
		p, err := ca.Node(id, certgen.SPIFFEID("wasmfleet.local", id), nil, time.Hour)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: host}, nil
	}, nil
}

// ServeFleet runs the fleet spec describes and answers requests read from
// in on out until in ends or ctx does. It is the child side of RemoteFleet,
// exported so it can be tested without a process.
func ServeFleet(ctx context.Context, spec FleetSpec, in io.Reader, out io.Writer) error {
	if _, err := RaiseFDLimit(); err != nil {
		return err
	}
	lc := loadgen.Config{
		XDSAddr: spec.XDSAddr, N: spec.N, NodesPerConn: spec.NodesPerConn, NodePrefix: spec.NodePrefix,
		Delta: spec.Delta,
	}
	if spec.TLSCADir != "" {
		tlsFor, err := NodeTLS(spec.TLSCADir, spec.XDSAddr)
		if err != nil {
			return err
		}
		lc.TLS = tlsFor
	}
	f, err := loadgen.New(lc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fleetErr := make(chan error, 1)
	go func() { fleetErr <- f.Start(ctx) }()

	reqs := make(chan request)
	readErr := make(chan error, 1)
	go func() {
		defer close(reqs)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			var r request
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				readErr <- fmt.Errorf("%w: request %q: %w", ErrChild, sc.Text(), err)
				return
			}
			select {
			case reqs <- r:
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()

	enc := json.NewEncoder(out)
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case r, ok := <-reqs:
			if !ok {
				serveErr = <-readErr
				break loop
			}
			if err := enc.Encode(answer(ctx, f, r)); err != nil {
				serveErr = fmt.Errorf("%w: writing reply: %w", ErrChild, err)
				break loop
			}
		}
	}
	cancel()
	return errors.Join(serveErr, <-fleetErr)
}

// answer waits for r's version and summarises the arrivals.
func answer(ctx context.Context, f *loadgen.Fleet, r request) reply {
	if r.Timeout <= 0 {
		r.Timeout = defaultWaitTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	at, err := f.WaitAcked(wctx, r.Version)
	out := reply{ID: r.ID, Summary: summarize(r.Version, at, len(f.NodeIDs()))}
	out.Summary.ECDSBytes = f.ECDSBytes()
	out.Summary.Digests = f.Digests(r.Version)
	if err != nil {
		out.Err = err.Error()
	}
	cpu, err := CPUTime()
	if err != nil && out.Err == "" {
		out.Err = err.Error()
	}
	out.Summary.CPU = cpu
	return out
}

func summarize(version string, at map[string]time.Time, n int) Summary {
	s := Summary{Version: version, Acked: len(at), Missing: n - len(at)}
	if len(at) == 0 {
		return s
	}
	times := slices.Collect(maps.Values(at))
	s.First, s.Last = slices.MinFunc(times, time.Time.Compare), slices.MaxFunc(times, time.Time.Compare)
	return s
}

// RemoteConfig says which fleet to run. The child is this process's own
// executable, which must call ChildMain when ChildEnv is set: a test binary
// whose TestMain does.
type RemoteConfig struct {
	Fleet FleetSpec
	// Stderr receives the child's stderr; nil discards it.
	Stderr io.Writer
}

// RemoteFleet is a loadgen fleet in a child process. Start runs the child;
// WaitAcked may be called from any goroutine, before or after Start, and
// is served one call at a time.
type RemoteFleet struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  io.ReadCloser
	replies chan reply
	exited  chan struct{} // closed when the child's stdout ends
	stopped chan struct{} // closed when Start stops waiting for replies

	mu     sync.Mutex // one request in flight
	nextID int
}

// NewRemoteFleet prepares the child process; Start runs it.
func NewRemoteFleet(cfg RemoteConfig) (*RemoteFleet, error) {
	spec, err := json.Marshal(cfg.Fleet)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	// -test.run=^$: should the binary's TestMain not become a fleet, it
	// runs no tests and exits, which Start reports, instead of running
	// the whole suite as a child.
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(spec))
	cmd.Stderr = cfg.Stderr
	r := &RemoteFleet{cmd: cmd, replies: make(chan reply), exited: make(chan struct{}), stopped: make(chan struct{})}
	if r.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	if r.stdout, err = cmd.StdoutPipe(); err != nil {
		r.stdin.Close()
		return nil, fmt.Errorf("%w: %w", ErrChild, err)
	}
	return r, nil
}

// Start runs the child until ctx ends, then closes its input so it
// disconnects its nodes and exits (it is killed if it takes longer than
// stopGrace). It returns an error if the child could not start, exited
// before ctx ended, or exited with a failure.
func (r *RemoteFleet) Start(ctx context.Context) error {
	if err := r.cmd.Start(); err != nil {
		r.stdin.Close()
		close(r.exited)
		return fmt.Errorf("%w: %w", ErrChild, err)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(r.exited)
		readErr <- r.read()
	}()
	var early error
	select {
	case <-ctx.Done():
		close(r.stopped)
		r.stdin.Close()
		timer := time.NewTimer(stopGrace)
		select {
		case <-r.exited:
		case <-timer.C:
			r.cmd.Process.Kill()
			<-r.exited
		}
		timer.Stop()
	case <-r.exited:
		close(r.stopped)
		r.stdin.Close()
		early = fmt.Errorf("%w: exited while the fleet was in use", ErrChild)
	}
	err := errors.Join(early, <-readErr)
	if werr := r.cmd.Wait(); werr != nil {
		err = errors.Join(err, fmt.Errorf("%w: %w", ErrChild, werr))
	}
	return err
}

// read delivers the child's replies until its stdout ends; once Start has
// stopped, replies are dropped so the child's output is still read to its end.
func (r *RemoteFleet) read() error {
	sc := bufio.NewScanner(r.stdout)
	for sc.Scan() {
		var rep reply
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			// Drain, so the child never blocks on a full pipe.
			io.Copy(io.Discard, r.stdout)
			return fmt.Errorf("%w: reply %q: %w", ErrChild, sc.Text(), err)
		}
		select {
		case r.replies <- rep:
		case <-r.stopped:
		}
	}
	return sc.Err()
}

// WaitAcked asks the child to wait until every node has accepted ECDS
// version (up to ctx's deadline) and returns its summary. On a timeout the
// summary still counts the nodes that have it, and the error says how many
// lack it.
func (r *RemoteFleet) WaitAcked(ctx context.Context, version string) (Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	req := request{ID: r.nextID, Version: version, Timeout: defaultWaitTimeout}
	if dl, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(dl)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrChild, err)
	}
	if _, err := r.stdin.Write(append(b, '\n')); err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrChild, err)
	}
	for {
		select {
		case rep := <-r.replies:
			if rep.ID != req.ID {
				continue // the late answer to a request whose caller gave up
			}
			if rep.Err != "" {
				return rep.Summary, fmt.Errorf("scale: fleet: %s", rep.Err)
			}
			return rep.Summary, nil
		case <-r.exited:
			return Summary{}, fmt.Errorf("%w: exited before answering", ErrChild)
		case <-ctx.Done():
			return Summary{}, fmt.Errorf("scale: fleet: version %s: %w", version, ctx.Err())
		}
	}
}
