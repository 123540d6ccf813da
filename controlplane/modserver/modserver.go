package modserver

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// PathPrefix is the URL path under which modules are served.
const PathPrefix = "/modules/sha256/"

// Modules finds a module's file. The store implements it.
type Modules interface {
	// ModulePath returns the file holding the module with digest d, or
	// ok false when there is none. Safe for concurrent use.
	ModulePath(d types.Digest) (path string, ok bool)
}

// New returns the handler for PathPrefix + hex. It is safe for concurrent
// use. It does not re-hash files on every request: the store wrote them
// content-addressed, and Envoy verifies the sha256 of what it fetches.
func New(modules Modules, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	return &handler{modules: modules, log: log.Named("modserver")}
}

type handler struct {
	modules Modules
	log     *zap.Logger
}

var _ http.Handler = (*handler)(nil)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hex, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	// The path holds the bare hex; ParseDigest would also accept "sha256:HEX".
	d, err := types.ParseDigest(hex)
	if err != nil || string(d) != hex {
		http.Error(w, "modserver: "+types.ErrBadDigest.Error(), http.StatusBadRequest)
		return
	}
	path, ok := h.modules.ModulePath(d)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Removed between lookup and open (garbage collection): a miss.
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.log.Error("open module", zap.String("digest", string(d)), zap.Error(err))
		http.Error(w, "modserver: cannot read module", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	hdr := w.Header()
	hdr.Set("ETag", `"sha256:`+string(d)+`"`)
	hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	hdr.Set("Content-Type", "application/wasm")
	// ServeContent answers If-None-Match (304), If-Match and Range from the
	// ETag set above; a zero modtime leaves Last-Modified out, as the
	// content never changes.
	http.ServeContent(w, r, "", time.Time{}, f)
}
