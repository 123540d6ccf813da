// Package admin is the control plane's HTTP admin API: health, Prometheus
// metrics, fleet status (which node runs which version) and rollout commands.
// The CLI's `status` and `rollout` subcommands are clients of this API.
//
// It binds loopback by default; when it is bound elsewhere the config must set
// admin_token, and every /api/ call then needs `Authorization: Bearer TOKEN`,
// as /metrics does unless admin_metrics_open. Request bodies have a size
// limit (413 beyond it) and NewServer's server a time limit on reading each
// request and on idle connections, so a client that holds the token still
// cannot pin memory or connections.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
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

// History is the store's view of past versions.
type History interface {
	History(filter string) ([]types.Version, error)
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
	Gatherer   prometheus.Gatherer
	// Token, when set, is required on every /api/ call, and on /metrics
	// unless MetricsOpen.
	Token string
	// MetricsOpen serves /metrics without Token (config admin_metrics_open).
	MetricsOpen bool
	// ReadTimeout and IdleTimeout are NewServer's limits; zero means
	// DefaultReadTimeout and DefaultIdleTimeout.
	ReadTimeout, IdleTimeout time.Duration
	Log                      *zap.Logger
}

// Status is the body of GET /api/v1/status.
type Status struct {
	Filters []controller.FilterStatus `json:"filters"`
	Nodes   []fleet.NodeStatus        `json:"nodes"`
}

// CommandRequest is the optional body of POST /api/v1/rollout/{filter}/{action}.
type CommandRequest struct {
	Digest types.Digest `json:"digest,omitempty"`
	Reason string       `json:"reason,omitempty"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
	if !cfg.MetricsOpen {
		metrics = h.auth(metrics)
	}
	mux.HandleFunc("GET /metrics", metrics)
	mux.HandleFunc("GET /api/v1/status", h.auth(h.status))
	mux.HandleFunc("GET /api/v1/filters/{filter}/history", h.auth(h.history))
	mux.HandleFunc("POST /api/v1/rollout/{filter}/{action}", h.auth(h.command))
	mux.HandleFunc("POST /api/v1/rollout/plan", h.auth(h.plan))
	return mux
}

type handler struct {
	cfg Config
	log *zap.Logger
}

func (h *handler) auth(next http.HandlerFunc) http.HandlerFunc {
	if h.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + h.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wasmfleet"`)
			writeJSON(w, http.StatusUnauthorized, Error{Error: "admin: missing or wrong bearer token"})
			return
		}
		next(w, r)
	}
}

func (h *handler) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Status{Filters: h.cfg.Controller.Status(), Nodes: h.cfg.Fleet.Nodes()})
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	versions, err := h.cfg.History.History(r.PathValue("filter"))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
		return
	}
	if len(versions) == 0 {
		writeJSON(w, http.StatusNotFound, Error{Error: "admin: no versions of filter " + r.PathValue("filter")})
		return
	}
	writeJSON(w, http.StatusOK, versions)
}

func (h *handler) command(w http.ResponseWriter, r *http.Request) {
	var req CommandRequest
	if err := decodeOptional(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	err := h.cfg.Controller.Do(r.Context(), controller.Command{
		Action: controller.Action(r.PathValue("action")), Filter: r.PathValue("filter"),
		Digest: req.Digest, Reason: req.Reason,
	})
	switch {
	case errors.Is(err, controller.ErrUnknownFilter):
		writeJSON(w, http.StatusNotFound, Error{Error: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusConflict, Error{Error: err.Error()})
	default:
		h.log.Info("rollout command", zap.String("filter", r.PathValue("filter")), zap.String("action", r.PathValue("action")))
		writeJSON(w, http.StatusOK, h.filterStatus(r.PathValue("filter")))
	}
}

func (h *handler) filterStatus(name string) *controller.FilterStatus {
	for _, f := range h.cfg.Controller.Status() {
		if f.Name == name {
			return &f
		}
	}
	return nil
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
		writeJSON(w, http.StatusBadRequest, Error{Error: err.Error()})
		return
	}
	changes, err := h.cfg.Controller.DryRun(r.Context(), cfg)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
		return
	}
	if changes == nil {
		changes = []rollout.Change{}
	}
	writeJSON(w, http.StatusOK, changes)
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
		writeJSON(w, http.StatusRequestEntityTooLarge, Error{Error: fmt.Sprintf("admin: request body over %d bytes", tooLarge.Limit)})
	case errors.As(err, &netErr) && netErr.Timeout():
		writeJSON(w, http.StatusRequestTimeout, Error{Error: "admin: request body not received in time"})
	default:
		writeJSON(w, http.StatusBadRequest, Error{Error: "admin: " + err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
