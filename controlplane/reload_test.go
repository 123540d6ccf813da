package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
)

// TestRefusedReloadInStatus: the admin API's status carries a refused edit
// of the config file, with its reason, until the file is fixed: by an edit
// that is applied, or by going back to the bytes that run. A file that
// cannot be read is refused too.
func TestRefusedReloadInStatus(t *testing.T) {
	file := newConfigFile(t)
	const good = "filters: [{name: a}]\n"
	cp := file.start(t, good, zaptest.NewLogger(t))
	url := "http://" + cp.Addrs().Admin + api.Prefix + "/status"
	refused := func() *api.RefusedReload {
		t.Helper()
		var st api.Status
		if err := json.Unmarshal([]byte(get(t, url)), &st); err != nil {
			t.Fatal(err)
		}
		return st.RefusedReload
	}
	// await polls the status until cond holds for its refused_reload.
	await := func(what string, cond func(*api.RefusedReload) bool) *api.RefusedReload {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := refused()
			if cond(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; refused_reload = %+v", what, r)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cleared := func(r *api.RefusedReload) bool { return r == nil }
	if r := refused(); r != nil {
		t.Fatalf("refused_reload at start: %+v", r)
	}

	start := time.Now()
	file.write(t, "filters: [{name: a, failure_policy: SOMETIMES}]\n")
	r := await("the bad edit", func(r *api.RefusedReload) bool { return r != nil })
	if r.Path != file.path || !strings.Contains(r.Reason, "SOMETIMES") || r.At.Before(start.Add(-time.Second)) {
		t.Fatalf("refused_reload = %+v, want %s, a reason naming SOMETIMES and a time", r, file.path)
	}
	file.write(t, good)
	await("the file back to what runs", cleared)

	// Every problem, each with the file, line and field (the body starts
	// after the header's lines).
	file.write(t, "filterz: []\nmode: both\n")
	line := strings.Count(file.header, "\n") + 1
	want := fmt.Sprintf("%s:%d:1: filterz: unknown field (did you mean \"filters\"?)\n", file.path, line) +
		fmt.Sprintf("%s:%d:1: mode: invalid value: \"both\" (want \"managed\" or \"ecds\")", file.path, line+1)
	await("the typo", func(r *api.RefusedReload) bool { return r != nil && r.Reason == want })
	file.write(t, "filters: [{name: b}]\n")
	await("an applied edit", cleared)

	if err := os.Remove(file.path); err != nil {
		t.Fatal(err)
	}
	await("the file gone", func(r *api.RefusedReload) bool { return r != nil && strings.Contains(r.Reason, "no such file") })
}

// TestStatusWithoutConfigFile: a control plane run without a config file to
// watch answers its status, with no refused reload.
func TestStatusWithoutConfigFile(t *testing.T) {
	cp, err := New(Options{Config: testConfig(t), Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Start(ctx) }()
	defer func() { cancel(); <-done }()
	var st api.Status
	if err := json.Unmarshal([]byte(get(t, "http://"+cp.Addrs().Admin+api.Prefix+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.RefusedReload != nil {
		t.Fatalf("refused_reload without a config file: %+v", st.RefusedReload)
	}
}
