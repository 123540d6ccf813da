package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/standin"
	"github.com/wasmfleet/wasmfleet/internal/cptest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const (
	token = "web-test-token"
	// awaitTimeout bounds each wait: trial runs of a 2 MB module take
	// seconds under -race on shared cores, and the page polls every second.
	awaitTimeout = 2 * time.Minute
	// evilID is a node id that is markup; the page must show it as text.
	evilID = `<img src=x onerror="document.title='pwned'">`
	// smallID is a node whose VMs get too little memory for hungry.
	smallID = "small"
)

// TestStatusPage follows a rollout in the browser: the page asks for the
// token, shows a first version as the candidate, promotes it with its own
// button, shows v2 rolling out at 50% (step 1 of 2) as soon as it is
// admitted, pauses it (the API then says paused, the history says who and
// why), shows the NACK reason of a node that cannot load a module, and a
// refused config edit; all without reloading the page, and with a node id
// that is markup shown as text.
func TestStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not on PATH: install the Debian package chromium (apt-get install chromium)")
	}
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	// v2 is hello with a custom section appended: another digest, the same code.
	v2 := append(append([]byte{}, hello...), 0x00, 0x08, 0x05, 'w', 'f', '-', 'v', '2', 0x01, 0x02)
	// hungry is the scenarios' module that a node with a small memory
	// limit per VM fails to load, while the trial run loads it.
	hungry := wasmtest.Module(t, "e2e/scenarios/testdata/guests/hungry")
	d1, d2 := types.DigestOf(hello), types.DigestOf(v2)

	cp := startControlPlane(t)
	startNode(t, cp, evilID, 0)
	startNode(t, cp, smallID, 24)
	b := newBrowser(t, chromium)

	// Without the token the page says it needs one; with it, it is live.
	b.run(chromedp.Navigate(cp.admin + "/"))
	b.await("the page asks for the token", `document.getElementById("conn").textContent`, func(s string) bool {
		return strings.Contains(s, "token")
	})
	// A mark that a reload or navigation would erase.
	b.eval(`window.__sameDocument = true`)
	b.run(chromedp.SendKeys(chromedp.CSS("#token"), token))
	b.click(`#token-form button[type="submit"]`)
	b.await("the page is live", `document.getElementById("conn").textContent`, func(s string) bool {
		return strings.HasPrefix(s, "live")
	})

	// hello (steps 50, 100) gets v1 as its candidate; mem (all at once)
	// gets the same module and makes it stable on every node.
	cp.put(t, "hello", hello)
	cp.put(t, "mem", hello)
	b.awaitFilter("hello", "candidate", d1.Short())
	b.awaitFilter("hello", "percent", "50%")
	b.click(`#filters tbody tr[data-filter="hello"] button[data-action="promote"]`)
	b.awaitFilter("hello", "stable", d1.Short())
	b.awaitFilter("hello", "candidate", "")
	if f := cp.filter(t, "hello"); f.Stable != d1 || f.Candidate != "" {
		t.Fatalf("after Promote in the page, the API says stable %s candidate %s", f.Stable.Short(), f.Candidate.Short())
	}

	// v2 appears on the page as it is admitted.
	cp.put(t, "hello", v2)
	b.awaitFilter("hello", "candidate", d2.Short())
	b.awaitFilter("hello", "percent", "50%")
	b.awaitFilter("hello", "step", "1 of 2 (50, 100)")

	// Pause from the page, with a reason.
	b.run(chromedp.SendKeys(chromedp.CSS("#reason"), "p99 up"))
	b.click(`#filters tbody tr[data-filter="hello"] button[data-action="pause"]`)
	cp.await(t, "the API says hello is paused", func(st api.Status) bool {
		f, _ := find(st.Filters, func(f api.Filter) bool { return f.Name == "hello" })
		return f.Paused
	})
	b.awaitFilter("hello", "state", "paused")
	b.await("the history shows the pause, who and why",
		`[...document.querySelectorAll("#history section")].filter(s => s.dataset.filter === "hello").map(s => s.querySelector("table.actions tbody").innerText).join("")`,
		func(s string) bool { return strings.Contains(s, "pause\tweb page\t"+d2.Short()+"\tp99 up") })

	// The node whose id is markup is a row whose id cell reads as that
	// markup, and nothing of it ran.
	b.await("the markup node id shown as text", `[...document.querySelectorAll("#matrix tbody tr")].map(r => r.querySelector('[data-field="id"]').textContent).join("\n")`,
		func(s string) bool { return strings.Contains(s, evilID) })

	// mem on the small node: hungry is admitted, the node cannot load it,
	// its NACK rolls the candidate back; the page shows Envoy's reason.
	cp.await(t, "both nodes ACKed mem v1", func(st api.Status) bool {
		n := 0
		for _, node := range st.Nodes {
			if nf, ok := find(node.Filters, func(f api.NodeFilter) bool { return f.Filter == "mem" }); ok && nf.Acked.Stable == d1 {
				n++
			}
		}
		return n == 2
	})
	cp.put(t, "mem", hungry)
	var reason string
	cp.await(t, "the small node NACKed hungry", func(st api.Status) bool {
		node, _ := find(st.Nodes, func(n api.Node) bool { return n.ID == smallID })
		ecds, _ := find(node.Types, func(x api.TypeExchange) bool { return x.TypeURL == dataplane.ExtensionType })
		if ecds.LastNack != nil {
			reason = ecds.LastNack.Reason
		}
		return reason != ""
	})
	t.Logf("NACK reason: %s", reason)
	b.await("the small node's NACK reason on its row",
		fmt.Sprintf(`[...document.querySelectorAll("#matrix tbody tr")].filter(r => r.dataset.node === %q).map(r => r.querySelector('[data-field="last-nack"]').textContent).join("")`, smallID),
		func(s string) bool { return strings.Contains(s, reason) })
	b.await("mem's rollback names the small node", `[...document.querySelectorAll("#filters tbody tr")].filter(r => r.dataset.filter === "mem").map(r => r.querySelector('[data-field="bad"]').textContent).join("")`,
		func(s string) bool { return strings.Contains(s, " on "+smallID+": ") })

	// A broken edit of the config file is refused; the page says so.
	cp.writeConfig(t, "filterz: []\n")
	b.await("the refused reload", `document.getElementById("reload").hidden ? "" : document.getElementById("reload-reason").textContent`,
		func(s string) bool { return strings.Contains(s, "filterz") })

	if same := b.eval(`String(window.__sameDocument === true)`); same != "true" {
		t.Error("the page was reloaded; it must update in place")
	}
	if imgs, title := b.eval(`String(document.images.length)`), b.eval(`document.title`); imgs != "0" || title != "wasmfleet" {
		t.Errorf("the page has %s images and title %q: a node id ran as markup", imgs, title)
	}
	if ex := b.exceptions(); len(ex) > 0 {
		t.Errorf("the page threw: %s", strings.Join(ex, "\n"))
	}
}

// find returns the first element of s that match accepts.
func find[T any](s []T, match func(T) bool) (T, bool) {
	for _, v := range s {
		if match(v) {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// testCP is a control plane run from a config file, as `wasmfleet serve
// --config` runs it (the same start as cmd/wasmfleet's TestAgainstControlPlane
// and the controlplane package's config file tests).
type testCP struct {
	admin, xds  string
	watch, file string
	header      string
	client      *http.Client
}

func startControlPlane(t *testing.T) *testCP {
	t.Helper()
	dir := t.TempDir()
	c := &testCP{watch: filepath.Join(dir, "filters.d"), file: filepath.Join(dir, "wasmfleet.yaml"), client: &http.Client{Timeout: 10 * time.Second}}
	if err := os.MkdirAll(c.watch, 0o755); err != nil {
		t.Fatal(err)
	}
	// A step that lasts an hour holds hello's candidate at 50% for the test.
	c.header = "watch_dir: " + c.watch + "\ndata_dir: " + filepath.Join(dir, "data") +
		"\nlisten: {xds: 127.0.0.1:0, modules: 127.0.0.1:0, admin: 127.0.0.1:0}\nlimits: {debounce: 20ms, trial_timeout: 2m}\n" +
		"admin_token: " + token + "\n"
	c.writeConfig(t, "filters: [{name: hello, rollout: {steps: [50, 100], interval: 1h}}, {name: mem}]\n")
	cfg, err := config.Load(c.file)
	if err != nil {
		t.Fatal(err)
	}
	cp := cptest.Start(t, controlplane.Options{Config: cfg, ConfigPath: c.file, Log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named("cp")})
	c.admin, c.xds = "http://"+cp.Addrs().Admin, cp.Addrs().XDS
	return c
}

// writeConfig replaces the config file with the fixed header and body, by
// write then rename as editors do.
func (c *testCP) writeConfig(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(c.file+".tmp", []byte(c.header+body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c.file+".tmp", c.file); err != nil {
		t.Fatal(err)
	}
}

// put drops module into the watched directory as filter's file.
func (c *testCP) put(t *testing.T, filter string, module []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(c.watch), filter+".wasm.tmp")
	if err := os.WriteFile(tmp, module, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.watch, filter+".wasm")); err != nil {
		t.Fatal(err)
	}
}

// status reads GET /api/v1/status with the token.
func (c *testCP) status(t *testing.T) api.Status {
	t.Helper()
	req, err := http.NewRequest("GET", c.admin+api.Prefix+"/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %v", resp.StatusCode, err)
	}
	return st
}

func (c *testCP) filter(t *testing.T, name string) api.Filter {
	t.Helper()
	f, ok := find(c.status(t).Filters, func(f api.Filter) bool { return f.Name == name })
	if !ok {
		t.Fatalf("filter %s missing from the status", name)
	}
	return f
}

// await polls the API's status until cond holds.
func (c *testCP) await(t *testing.T, what string, cond func(api.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	for {
		st := c.status(t)
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("waiting for %s: status is\n%s", what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startNode runs a stand-in node (as e2e/scenarios configures them) until
// the test ends; memMiB limits each of its Wasm VMs, 0 for the default.
func startNode(t *testing.T, c *testCP, id string, memMiB int) {
	t.Helper()
	n, err := standin.New(standin.Config{
		Config: dataplane.Config{
			NodeID: id, Cluster: "webui", XDSAddr: c.xds,
			ListenAddrs: map[string]string{config.DefaultListenerName: "127.0.0.1:0"},
		},
		Seed:           uint64(len(id)),
		VMsPerFilter:   1,
		FetchBackoff:   10 * time.Millisecond,
		ReconnectBase:  10 * time.Millisecond,
		ReconnectMax:   100 * time.Millisecond,
		Interpreter:    true,
		MemoryLimitMiB: memMiB,
	})
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", id, err)
		}
	})
}

// browser is one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	thrown []string
}

func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		// Tests run as root in CI containers, where Chromium's sandbox
		// cannot start; the page under test is our own.
		chromedp.NoSandbox,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx}
	// Every uncaught exception of the page fails the test: a Trusted
	// Types refusal (data headed for markup) shows up here.
	// Listen starts the browser.
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
			b.mu.Lock()
			b.thrown = append(b.thrown, msg)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("browser: %v", err)
	}
	return b
}

func (b *browser) exceptions() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.thrown...)
}

// run runs actions with a deadline.
func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, awaitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates js in the page and returns its value, which must be a
// string.
func (b *browser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, awaitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	s, _ := v.(string)
	return s
}

// click clicks the element sel names, as a user does (mouse events at its
// place on the page).
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// await evaluates js (a string expression) in the page until ok accepts
// its value; the page must get there by itself.
func (b *browser) await(what, js string, ok func(string) bool) {
	b.t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	var got string
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		var err error
		got, err = chromedp.Run(ctx, chromedp.Evaluate[string](js))
		cancel()
		if err == nil && ok(got) {
			return
		}
		if time.Now().After(deadline) {
			conn, _ := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS("#conn")))
			b.t.Fatalf("waiting for %s: page shows %q (%v); connection line %q; exceptions %q", what, got, err, conn, b.exceptions())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitFilter waits until the filters table shows want in filter's row
// and field's column.
func (b *browser) awaitFilter(filter, field, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const r = [...document.querySelectorAll("#filters tbody tr")].find(r => r.dataset.filter === %q);
		return r ? r.querySelector('[data-field=%q]').textContent : "(no row)"; })()`, filter, field)
	b.await(fmt.Sprintf("%s %s = %q", filter, field, want), js, func(s string) bool { return s == want })
}
