package admin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// tokenFile is an admin token kept in a file, such as a Kubernetes Secret
// mounted as a volume. It is read again whenever the file changes, so a
// rotated Secret takes effect without a restart; surrounding whitespace
// (the newline of `echo TOKEN > file`) is not part of the token.
type tokenFile struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	token   []byte
}

// errNoToken: the token file is empty.
var errNoToken = errors.New("empty")

// read returns the token, re-reading the file if it changed. An unreadable
// or empty file is an error: the API then refuses every call.
func (t *tokenFile) read() ([]byte, error) {
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil, fmt.Errorf("admin token file: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != nil && fi.ModTime().Equal(t.modTime) && fi.Size() == t.size {
		return t.token, nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("admin token file: %w", err)
	}
	token := bytes.TrimSpace(b)
	if len(token) == 0 {
		return nil, fmt.Errorf("admin token file %s: %w", t.path, errNoToken)
	}
	t.token, t.modTime, t.size = token, fi.ModTime(), fi.Size()
	return t.token, nil
}

// CheckToken reads cfg's token file, if it has one, so that a control
// plane whose file is missing or empty fails at start, naming the file,
// rather than serving an API that refuses every call.
func CheckToken(cfg Config) error {
	if cfg.TokenFile == "" {
		return nil
	}
	_, err := (&tokenFile{path: cfg.TokenFile}).read()
	return err
}
