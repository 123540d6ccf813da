package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Store is the control plane's persistent memory. All methods are safe for
// concurrent use by many goroutines; writes are durable when they return.
type Store interface {
	// PutModule stores b under its sha256 and returns the digest. It is
	// idempotent: storing bytes that are already there (and intact) writes
	// nothing; a stored copy that fails its digest check is replaced.
	PutModule(b []byte) (types.Digest, error)
	// StageModule does the slow part of PutModule (writing b and syncing
	// it to disk) before the caller has decided to store b: under a
	// temporary name that Module, ModulePath and Prune do not see, so
	// nothing can serve it yet. Staged.Commit then stores it as PutModule
	// would, at the cost of a rename; Staged.Discard drops it. Call one of
	// them; a staged file that a crash left behind is removed at Open.
	StageModule(b []byte) (*Staged, error)
	// Module returns the bytes stored under d after checking their digest.
	// A miss is (nil, false, nil); a corrupted file is ErrCorrupt naming
	// the path.
	Module(d types.Digest) ([]byte, bool, error)
	// ModulePath returns the path of a stored module for the module server
	// (http.ServeContent), ok false on a miss. The file is checked against
	// its digest the first time this process hands it out; a file that
	// fails is reported as a miss and logged. Envoy checks the sha256 of
	// what it fetches as well.
	ModulePath(d types.Digest) (string, bool)
	// AddVersion appends v to v.Filter's history. The module must already
	// be stored (ErrModuleMissing otherwise). If the newest entry has the
	// same digest, nothing is appended, so a source reporting the same
	// bytes twice does not grow the history.
	AddVersion(v types.Version) error
	// History returns a filter's versions, oldest first; empty for an
	// unknown filter.
	History(filter string) ([]types.Version, error)
	// AddAction appends a to a.Filter's record of operator actions. Unlike
	// AddVersion it never skips a repeat: two pauses are two actions.
	AddAction(a Action) error
	// Actions returns a filter's operator actions, oldest first; empty for
	// a filter without any.
	Actions(filter string) ([]Action, error)
	// Filters returns every filter with a history, sorted by name.
	Filters() ([]string, error)
	// State returns a filter's rollout state; ok false if none was set.
	State(filter string) (types.FilterState, bool, error)
	// SetState replaces a filter's rollout state in one transaction.
	SetState(st types.FilterState) error
	// Prune deletes every stored module that no filter keeps, and returns
	// their digests. A filter keeps the modules of its newest keep
	// versions (distinct digests, newest history entries first) and those
	// pinned names for it (its stable, candidate and bad-marked versions);
	// a module several filters share stays while any of them keeps it, and
	// a module no history names goes. History records stay: a pruned
	// version is still in History, its module a miss. The caller must not
	// store modules concurrently (one would look unkept between PutModule
	// and AddVersion): the controller's loop does both.
	Prune(keep int, pinned map[string][]types.Digest) ([]types.Digest, error)
	// Close releases the database and its lock. Versions and state cannot
	// be read or written after Close.
	Close() error
}

// Sentinel errors, for errors.Is.
var (
	// ErrCorrupt: a stored module's bytes do not hash to its name.
	ErrCorrupt = errors.New("stored module does not match its digest")
	// ErrModuleMissing: AddVersion names a digest whose bytes are not stored.
	ErrModuleMissing = errors.New("module not in store")
	// ErrNoFilter: a version or state without a filter name.
	ErrNoFilter = errors.New("filter name is empty")
)

const (
	dbFile     = "state.db"
	modulesDir = "modules/sha256"
	// tmpPrefix marks files being written; any left at Open are from a
	// crash and are removed. Digests never start with '.'.
	tmpPrefix = ".tmp-"
	// lockTimeout bounds how long Open waits for another process holding
	// state.db before failing.
	lockTimeout = 2 * time.Second
)

var (
	bucketHistory = []byte("history")
	bucketState   = []byte("state")
	bucketActions = []byte("actions")
)

// Action is something an operator did to a filter's rollout (a command, or
// a config reload that changed the filter's entry), kept beside its
// versions so the history says who moved a rollout, when and why, and not
// only what it ran.
type Action struct {
	Filter string `json:"filter"`
	// Action is the command (promote, pause, resume, rollback, clear-bad)
	// or "reload".
	Action string `json:"action"`
	// Actor is who asked, as the client said (the admin API does not
	// authenticate people, only its token).
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	// Digest is the version acted on, when there is one.
	Digest types.Digest `json:"digest,omitempty"`
	At     time.Time    `json:"at"`
}

type fileStore struct {
	db      *bolt.DB
	modules string
	log     *zap.Logger
	// verified holds digests whose files ModulePath has checked.
	verified sync.Map
}

var _ Store = (*fileStore)(nil)

// Open opens (creating if needed) the store in dir. It removes temp files
// left by a crash. Only one process may hold a store open at a time.
func Open(dir string, log *zap.Logger) (Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	modules := filepath.Join(dir, filepath.FromSlash(modulesDir))
	if err := os.MkdirAll(modules, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dbPath := filepath.Join(dir, dbFile)
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", dbPath, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketHistory, bucketState, bucketActions} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", dbPath, err)
	}
	s := &fileStore{db: db, modules: modules, log: log}
	if err := s.removeTemps(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// removeTemps deletes half-written modules from a previous run. It runs
// while this process holds the database lock, so no other writer exists.
func (s *fileStore) removeTemps() error {
	entries, err := os.ReadDir(s.modules)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		p := filepath.Join(s.modules, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: removing leftover %s: %w", p, err)
		}
		s.log.Info("removed leftover temp file", zap.String("path", p))
	}
	return nil
}

func (s *fileStore) path(d types.Digest) string { return filepath.Join(s.modules, string(d)) }

func (s *fileStore) PutModule(b []byte) (types.Digest, error) {
	d := types.DigestOf(b)
	if s.intact(d) {
		return d, nil
	}
	st, err := s.stage(b, d)
	if err != nil {
		return "", err
	}
	if err := st.rename(); err != nil {
		return "", err
	}
	return d, nil
}

// intact reports whether module d is stored and its file hashes to d; a
// stored copy that does not is logged, to be replaced.
func (s *fileStore) intact(d types.Digest) bool {
	err := verifyFile(s.path(d), d)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("replacing bad stored module", zap.String("digest", string(d)), zap.Error(err))
	}
	return err == nil
}

// Staged is a module StageModule wrote, not stored yet.
type Staged struct {
	s   *fileStore
	tmp string
	d   types.Digest
}

func (s *fileStore) StageModule(b []byte) (*Staged, error) {
	return s.stage(b, types.DigestOf(b))
}

func (s *fileStore) stage(b []byte, d types.Digest) (*Staged, error) {
	tmp, err := s.writeTemp(b)
	if err != nil {
		return nil, fmt.Errorf("store: writing %s: %w", s.path(d), err)
	}
	return &Staged{s: s, tmp: tmp, d: d}, nil
}

// Digest is the staged module's digest.
func (st *Staged) Digest() types.Digest { return st.d }

// Commit stores the staged module, as PutModule would have: a copy that is
// already stored and intact stays, and the staged one goes.
func (st *Staged) Commit() error {
	if st.s.intact(st.d) {
		st.Discard()
		return nil
	}
	return st.rename()
}

// Discard removes the staged module.
func (st *Staged) Discard() { _ = os.Remove(st.tmp) }

// rename moves the staged file over the module's path, then syncs the
// directory so the rename survives a crash. Readers see either no file or
// the whole file.
func (st *Staged) rename() error {
	p := st.s.path(st.d)
	if err := os.Rename(st.tmp, p); err != nil {
		st.Discard()
		return fmt.Errorf("store: writing %s: %w", p, err)
	}
	if err := syncDir(st.s.modules); err != nil {
		return fmt.Errorf("store: writing %s: %w", p, err)
	}
	st.s.verified.Store(st.d, true)
	return nil
}

// writeTemp writes b to a temp file in the modules directory, syncs it and
// returns its name.
func (s *fileStore) writeTemp(b []byte) (tmp string, err error) {
	f, err := os.CreateTemp(s.modules, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	tmp = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return "", err
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *fileStore) Module(d types.Digest) ([]byte, bool, error) {
	if _, err := types.ParseDigest(string(d)); err != nil {
		return nil, false, fmt.Errorf("store: %q: %w", d, err)
	}
	p := s.path(d)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: %w", err)
	}
	if got := types.DigestOf(b); got != d {
		return nil, false, fmt.Errorf("store: %s: %w (content hashes to %s)", p, ErrCorrupt, got.Short())
	}
	return b, true, nil
}

func (s *fileStore) ModulePath(d types.Digest) (string, bool) {
	if _, err := types.ParseDigest(string(d)); err != nil {
		return "", false
	}
	p := s.path(d)
	if _, ok := s.verified.Load(d); ok {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		s.verified.Delete(d)
	}
	err := verifyFile(p, d)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		s.log.Error("stored module fails its check", zap.String("digest", string(d)), zap.Error(err))
		return "", false
	}
	s.verified.Store(d, true)
	return p, true
}

// verifyFile hashes the file at p and compares with d. A missing file is
// fs.ErrNotExist.
func verifyFile(p string, d types.Digest) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != string(d) {
		return fmt.Errorf("store: %s: %w (content hashes to %s)", p, ErrCorrupt, types.Digest(got).Short())
	}
	return nil
}

func (s *fileStore) AddVersion(v types.Version) error {
	if v.Filter == "" {
		return fmt.Errorf("store: version %s: %w", v.Digest.Short(), ErrNoFilter)
	}
	if _, err := types.ParseDigest(string(v.Digest)); err != nil {
		return fmt.Errorf("store: %s: %w", v.Filter, err)
	}
	if _, err := os.Stat(s.path(v.Digest)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: %s: version %s: %w", v.Filter, v.Digest.Short(), ErrModuleMissing)
		}
		return fmt.Errorf("store: %s: %w", v.Filter, err)
	}
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %s: %w", v.Filter, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		hist, err := tx.Bucket(bucketHistory).CreateBucketIfNotExists([]byte(v.Filter))
		if err != nil {
			return err
		}
		if _, last := hist.Cursor().Last(); last != nil {
			var newest types.Version
			if err := json.Unmarshal(last, &newest); err != nil {
				return err
			}
			if newest.Digest == v.Digest {
				return nil
			}
		}
		seq, err := hist.NextSequence()
		if err != nil {
			return err
		}
		return hist.Put(binary.BigEndian.AppendUint64(nil, seq), val)
	})
	if err != nil {
		return fmt.Errorf("store: %s: adding version %s: %w", v.Filter, v.Digest.Short(), err)
	}
	return nil
}

func (s *fileStore) History(filter string) ([]types.Version, error) {
	var out []types.Version
	err := s.db.View(func(tx *bolt.Tx) error {
		hist := tx.Bucket(bucketHistory).Bucket([]byte(filter))
		if hist == nil {
			return nil
		}
		return hist.ForEach(func(_, val []byte) error {
			var v types.Version
			if err := json.Unmarshal(val, &v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: history: %w", filter, err)
	}
	return out, nil
}

func (s *fileStore) AddAction(a Action) error {
	if a.Filter == "" {
		return fmt.Errorf("store: action %s: %w", a.Action, ErrNoFilter)
	}
	val, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: %s: %w", a.Filter, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		log, err := tx.Bucket(bucketActions).CreateBucketIfNotExists([]byte(a.Filter))
		if err != nil {
			return err
		}
		seq, err := log.NextSequence()
		if err != nil {
			return err
		}
		return log.Put(binary.BigEndian.AppendUint64(nil, seq), val)
	})
	if err != nil {
		return fmt.Errorf("store: %s: adding action %s: %w", a.Filter, a.Action, err)
	}
	return nil
}

func (s *fileStore) Actions(filter string) ([]Action, error) {
	var out []Action
	err := s.db.View(func(tx *bolt.Tx) error {
		log := tx.Bucket(bucketActions).Bucket([]byte(filter))
		if log == nil {
			return nil
		}
		return log.ForEach(func(_, val []byte) error {
			var a Action
			if err := json.Unmarshal(val, &a); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: %s: actions: %w", filter, err)
	}
	return out, nil
}

func (s *fileStore) Filters() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		// bbolt iterates keys in byte order, which is name order.
		return tx.Bucket(bucketHistory).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: filters: %w", err)
	}
	return out, nil
}

func (s *fileStore) State(filter string) (types.FilterState, bool, error) {
	var (
		st types.FilterState
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		val := tx.Bucket(bucketState).Get([]byte(filter))
		if val == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(val, &st)
	})
	if err != nil {
		return types.FilterState{}, false, fmt.Errorf("store: %s: state: %w", filter, err)
	}
	return st, ok, nil
}

func (s *fileStore) SetState(st types.FilterState) error {
	if st.Filter == "" {
		return fmt.Errorf("store: state: %w", ErrNoFilter)
	}
	val, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("store: %s: state: %w", st.Filter, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketState).Put([]byte(st.Filter), val)
	})
	if err != nil {
		return fmt.Errorf("store: %s: state: %w", st.Filter, err)
	}
	return nil
}

func (s *fileStore) Prune(keep int, pinned map[string][]types.Digest) ([]types.Digest, error) {
	kept := map[types.Digest]bool{}
	for _, ds := range pinned {
		for _, d := range ds {
			kept[d] = true
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketHistory)
		return all.ForEachBucket(func(filter []byte) error {
			newest := map[types.Digest]bool{}
			c := all.Bucket(filter).Cursor()
			for k, val := c.Last(); k != nil && len(newest) < keep; k, val = c.Prev() {
				var v types.Version
				if err := json.Unmarshal(val, &v); err != nil {
					return fmt.Errorf("%s: %w", filter, err)
				}
				newest[v.Digest], kept[v.Digest] = true, true
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: prune: history: %w", err)
	}
	entries, err := os.ReadDir(s.modules)
	if err != nil {
		return nil, fmt.Errorf("store: prune: %w", err)
	}
	var removed []types.Digest
	for _, e := range entries {
		d, err := types.ParseDigest(e.Name())
		if err != nil || kept[d] {
			continue // temp files are Open's; anything else is not ours
		}
		if err := os.Remove(s.path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("store: prune: %w", err)
		}
		s.verified.Delete(d)
		removed = append(removed, d)
	}
	if len(removed) > 0 {
		if err := syncDir(s.modules); err != nil {
			return removed, fmt.Errorf("store: prune: %w", err)
		}
	}
	return removed, nil
}

func (s *fileStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
