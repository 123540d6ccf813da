package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// spinGuest never returns from proxy_on_configure: its trial run lasts until
// the trial's time limit or until it is cancelled.
const spinGuest = "controlplane/admission/testdata/guests/loopconfig"

// longTrials makes the trial time limit far longer than any wait of the
// harness, so a test passes only if a spinning trial is cancelled or left
// to run beside what the test waits for, never because it timed out. The
// logs it returns show what the guests say in their trials.
func longTrials(t *testing.T, workers int) (func(*Config), *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return func(c *Config) {
		c.Log = zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
		c.AdmissionWorkers = workers
		c.Admitter = admission.New(admission.Config{Log: c.Log, TrialTimeout: 10 * time.Minute})
	}, logs
}

// spinning waits until n trials have started spinning, as the guests say
// (loopconfig before its loop, echoconfig repeating a configuration that
// holds "spin"): they are under way on a worker, not just queued.
func (h *harness) spinning(logs *observer.ObservedLogs, n int) {
	h.t.Helper()
	h.wait(fmt.Sprintf("%d trials spinning", n), func() bool {
		return logs.Filter(func(e observer.LoggedEntry) bool {
			msg, _ := e.ContextMap()["msg"].(string)
			return e.Message == "trial run guest log" && strings.Contains(msg, "spin")
		}).Len() >= n
	})
}

// admitting reports whether filter's status shows module d in admission.
func (h *harness) admitting(filter string, d types.Digest) bool {
	a := h.status(filter).Admitting
	return a != nil && a.Digest == d
}

// TestTrialRunDoesNotStallTheLoop: while one filter's trial run spins, the
// controller still takes an operator command, counts a node's ACK, and
// admits and serves another filter's module.
func TestTrialRunDoesNotStallTheLoop(t *testing.T) {
	edit, logs := longTrials(t, 2)
	h := newHarnessWith(t, config.Default(), fleet.Config{}, edit)
	h.connect("n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	h.wait("v1 the candidate", func() bool { return h.status("hello").Candidate == v1 })

	spin := h.drop("spin", wasmtest.Module(t, spinGuest))
	h.wait("spin in admission", func() bool { return h.admitting("spin", spin) })
	h.spinning(logs, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.ctrl.Do(ctx, Command{Action: Pause, Filter: "hello"}); err != nil {
		t.Fatalf("pause while another filter's trial runs: %v", err)
	}
	if !h.status("hello").Paused {
		t.Fatal("the pause's answer does not show hello paused")
	}
	h.respond("n1", "hello", v1, "")
	h.wait("n1's ACK counted", func() bool { return testutil.ToFloat64(h.metrics.Acks.WithLabelValues("ecds")) >= 1 })
	world := h.drop("world", variant(hello, 7))
	h.wait("world admitted and sent to n1", func() bool { return h.status("world").Candidate == world && h.planned("n1", world) })

	if !h.admitting("spin", spin) {
		t.Fatalf("spin's trial is over (%+v); the test proved nothing", h.status("spin"))
	}
}

// holdingAdmitter runs the real admission, then keeps the answer for
// requests whose configuration holds "hold" until release is closed,
// whatever happens to their context meanwhile: as a trial that ends just
// as it is replaced.
type holdingAdmitter struct {
	admission.Admitter
	held    chan struct{} // closed when the first held answer is ready
	once    sync.Once
	release chan struct{}
}

func (a *holdingAdmitter) Admit(ctx context.Context, req admission.Request) (admission.Report, error) {
	rep, err := a.Admitter.Admit(ctx, req)
	if strings.Contains(string(req.Settings.Config), "hold") {
		a.once.Do(func() { close(a.held) })
		<-a.release
	}
	return rep, err
}

// TestStaleTrialNeverApplied: a module's trial with the settings in force
// is replaced when the filter's NAME.yaml changes, and the module is
// admitted only as the trial with the new settings says: with them when
// they pass, not at all when the module refuses them, even when the old
// trial passed.
func TestStaleTrialNeverApplied(t *testing.T) {
	t.Run("replaced while it runs", func(t *testing.T) {
		edit, logs := longTrials(t, 2)
		h := newHarnessWith(t, config.Default(), fleet.Config{}, edit)
		h.connect("n1")
		h.settings("echo", []byte("config: {mode: spin}\n"))
		v1 := h.drop("echo", wasmtest.Module(t, echoGuest))
		h.wait("v1 on trial with the spinning settings", func() bool { return h.admitting("echo", v1) })
		h.spinning(logs, 1)

		h.settings("echo", []byte("config: {greeting: fast}\n"))
		h.wait("v1 admitted", func() bool { return h.status("echo").Candidate == v1 })
		h.wait("v1 sent to n1", func() bool { return h.planned("n1", v1) })
		if js, _ := h.ecds("n1"); !strings.Contains(js, "fast") || strings.Contains(js, "spin") {
			t.Fatalf("n1 is sent v1 with other settings than its trial's: %s", js)
		}
		if st := h.status("echo"); st.LastError != "" || st.Admitting != nil {
			t.Fatalf("after the admission: %+v", st)
		}
		for outcome, want := range map[string]float64{"admitted": 1, "rejected": 0} {
			if got := testutil.ToFloat64(h.metrics.Admissions.WithLabelValues("echo", outcome)); got != want {
				t.Errorf("%s admissions: %v, want %v (the interrupted trial counts as neither)", outcome, got, want)
			}
		}
	})

	t.Run("passed but replaced", func(t *testing.T) {
		core, logs := observer.New(zap.DebugLevel)
		hold := &holdingAdmitter{held: make(chan struct{}), release: make(chan struct{})}
		h := newHarnessWith(t, config.Default(), fleet.Config{}, func(c *Config) {
			c.Log = zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
			c.AdmissionWorkers = 2
			hold.Admitter = admission.New(admission.Config{Log: c.Log, TrialTimeout: time.Minute})
			c.Admitter = hold
		})
		h.connect("n1")
		h.settings("echo", []byte("config: {greeting: hold}\n"))
		v1 := h.drop("echo", wasmtest.Module(t, echoGuest))
		<-hold.held // v1 passed with these settings; the answer is not out yet

		h.settings("echo", []byte("config: {greeting: fail}\n"))
		h.wait("v1 refused with the new settings", func() bool {
			return strings.Contains(h.status("echo").LastError, "refusing configuration")
		})
		close(hold.release)
		h.wait("the old trial's outcome dropped", func() bool {
			return logs.FilterMessage("outcome of a replaced trial dropped").Len() > 0
		})
		if st := h.status("echo"); st.Candidate != "" || st.Stable != "" || st.Admitting != nil {
			t.Fatalf("v1 admitted after its trial with the settings in force was replaced: %+v", st)
		}
		if h.planned("n1", v1) {
			t.Fatal("v1 reached a node")
		}
	})
}

// TestNewerModuleCancelsTheTrial: with one worker, a module that spins in
// its trial is replaced by the next module of its filter: its trial is
// cancelled (else the worker would never be free) and the newer module is
// admitted.
func TestNewerModuleCancelsTheTrial(t *testing.T) {
	edit, logs := longTrials(t, 1)
	h := newHarnessWith(t, config.Default(), fleet.Config{}, edit)
	h.connect("n1")
	spin := h.drop("hello", wasmtest.Module(t, spinGuest))
	h.wait("the spinning module in admission", func() bool { return h.admitting("hello", spin) })
	h.spinning(logs, 1)
	v2 := h.drop("hello", wasmtest.Module(t, "internal/wasmtest/testdata/hello"))
	h.wait("the newer module admitted", func() bool { return h.status("hello").Candidate == v2 })
	if st := h.status("hello"); st.LastError != "" || st.Admitting != nil {
		t.Fatalf("after the newer module: %+v", st)
	}
	if h.planned("n1", spin) {
		t.Fatal("the replaced module reached a node")
	}
}

// TestStopCancelsTrials: stopping the controller cancels a trial under way
// and waits for the workers: Start returns long before the trial's time
// limit, and no goroutine of the controller is left.
func TestStopCancelsTrials(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	edit, logs := longTrials(t, 2)
	h := newHarnessWith(t, config.Default(), fleet.Config{}, edit)
	spin := h.drop("spin", wasmtest.Module(t, spinGuest))
	h.wait("spin in admission", func() bool { return h.admitting("spin", spin) })
	h.spinning(logs, 1)
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Start still running 30s after its context ended")
	}
}

// TestOnlyAdmittedModulesAreStored: the store writes a module while its
// trial runs, but only one that passed ends up in the store (where the
// module server would serve it); a refused one leaves nothing behind, not
// even a temporary file.
func TestOnlyAdmittedModulesAreStored(t *testing.T) {
	h := newHarness(t, config.Default(), fleet.Config{})
	good := h.drop("hello", wasmtest.Module(t, "internal/wasmtest/testdata/hello"))
	h.wait("hello admitted", func() bool { return h.status("hello").Candidate == good })
	bad := h.drop("fails", wasmtest.Module(t, "controlplane/admission/testdata/guests/vmstartfail"))
	h.wait("fails refused", func() bool { return strings.Contains(h.status("fails").LastError, "trial run failed") })
	if _, ok := h.store.ModulePath(good); !ok {
		t.Fatal("the admitted module is not in the store")
	}
	if p, ok := h.store.ModulePath(bad); ok {
		t.Fatalf("the refused module is in the store at %s", p)
	}
	entries, err := os.ReadDir(filepath.Join(h.dataDir, "modules", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{string(good)}) {
		t.Fatalf("modules directory holds %v, want only the admitted %s", names, good)
	}
}
