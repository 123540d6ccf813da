package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/cptest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestAgainstControlPlane drives a rollout on a whole control plane (real
// admission, store and controller, no Envoy connected) with nothing but
// the CLI: the commands' wire format, exit codes and messages against the
// real reconcile loop rather than the scripted one of the other tests.
func TestAgainstControlPlane(t *testing.T) {
	dir := t.TempDir()
	watch := filepath.Join(dir, "filters.d")
	if err := os.MkdirAll(watch, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "wasmfleet.yaml")
	// A step that lasts an hour holds the candidate at 50% for the test;
	// trial runs of a 2 MB module take seconds under -race on shared cores.
	if err := os.WriteFile(cfgPath, []byte("watch_dir: "+watch+"\ndata_dir: "+filepath.Join(dir, "data")+
		"\nlisten: {xds: 127.0.0.1:0, modules: 127.0.0.1:0, admin: 127.0.0.1:0}\nlimits: {debounce: 20ms, trial_timeout: 2m}\n"+
		"filters: [{name: hello, rollout: {steps: [50, 100], interval: 1h}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cp := cptest.Start(t, controlplane.Options{Config: cfg, Log: zaptest.NewLogger(t)})
	t.Setenv("WASMFLEET_ADMIN", "http://"+cp.Addrs().Admin)

	v1 := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	// v2 is v1 with a custom section appended: another digest, the same code.
	v2 := append(append([]byte{}, v1...), 0x00, 0x08, 0x05, 'w', 'f', '-', 'v', '2', 0x01, 0x02)
	d1, d2 := types.DigestOf(v1), types.DigestOf(v2)
	put := func(module []byte) {
		t.Helper()
		tmp := filepath.Join(dir, "hello.wasm.tmp")
		if err := os.WriteFile(tmp, module, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(watch, "hello.wasm")); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want int, args ...string) (stdout, stderr string) {
		t.Helper()
		code, stdout, stderr := wasmfleet(t, args...)
		if code != want {
			t.Fatalf("wasmfleet %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
		}
		return stdout, stderr
	}

	// awaitCandidate polls until d is the candidate, and returns the report.
	awaitCandidate := func(d types.Digest) filterReport {
		t.Helper()
		var r filterReport
		for deadline := time.Now().Add(2 * time.Minute); r.Filter.Candidate != d; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is not the candidate after 2m: %+v", d.Short(), r.Filter)
			}
			// Exit 4 (unknown filter) until the first version is admitted.
			if code, stdout, _ := wasmfleet(t, "rollout", "status", "hello", "-o", "json"); code == exitOK {
				if err := json.Unmarshal([]byte(stdout), &r); err != nil {
					t.Fatal(err)
				}
			}
		}
		return r
	}
	// wait runs `rollout status --wait --digest` for d in the background.
	wait := func(d types.Digest) <-chan string {
		out := make(chan string, 1)
		go func() {
			code, stdout, stderr := wasmfleet(t, "rollout", "status", "hello", "--wait", "--interval", "50ms", "--timeout", "2m", "--digest", d.Short())
			out <- fmt.Sprintf("exit %d\n%s%s", code, stderr, stdout)
		}()
		return out
	}

	// A CI job waits for the first version before it is even admitted; the
	// filter is unknown until then. An operator promotes it.
	waited := wait(d1)
	put(v1)
	awaitCandidate(d1)
	expect(exitOK, "rollout", "promote", "hello")
	if got := <-waited; !strings.HasPrefix(got, "exit 0\n") {
		t.Fatalf("the wait for v1 ended with %s", got)
	}

	put(v2)
	r := awaitCandidate(d2)
	if f := r.Filter; f.Stable != d1 || f.Percent != 50 || f.Step != 1 || len(r.Versions) != 2 {
		t.Fatalf("rollout status = %+v, want v1 stable, v2 at 50%%, step 1 of 2, two versions", r)
	}
	// The CI job waits for v2 while an operator rolls it back.
	waited = wait(d2)
	expect(exitOK, "rollout", "rollback", "hello", "--reason", "p99 doubled")
	if got := <-waited; !strings.HasPrefix(got, fmt.Sprintf("exit %d\n", exitRolloutFailed)) ||
		!strings.Contains(got, "wasmfleet: hello "+d2.Short()+" rolled back at ") || !strings.Contains(got, "p99 doubled") {
		t.Fatalf("the wait for v2 ended with %s", got)
	}

	// Nothing to pause now; said once.
	_, stderr := expect(exitRefused, "rollout", "pause", "hello")
	if stderr != "wasmfleet: pause hello: no candidate is rolling out\n" {
		t.Errorf("pause with no candidate said %q", stderr)
	}
	// The 12 characters a table shows clear the bad mark.
	stdout, _ := expect(exitOK, "rollout", "clear-bad", "hello", d2.Short(), "-o", "yaml")
	if !strings.Contains(stdout, "name: hello") || strings.Contains(stdout, "bad:") {
		t.Errorf("clear-bad answered\n%s", stdout)
	}
	var st api.Status
	stdout, _ = expect(exitOK, "status", "-o", "json")
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || len(st.Filters) != 1 || st.Filters[0].Stable != d1 {
		t.Fatalf("status = %+v (%v)", st, err)
	}
}
