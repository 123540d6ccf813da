package quickstart

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script is the quick start, relative to the repository root.
const script = "docs/quickstart.sh"

// TestREADMEShowsTheScript: the README's quick start block is the script's
// steps word for word, so the commands a reader pastes are the ones
// TestQuickStart runs.
func TestREADMEShowsTheScript(t *testing.T) {
	root := repoRoot(t)
	steps := scriptSteps(t, root)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("```sh\n"+steps+"```\n")) {
		t.Fatalf("README.md's quick start block is not %s from its addresses on:\n%s", script, steps)
	}
}

// TestQuickStart runs the script in a copy of the repository's files (what
// a clone holds) and checks that it reaches a 401 without the API key and a
// 200 with it, through auth to the stand-in's echo upstream.
func TestQuickStart(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the quick start needs curl on PATH (apt-get install curl)")
	}
	dir := cloneFiles(t, repoRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"XDS="+freeAddr(t), "MODULES="+freeAddr(t), "ADMIN="+freeAddr(t), "INGRESS="+freeAddr(t))
	// Its own process group: the control plane and the stand-in it leaves
	// running go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) })
	err := cmd.Wait()
	t.Logf("quick start output:\n%s", out.String())
	if err != nil {
		for _, log := range []string{"serve.log", "standin.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, log))
			t.Logf("%s:\n%s", log, b)
		}
		t.Fatalf("quick start: %v", err)
	}
	text := out.String()
	for _, want := range []string{
		"GET /hello -> 200",
		"GET /hello -> 401",
		"GET /hello with x-api-key: demo-key -> 200",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The echo upstream's answer: the request as it left the node.
	var echoed struct {
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
	}
	start := strings.Index(text, "\n{")
	if start < 0 {
		t.Fatal("no echoed request in the output")
	}
	if err := json.NewDecoder(strings.NewReader(text[start:])).Decode(&echoed); err != nil {
		t.Fatalf("echoed request: %v", err)
	}
	if echoed.Path != "/hello" || echoed.Headers["x-api-key"] != "demo-key" {
		t.Errorf("upstream saw %+v, want /hello with the API key", echoed)
	}
	// curl sends no accept-encoding, and neither may the node on its behalf.
	if ae, ok := echoed.Headers["accept-encoding"]; ok {
		t.Errorf("upstream saw accept-encoding %q that the client never sent", ae)
	}
	for _, want := range []string{"edge-1", "auth"} {
		if !strings.Contains(text[start:], want) {
			t.Errorf("status output lacks %q", want)
		}
	}
}

// scriptSteps is the script from its first address on, as the README shows
// it (the lines above are its header and `set -eu`, which a shell one pastes
// into must not get).
func scriptSteps(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, script))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("XDS=${XDS"))
	if i < 0 {
		t.Fatalf("%s does not set XDS", script)
	}
	return string(b[i:])
}

// cloneFiles copies the files a clone would hold (tracked, and new ones not
// ignored, so uncommitted work is tested too) into a temporary directory.
func cloneFiles(t *testing.T, root string) string {
	t.Helper()
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	names, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s: %v (the quick start test copies a git checkout)", root, err)
	}
	dir := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Lstat(src)
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// repoRoot is the directory of go.mod above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
