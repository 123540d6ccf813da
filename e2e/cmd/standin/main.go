package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"time"

	"go.uber.org/zap"

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
	flag.Parse()
	cfg.ListenAddrs = listen
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Log = log

	n, err := standin.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go report(ctx, n)
	return n.Start(ctx)
}

// report prints the node's listeners and status whenever they change.
func report(ctx context.Context, n dataplane.Node) {
	var last any
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
