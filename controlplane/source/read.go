package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Sentinel errors carried by SourceFailed events, for errors.Is.
var (
	// ErrNotRegular: the path is a directory, FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is over the size limit; it was not read.
	ErrTooLarge = errors.New("file too large")
	// ErrBadManifest: NAME.manifest.json is not a manifest.
	ErrBadManifest = errors.New("bad manifest")
	// ErrOutsideDir: the path is a symlink (or goes through one) that leads
	// outside the watched directory, and DirConfig.FollowOutsideSymlinks is
	// off. The file was not read.
	ErrOutsideDir = errors.New("symlink leads outside the watched directory")
)

// errUnsettled means the file changed while it was being read; the caller
// waits for another quiet period.
var errUnsettled = errors.New("file changed while read")

// readSettled reads the regular file at path, following symlinks, if it is
// at most limit bytes and did not change while it was read. It never opens
// a file that is not regular (opening a FIFO would block) and never reads
// one that is too large. When within is not empty, path must lead to a file
// inside the directory within once every symlink is followed (ErrOutsideDir
// otherwise); that is checked before the file is opened and again once it
// is open, so a link retargeted in between is caught. A missing file is
// fs.ErrNotExist; a file that moved during the read is errUnsettled.
func readSettled(path string, limit int64, within string) ([]byte, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if within != "" {
		if _, err := resolveWithin(path, within); err != nil {
			return nil, err
		}
	}
	if err := acceptable(before, limit); err != nil {
		return nil, err
	}
	// O_NONBLOCK: if a FIFO was swapped in since the Stat, open must not
	// wait for a writer. It changes nothing for regular files.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opened, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(before, opened) {
		return nil, errUnsettled
	}
	if within != "" {
		target, err := resolveWithin(path, within)
		if err != nil {
			return nil, err
		}
		if now, err := os.Stat(target); err != nil || !os.SameFile(opened, now) {
			return nil, errUnsettled // a link changed between the check and the open
		}
	}
	if err := acceptable(opened, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
	}
	after, err := f.Stat()
	if err != nil {
		return nil, err
	}
	now, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if after.Size() != int64(len(b)) || after.Size() != opened.Size() ||
		!after.ModTime().Equal(opened.ModTime()) || !os.SameFile(opened, now) {
		return nil, errUnsettled
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func acceptable(fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s", ErrNotRegular, fileType(fi.Mode()))
	}
	if fi.Size() > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size(), limit)
	}
	return nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.Type().String()
}

// resolveWithin returns where path leads once every symlink is followed,
// or ErrOutsideDir, naming that place, when it is not inside dir (whose own
// symlinks are followed too: the directory may be a link, and a ConfigMap
// volume's files are links into its "..data" directory).
func resolveWithin(path, dir string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(root, target); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return target, nil
	}
	if again, err := filepath.EvalSymlinks(dir); err != nil || again != root {
		return "", errUnsettled // the directory itself was swapped meanwhile
	}
	return "", fmt.Errorf("%w, to %s (limits.follow_outside_symlinks: true would follow it)", ErrOutsideDir, target)
}

// readOptional is readSettled for files that may be absent: absence is
// (nil, nil).
func readOptional(path string, limit int64, within string) ([]byte, error) {
	b, err := readSettled(path, limit, within)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// pathless drops the path an *fs.PathError repeats, since our messages
// name the file first.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
