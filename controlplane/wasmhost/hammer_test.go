package wasmhost

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestHammer runs many plugins of three modules on several simulated nodes,
// each plugin driven by its own goroutine, plus one plugin shared by
// several goroutines, and checks that no state leaks between VMs or nodes.
func TestHammer(t *testing.T) {
	const (
		nodes   = 3
		sharers = 4
	)
	requests := 40
	if raceDetector { // the interpreter under -race is ~50x slower
		requests = 8
	}
	probe, stamp, hello := testModule(t, probeGuest), testModule(t, stampGuest), testModule(t, helloGuest)

	type node struct {
		metrics *Metrics
		shared  *SharedData
		probe   *Plugin
		stamp   *Plugin
		hello   *Plugin
		helloed logRecorder
	}
	ns := make([]*node, nodes)
	for i := range ns {
		n := &node{metrics: NewMetrics(), shared: NewSharedData()}
		id := "node-" + strconv.Itoa(i)
		props := map[string][]byte{"node.id": []byte(id)}
		n.probe = newPlugin(t, probe, PluginConfig{Name: "probe", VMID: "probe", Properties: props, Metrics: n.metrics, Shared: n.shared})
		n.stamp = newPlugin(t, stamp, PluginConfig{Name: "stamp", Configuration: []byte(id)})
		n.hello = newPlugin(t, hello, PluginConfig{Name: "hello", Log: n.helloed.log})
		ns[i] = n
	}

	// Each node's filters form a chain: stamp, probe, hello.
	var wg sync.WaitGroup
	errs := make(chan error, nodes*requests)
	for i, n := range ns {
		wg.Go(func() {
			for j := range requests {
				if err := chain(n.stamp, n.probe, n.hello, i, j); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// One stamp plugin shared by several goroutines: calls serialise.
	shared := newPlugin(t, stamp, PluginConfig{Name: "shared", Configuration: []byte("shared")})
	stamps := make(chan string, sharers*requests)
	for range sharers {
		wg.Go(func() {
			for range requests {
				req := NewHeaders(":path", "/")
				s, err := shared.NewHTTPStream(context.Background())
				if err == nil {
					_, err = s.RequestHeaders(req, true)
				}
				if err == nil {
					err = s.Done()
				}
				if err != nil {
					errs <- err
					return
				}
				v, _ := req.Get("x-stamp")
				stamps <- v
			}
		})
	}
	wg.Wait()
	close(errs)
	close(stamps)
	for err := range errs {
		t.Error(err)
	}

	for i, n := range ns {
		t.Run(fmt.Sprintf("node-%d", i), func(t *testing.T) {
			if got, _ := n.metrics.Get("probe_requests", MetricCounter); got.Value != int64(requests) {
				t.Errorf("probe_requests = %d, want %d", got.Value, requests)
			}
			if v, _, _ := n.shared.Get("probe", "hits"); string(v) != strconv.Itoa(requests) {
				t.Errorf("hits = %q, want %d", v, requests)
			}
			hellos := 0
			for _, l := range n.helloed.all() {
				if l.level == LogInfo && l.msg == "Hello" {
					hellos++
				}
			}
			if hellos != requests {
				t.Errorf("hello logged %d times, want %d", hellos, requests)
			}
		})
	}
	t.Run("shared plugin", func(t *testing.T) {
		var got []string
		for s := range stamps {
			got = append(got, s)
		}
		var want []string
		for i := 1; i <= sharers*requests; i++ {
			want = append(want, "shared:"+strconv.Itoa(i))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("stamps are not 1..%d exactly once: %v", sharers*requests, got)
		}
	})
}

// chain sends request j through node i's three filters, as a data plane
// would: request headers in order, response headers in reverse.
func chain(stamp, probe, hello *Plugin, i, j int) error {
	ctx := context.Background()
	var streams []*HTTPStream
	for _, p := range []*Plugin{stamp, probe, hello} {
		s, err := p.NewHTTPStream(ctx)
		if err != nil {
			return err
		}
		streams = append(streams, s)
	}
	req := NewHeaders(":method", "GET", ":path", "/r/"+strconv.Itoa(j), "x-probe-op", "shared,props")
	for _, s := range streams {
		if a, err := s.RequestHeaders(req, true); err != nil || a != ActionContinue {
			return fmt.Errorf("request headers: %v %v", a, err)
		}
	}
	want := "node-" + strconv.Itoa(i) + ":" + strconv.Itoa(j+1)
	if v, _ := req.Get("x-stamp"); v != want {
		return fmt.Errorf("x-stamp = %q, want %q", v, want)
	}
	if v, _ := req.Get("x-prop-node.id"); v != "node-"+strconv.Itoa(i) {
		return fmt.Errorf("node.id seen by probe = %q", v)
	}
	resp := NewHeaders(":status", "200")
	for k := len(streams) - 1; k >= 0; k-- {
		if _, err := streams[k].ResponseHeaders(resp, true); err != nil {
			return err
		}
	}
	if got := resp.All(); !slices.Equal(got, [][2]string{{":status", "200"}, {"x-probe", "probe"}, {"x-probe-code", "200"}, {"x-stamp", "node-" + strconv.Itoa(i)}}) {
		return fmt.Errorf("response headers %q", got)
	}
	for _, s := range streams {
		if err := s.Done(); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(req.All()[0][0], ":") {
		return fmt.Errorf("pseudo-headers moved: %q", req.All())
	}
	return nil
}
