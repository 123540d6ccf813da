package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
)

// TestStatusPage: the page's files are served without the token (they hold
// no data) with their content types and the CSP, while the API they call
// still needs it. What the page does with the API is tested in a real
// browser against a real control plane (e2e/webui).
func TestStatusPage(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Config{
		Controller: newLoop(), Fleet: fleet.New(fleet.Config{}), History: history{},
		Gatherer: prometheus.NewRegistry(), Token: "s3cret", Log: zaptest.NewLogger(t),
	}))
	defer srv.Close()
	tests := []struct {
		name, path, contentType string
		want                    int
		wantIn                  []string
	}{
		{name: "page", path: "/", want: 200, contentType: "text/html; charset=utf-8",
			wantIn: []string{`<script src="/app.js" defer></script>`, `<link rel="stylesheet" href="/app.css">`, `id="token"`}},
		{name: "script", path: "/app.js", want: 200, contentType: "text/javascript; charset=utf-8",
			wantIn: []string{`"Bearer "`, "sessionStorage", "/api/v1"}},
		{name: "style", path: "/app.css", want: 200, contentType: "text/css; charset=utf-8"},
		{name: "only the root is the page", path: "/index.html", want: 404},
		{name: "the API still needs the token", path: "/api/v1/status", want: 401, contentType: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
			}
			if tt.want != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q, want %q", got, ContentSecurityPolicy)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(string(body), w) {
					t.Errorf("GET %s lacks %q", tt.path, w)
				}
			}
		})
	}
}

// TestStatusPagePolicy reads the policy and the page's files together: no
// inline script or style that the policy would block, no markup sinks in
// the script (the policy's Trusted Types would make them throw), and the
// directives that keep data from running.
func TestStatusPagePolicy(t *testing.T) {
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(ContentSecurityPolicy, d) {
			t.Errorf("policy lacks %q", d)
		}
	}
	page, err := uiFiles.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(regexp.MustCompile(`<script\b[^>]*>`).FindAll(page, -1)); n != 1 ||
		!strings.Contains(string(page), `<script src="/app.js" defer></script>`) {
		t.Errorf("index.html has %d script tags, want the one that loads /app.js and nothing inline", n)
	}
	for _, inline := range []string{"<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(string(page), inline) {
			t.Errorf("index.html has inline %q, which the policy blocks", inline)
		}
	}
	js, err := uiFiles.ReadFile("ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s; data must reach the DOM as text", sink)
		}
	}
}
