package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
)

// errUnsettled means the file changed while it was being read; the caller
// waits for another quiet period.
var errUnsettled = errors.New("file changed while read")

// readSettled reads the regular file at path, following symlinks, if it is
// at most limit bytes and did not change while it was read. It never opens
// a file that is not regular (opening a FIFO would block) and never reads
// one that is too large. A missing file is fs.ErrNotExist; a file that
// moved during the read is errUnsettled.
func readSettled(path string, limit int64) ([]byte, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
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

// readOptional is readSettled for files that may be absent: absence is
// (nil, nil).
func readOptional(path string, limit int64) ([]byte, error) {
	b, err := readSettled(path, limit)
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
