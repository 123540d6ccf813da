package admin

import (
	"embed"
	"net/http"
)

// The status page: GET / serves a small page (ui/index.html, ui/app.js,
// ui/app.css, embedded in the binary, no third-party code) that shows the
// filters, the node x filter matrix, each filter's history, and runs the
// rollout commands. It is a client of the /api/v1 endpoints like the CLI:
// the page itself holds no data, so it needs no token; the script asks for
// the token, keeps it in sessionStorage and sends it as a bearer token.
//
// Live updates are polls: the script fetches /api/v1/status (and each
// filter's history) once a second, the next poll only after the last one
// answered. That is the simplest design that is robust here:
//   - every /api/ call needs the token when one is set, and EventSource
//     cannot send headers; a token in the URL ends up in logs and history,
//     and a cookie would make the command endpoints open to cross-site
//     requests;
//   - the reconcile loop has no change notification (Controller.Status is
//     a read), so a streaming endpoint would poll it inside the server anyway,
//     and would hold a connection per open page against the server's idle
//     and read limits and its shutdown;
//   - a poll needs no reconnect logic: a restarted control plane is simply
//     there again at the next poll.
//
// One status and a few history reads a second per open page is nothing
// for the admin API.

//go:embed ui/index.html ui/app.js ui/app.css
var uiFiles embed.FS

// ContentSecurityPolicy is sent with every file of the status page: only
// the page's own script, style and API calls; no inline script, no frames,
// no forms posting anywhere. Trusted Types make the browser refuse markup
// assigned to innerHTML and its kin, so data from the API (node ids,
// reasons, errors: outside input) can only reach the page as text.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// uiFile serves one embedded file of the status page.
func uiFile(name, contentType string) http.HandlerFunc {
	body, err := uiFiles.ReadFile("ui/" + name)
	if err != nil {
		panic("admin: status page file missing from the embed: " + name) // a build mistake, caught by any test
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The page changes with the binary: revalidate rather than run an
		// old script against a new API.
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	}
}

// handleUI adds the status page's routes to mux.
func handleUI(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", uiFile("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", uiFile("app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app.css", uiFile("app.css", "text/css; charset=utf-8"))
}
