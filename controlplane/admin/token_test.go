package admin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
)

// TestTokenFile: the token comes from a file (a mounted Secret), with its
// newline trimmed; a rotated file takes effect without a restart; a file
// that disappears closes the API rather than opening it.
func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	write := func(s string, at time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		// A distinct mtime, as a Secret's atomic symlink swap gives.
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	write("first\n", now)
	cfg := Config{Controller: newLoop(), Fleet: fleet.New(fleet.Config{}), History: history{},
		Gatherer: prometheus.NewRegistry(), TokenFile: path, Log: zaptest.NewLogger(t)}
	if err := CheckToken(cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(cfg))
	defer srv.Close()
	status := func(token string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"the file's token, without its newline", "first", http.StatusOK},
		{"another token", "firs", http.StatusUnauthorized},
	}
	for _, s := range steps {
		if got := status(s.token); got != s.want {
			t.Errorf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
	write("second", now.Add(time.Second))
	if got := status("first"); got != http.StatusUnauthorized {
		t.Errorf("the rotated-out token: status %d, want 401", got)
	}
	if got := status("second"); got != http.StatusOK {
		t.Errorf("the rotated-in token: status %d, want 200", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := status("second"); got != http.StatusServiceUnavailable {
		t.Errorf("token file gone: status %d, want 503 (closed)", got)
	}
	if err := CheckToken(cfg); err == nil {
		t.Error("CheckToken accepts a missing file")
	}
	write(" \n", now.Add(2*time.Second))
	if err := CheckToken(cfg); err == nil {
		t.Error("CheckToken accepts an empty file")
	}
}
