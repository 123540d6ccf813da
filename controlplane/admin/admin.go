// Package admin is the control plane's HTTP admin API: health, Prometheus
// metrics, fleet status (which node runs which version) and rollout commands.
// The CLI's `status` and `rollout` subcommands are clients of this API.
//
// It binds loopback by default; when it is bound elsewhere the config must set
// admin_token, and every /api/ call then needs `Authorization: Bearer TOKEN`.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"

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

// Config wires the handler.
type Config struct {
	Controller Controller
	Fleet      fleet.Registry
	History    History
	Gatherer   prometheus.Gatherer
	// Token, when set, is required on every /api/ call.
	Token string
	Log   *zap.Logger
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

// NewHandler returns the admin API.
func NewHandler(cfg Config) http.Handler {
	h := &handler{cfg: cfg, log: cfg.Log.Named("admin")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
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
	if err := decodeOptional(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Error: "admin: " + err.Error()})
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
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, Error{Error: "admin: " + err.Error()})
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

func decodeOptional(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
