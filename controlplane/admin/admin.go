// Package admin is the control plane's HTTP admin API: health, Prometheus
// metrics, fleet status (which node runs which version), rollout commands and
// the server's version. The CLI's `status`, `rollout` and `version`
// subcommands are clients of this API, and so is the status page at GET /
// (ui.go). What it answers is made of the wire
// types of package api, never of internal structs, so the JSON stays the
// same when the control plane's internals change.
//
// It binds loopback by default; when it is bound elsewhere the config must set
// admin_token, and every /api/ call then needs `Authorization: Bearer TOKEN`,
// as /metrics does unless admin_metrics_open. Request bodies have a size
// limit (413 beyond it) and NewServer's server a time limit on reading each
// request and on idle connections, so a client that holds the token still
// cannot pin memory or connections.
package admin

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Controller is what the admin API asks of the reconcile loop.
type Controller interface {
	// Status is the filters as of the last event handled; safe for concurrent use.
	Status() []controller.FilterStatus
	// Do runs an operator command in order with every other event.
	Do(ctx context.Context, cmd controller.Command) error
	// DryRun returns the per-node changes cfg would cause; nothing changes.
	DryRun(ctx context.Context, cfg config.Config) ([]rollout.Change, error)
}

// History is the store's record of a filter's past. Both methods are safe
// for concurrent use and return oldest first, empty for an unknown filter.
type History interface {
	// History returns the filter's admitted versions.
	History(filter string) ([]types.Version, error)
	// Actions returns what operators did to the filter's rollout.
	Actions(filter string) ([]store.Action, error)
}

// Reloads is the config file watcher's record of its last reload.
type Reloads interface {
	// Refused returns the last change of the config file if it was refused
	// and the file has not been fixed since; ok is false when the running
	// config is what the file says. Safe for concurrent use.
	Refused() (r RefusedReload, ok bool)
}

// RefusedReload is a change of the config file that was not applied.
type RefusedReload struct {
	Path string
	// Err lists every problem found in the file.
	Err error
	At  time.Time
}

// Limits on what one request may cost.
const (
	// MaxPlanBytes bounds a config file sent to POST /api/v1/rollout/plan;
	// a larger one is answered 413, never planned in part.
	MaxPlanBytes = 4 << 20
	// MaxCommandBytes bounds the JSON body of a rollout command.
	MaxCommandBytes = 1 << 20
	// DefaultReadHeaderTimeout, DefaultReadTimeout and DefaultIdleTimeout
	// are NewServer's: how long a client may take to send a request's
	// headers, the whole request (a plan of MaxPlanBytes included), and how
	// long a kept-alive connection may sit idle.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// Config wires the handler.
type Config struct {
	Controller Controller
	Fleet      fleet.Registry
	History    History
	// Reloads, when set, puts a refused config reload into the status until
	// the file is fixed; nil when the control plane runs without a config
	// file to watch.
	Reloads  Reloads
	Gatherer prometheus.Gatherer
	// Token, when set, is required on every /api/ call, and on /metrics
	// unless MetricsOpen.
	Token string
	// TokenFile, when set instead, holds the token (config
	// admin_token_file); it is read again when it changes.
	TokenFile string
	// MetricsOpen serves /metrics without Token (config admin_metrics_open).
	MetricsOpen bool
	// ReadTimeout and IdleTimeout are NewServer's limits; zero means
	// DefaultReadTimeout and DefaultIdleTimeout.
	ReadTimeout, IdleTimeout time.Duration
	Log                      *zap.Logger
}

// NewServer returns an HTTP server for the admin API (NewHandler) with time
// limits on reading requests and on idle connections; the caller serves it.
func NewServer(cfg Config) *http.Server {
	read, idle := cfg.ReadTimeout, cfg.IdleTimeout
	if read <= 0 {
		read = DefaultReadTimeout
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	return &http.Server{
		Handler:           NewHandler(cfg),
		ReadHeaderTimeout: min(DefaultReadHeaderTimeout, read),
		ReadTimeout:       read,
		IdleTimeout:       idle,
	}
}

// NewHandler returns the admin API.
func NewHandler(cfg Config) http.Handler {
	h := &handler{cfg: cfg, log: cfg.Log.Named("admin")}
	mux := http.NewServeMux()
	handleUI(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
	if !cfg.MetricsOpen {
		metrics = h.auth(metrics)
	}
	mux.HandleFunc("GET /metrics", metrics)
	mux.HandleFunc("GET "+api.Prefix+"/status", h.auth(h.status))
	mux.HandleFunc("GET "+api.Prefix+"/version", h.auth(h.version))
	mux.HandleFunc("GET "+api.Prefix+"/filters/{filter}/history", h.auth(h.history))
	mux.HandleFunc("POST "+api.Prefix+"/rollout/{filter}/{action}", h.auth(h.command))
	mux.HandleFunc("POST "+api.Prefix+"/rollout/plan", h.auth(h.plan))
	return mux
}

type handler struct {
	cfg Config
	log *zap.Logger
}

func (h *handler) auth(next http.HandlerFunc) http.HandlerFunc {
	var want func() ([]byte, error)
	switch {
	case h.cfg.TokenFile != "":
		want = (&tokenFile{path: h.cfg.TokenFile}).read
	case h.cfg.Token != "":
		token := []byte(h.cfg.Token)
		want = func() ([]byte, error) { return token, nil }
	default:
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		token, err := want()
		if err != nil {
			// Fail closed: a missing Secret must not open the API.
			h.log.Error("admin API refused a call: no token to check it against", zap.Error(err))
			writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: "admin: the admin token file cannot be read; see the control plane's log"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wasmfleet"`)
			writeJSON(w, http.StatusUnauthorized, api.Error{Error: "admin: missing or wrong bearer token"})
			return
		}
		next(w, r)
	}
}

func (h *handler) status(w http.ResponseWriter, _ *http.Request) {
	filters := h.cfg.Controller.Status()
	st := api.Status{Filters: Filters(filters), Nodes: wireNodes(h.cfg.Fleet.Nodes(), candidates(filters))}
	if h.cfg.Reloads != nil {
		if r, ok := h.cfg.Reloads.Refused(); ok {
			st.RefusedReload = &api.RefusedReload{Path: r.Path, Reason: r.Err.Error(), At: utc(r.At)}
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Build())
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	filter := r.PathValue("filter")
	versions, err := h.cfg.History.History(filter)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Error: err.Error()})
		return
	}
	// A filter the loop knows may have no version yet (its settings came
	// first, or every module was rejected): an empty history, not a 404.
	known := slices.ContainsFunc(h.cfg.Controller.Status(), func(f controller.FilterStatus) bool { return f.Name == filter })
	if len(versions) == 0 && !known {
		writeJSON(w, http.StatusNotFound, api.Error{Error: "filter " + filter + ": " + controller.ErrUnknownFilter.Error()})
		return
	}
	actions, err := h.cfg.History.Actions(filter)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, api.History{Filter: filter, Versions: wireVersions(versions), Actions: wireActions(actions)})
}

func (h *handler) command(w http.ResponseWriter, r *http.Request) {
	filter, action := r.PathValue("filter"), controller.Action(r.PathValue("action"))
	var req api.CommandRequest
	if err := decodeOptional(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	cmd := controller.Command{Action: action, Filter: filter, Reason: req.Reason,
		Actor: cmp.Or(req.Actor, r.Header.Get(api.ActorHeader), api.DefaultActor)}
	if req.Digest != "" {
		d, err := h.resolveDigest(filter, req.Digest)
		if err != nil {
			code := http.StatusInternalServerError // the store could not say
			switch {
			case errors.Is(err, api.ErrUnknownDigest):
				code = http.StatusNotFound
			case errors.Is(err, api.ErrBadDigest), errors.Is(err, api.ErrAmbiguousDigest):
				code = http.StatusBadRequest
			}
			writeJSON(w, code, api.Error{Error: fmt.Sprintf("%s %s: %v", action, filter, err)})
			return
		}
		cmd.Digest = d
	}
	if err := h.cfg.Controller.Do(r.Context(), cmd); err != nil {
		code, msg := commandError(cmd, err)
		writeJSON(w, code, api.Error{Error: msg})
		return
	}
	h.log.Info("rollout command", zap.String("filter", filter), zap.String("action", string(action)), zap.String("actor", cmd.Actor))
	for _, f := range h.cfg.Controller.Status() {
		if f.Name == filter {
			writeJSON(w, http.StatusOK, wireFilter(f))
			return
		}
	}
	writeJSON(w, http.StatusOK, api.Filter{Name: filter, Position: -1})
}

// resolveDigest finds the version of filter that s (a digest or a prefix)
// names among the versions the filter has had: its history and its bad
// marks (a bad mark can outlive the history that admitted it).
func (h *handler) resolveDigest(filter, s string) (types.Digest, error) {
	var known []types.Digest
	for _, f := range h.cfg.Controller.Status() {
		if f.Name == filter {
			known = append(known, f.Stable, f.Candidate)
			for _, b := range f.Bad {
				known = append(known, b.Digest)
			}
		}
	}
	versions, err := h.cfg.History.History(filter)
	if err != nil {
		return "", err
	}
	for _, v := range versions {
		known = append(known, v.Digest)
	}
	return api.ResolveDigest(s, slices.DeleteFunc(known, func(d types.Digest) bool { return d == "" }))
}

// commandError is the status code and message for a refused command. The
// message names the action and filter once, then the reason, whatever
// wrapping the error picked up on its way out of the reconcile loop, so the
// CLI can print it as it is: "pause logging: no candidate is rolling out".
func commandError(cmd controller.Command, err error) (int, string) {
	what := string(cmd.Action) + " " + cmd.Filter
	if cmd.Digest != "" {
		what += " " + cmd.Digest.Short()
	}
	for _, known := range []struct {
		err  error
		code int
	}{
		{controller.ErrUnknownFilter, http.StatusNotFound},
		{controller.ErrUnknownAction, http.StatusNotFound},
		{rollout.ErrNoCandidate, http.StatusConflict},
		{rollout.ErrPaused, http.StatusConflict},
		{rollout.ErrNotPaused, http.StatusConflict},
		{rollout.ErrNotBad, http.StatusConflict},
	} {
		if errors.Is(err, known.err) {
			return known.code, what + ": " + known.err.Error()
		}
	}
	return http.StatusConflict, err.Error()
}

// plan takes a whole config file (YAML) and answers with the per-node
// changes it would cause.
func (h *handler) plan(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPlanBytes))
	if err != nil {
		writeBodyError(w, err)
		return
	}
	cfg, err := config.Parse(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, api.Error{Error: err.Error()})
		return
	}
	changes, err := h.cfg.Controller.DryRun(r.Context(), cfg)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, api.Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, wirePlan(changes, candidates(h.cfg.Controller.Status())))
}

func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxCommandBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// writeBodyError answers a request whose body could not be read or
// decoded: 413 over the size limit, 408 when the client was too slow to
// send it (the server's ReadTimeout), 400 otherwise.
func writeBodyError(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, api.Error{Error: fmt.Sprintf("admin: request body over %d bytes", tooLarge.Limit)})
	case errors.As(err, &netErr) && netErr.Timeout():
		writeJSON(w, http.StatusRequestTimeout, api.Error{Error: "admin: request body not received in time"})
	default:
		writeJSON(w, http.StatusBadRequest, api.Error{Error: "admin: " + err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
