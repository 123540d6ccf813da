package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/standin"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

// listenFlag collects -listen name=host:port overrides.
type listenFlag map[string]string

func (l listenFlag) String() string { return fmt.Sprint(map[string]string(l)) }

func (l listenFlag) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" || addr == "" {
		return fmt.Errorf("want name=host:port, got %q", v)
	}
	l[name] = addr
	return nil
}

func run() error {
	listen := listenFlag{}
	cfg := standin.Config{}
	flag.StringVar(&cfg.XDSAddr, "xds", "127.0.0.1:18000", "control plane ADS address")
	flag.StringVar(&cfg.NodeID, "node", "standin-1", "node id")
	flag.StringVar(&cfg.Cluster, "cluster", "standin", "node cluster")
	flag.Var(listen, "listen", "bind listener `name=host:port` instead of its LDS address (repeatable)")
	flag.BoolVar(&cfg.Interpreter, "interpreter", false, "run Wasm in wazero's interpreter")
	flag.BoolVar(&cfg.Delta, "delta", false, "speak delta xDS, as Envoy with api_type: DELTA_GRPC (default: state of the world, GRPC)")
	flag.StringVar(&cfg.AdminAddr, "admin", "", "serve the filters' metrics at http://`host:port`/stats/prometheus, as Envoy's admin does")
	flag.StringVar(&cfg.WasmLogLevel, "log-level", "info", "print the filters' log lines at this `level` and above (trace, debug, info, warn, error, critical)")
	echo := flag.Bool("echo", false, "answer cluster \""+echoCluster+"\" with a built-in echo upstream on a free loopback port")
	flag.Parse()
	cfg.ListenAddrs = listen
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Log = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *echo {
		addr, err := serveEcho(ctx)
		if err != nil {
			return err
		}
		cfg.ClusterAddrs = map[string]string{echoCluster: addr}
		log.Info("echo upstream", zap.String("cluster", echoCluster), zap.String("addr", addr))
	}
	n, err := standin.New(cfg)
	if err != nil {
		return err
	}
	go report(ctx, n)
	return n.Start(ctx)
}

// report prints the node's listeners and status whenever they change, and
// the filters' log lines as they come.
func report(ctx context.Context, n dataplane.Node) {
	var (
		last      any
		printed   int // log lines printed so far
		adminSaid bool
	)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		logs := n.Logs()
		for _, l := range logs[printed:] {
			fmt.Printf("wasm %s %s (%s): %s\n", l.Level, l.Plugin, l.Filter, l.Message)
		}
		printed = len(logs)
		if addr := n.AdminAddr(); addr != "" && !adminSaid {
			fmt.Printf("admin: http://%s/stats/prometheus\n", addr)
			adminSaid = true
		}
		now := struct {
			Listeners map[string]string
			Status    dataplane.Status
			Drains    int
		}{n.Listeners(), n.Status(), n.Drains()}
		if reflect.DeepEqual(now, last) {
			continue
		}
		last = now
		b, _ := json.MarshalIndent(now, "", "  ")
		fmt.Println(string(b))
	}
}

// echoCluster is the cluster -echo answers: the upstream of wasmfleet's
// embedded default config (config.DefaultClusterName).
const echoCluster = config.DefaultClusterName

// serveEcho runs the -echo upstream until ctx ends and returns its address.
// It answers every request 200 with what it received, as JSON, so that a
// quick start needs no server of its own and shows what the filters changed.
func serveEcho(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("echo upstream: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(echoRequest), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// echoed is the echo upstream's answer.
type echoed struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body,omitempty"`
}

func echoRequest(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	e := echoed{Method: r.Method, Path: r.URL.Path, Headers: map[string]string{}, Body: string(body)}
	for k, v := range r.Header {
		e.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	w.Header().Set("content-type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e)
}
