package standin

import (
	"cmp"
	"slices"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.uber.org/zap"
)

// watch is one ECDS resource name the node subscribes to. It stands for two
// things in Envoy: the FilterConfigSubscription, whose init target tells the
// listeners that use it when they may stop waiting, and that subscription's
// watch in the ADS mux (GrpcMuxImpl::GrpcMuxWatchImpl), whose place in the
// mux's list decides the order in which an ECDS response is applied.
// Callers hold n.mu.
type watch struct {
	// seq is the start order. The mux puts each new watch at the front of
	// its list and walks the list from the front, so a response reaches the
	// newest watch first (see watchOrder).
	seq uint64
	// ready is the subscription's init target: set once a config for the
	// name was applied, once any ECDS response was rejected, or once the
	// initial fetch timed out. A warming listener waits for the watches of
	// its slots, not for their configs.
	ready bool
	// timer fires initial_fetch_timeout after the watch started, unless the
	// watch is ready by then; nil when there is none.
	timer *time.Timer
}

// markReady makes w ready and stops its initial fetch timer.
func (w *watch) markReady() {
	w.ready = true
	w.stopTimer()
}

func (w *watch) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// syncWatches starts a watch for every ECDS name that a listener (latest or
// serving) references and has none, and ends the watches no listener
// references any more. New watches start in the order Envoy starts them:
// listeners in the order of the last LDS response (LdsApiImpl::onConfigUpdate
// adds them in that order and each one's init manager initializes at once),
// and within a listener in http_filters order (the subscriptions' init
// targets are added in that order and Init::ManagerImpl::initialize starts
// them in order). An ended watch forgets the last config it received, as
// the FilterConfigSubscription that held it is destroyed; the slot keeps
// the config it runs (SIMPLIFICATIONS.md). Callers hold n.mu.
func (n *node) syncWatches() {
	wanted := map[string]bool{}
	for _, name := range n.ldsOrder {
		ls := n.listeners[name]
		if ls == nil {
			continue
		}
		for _, m := range []*hcmpb.HttpConnectionManager{ls.activeHCM(), ls.hcm} {
			for _, f := range m.GetHttpFilters() {
				cd := f.GetConfigDiscovery()
				if cd == nil {
					continue
				}
				wanted[f.GetName()] = true
				if n.watches[f.GetName()] == nil {
					n.startWatch(f.GetName(), cd.GetConfigSource())
				}
			}
		}
	}
	for name, w := range n.watches {
		if wanted[name] {
			continue
		}
		w.stopTimer()
		delete(n.watches, name)
		if s := n.slots[name]; s != nil {
			s.received = nil
		}
	}
}

// startWatch starts the watch for name with the initial fetch timeout of
// its config source (GrpcSubscriptionImpl::start; the default is
// Utility::configSourceInitialFetchTimeout's 15 s, and 0 means none).
// Callers hold n.mu.
func (n *node) startWatch(name string, cs *core.ConfigSource) {
	n.watchSeq++
	w := &watch{seq: n.watchSeq}
	n.watches[name] = w
	timeout := DefaultInitialFetchTimeout
	if d := cs.GetInitialFetchTimeout(); d != nil {
		timeout = d.AsDuration()
	}
	if timeout > 0 {
		w.timer = time.AfterFunc(timeout, func() { n.fetchTimedOut(name, w) })
	}
}

// fetchTimedOut follows GrpcSubscriptionImpl::onConfigUpdateFailed with
// FetchTimedout: the subscription's init target becomes ready without a
// config, and the listeners waiting for it may start serving.
func (n *node) fetchTimedOut(name string, w *watch) {
	n.mu.Lock()
	if n.stopped || n.watches[name] != w || w.ready {
		n.mu.Unlock()
		return
	}
	w.ready, w.timer = true, nil
	// stop sets stopped under mu before it waits for bg, so this Add
	// happens before that wait or not at all.
	n.bg.Add(1)
	n.mu.Unlock()
	defer n.bg.Done()
	n.log.Warn("ecds initial fetch timed out", zap.String("filter", name))
	if err := n.reconcile(); err != nil {
		n.log.Warn("listener not started", zap.String("filter", name), zap.Error(err))
	}
}

// rejectWatches follows GrpcMuxImpl::onDiscoveryResponse when a response
// fails: every watch of the type is told the update was rejected, and each
// FilterConfigSubscription::onConfigUpdateFailed marks its init target
// ready, whether or not the response held its config.
func (n *node) rejectWatches() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.watches {
		w.markReady()
	}
}

// watchOrder returns the watched names in the order the ADS mux visits them
// with a response: the most recently started first.
func (n *node) watchOrder() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	names := make([]string, 0, len(n.watches))
	for name := range n.watches {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(n.watches[b].seq, n.watches[a].seq) })
	return names
}
