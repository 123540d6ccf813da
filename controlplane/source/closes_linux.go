package source

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// closeWatch reports files in the watched directory that a writer closed
// or that were renamed into it, through inotify's IN_CLOSE_WRITE and
// IN_MOVED_TO. fsnotify v1.10 receives those from the kernel but does not
// export them (its close-write op is unexported and a rename-in is reported
// as a Create, like a file that was just opened), so this watch sits beside
// it on its own inotify instance. Its reports only shorten a wait; every
// change is still seen, and debounced, through fsnotify.
//
// Its methods other than read belong to Dir's Start goroutine.
type closeWatch struct {
	f *os.File
	// fd is f's descriptor, kept apart because File.Fd would switch it to
	// blocking mode, and Close could no longer wake the reader.
	fd   int
	dir  string
	wd   int // -1: not watching
	done chan struct{}
	wg   sync.WaitGroup
}

// watchCloses starts reporting closes in dir on out, or returns nil when
// inotify cannot be used (then only the quiet period ends a wait).
func watchCloses(dir string, out chan<- closed) *closeWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	// A non-blocking descriptor makes the File pollable: Read parks in the
	// runtime's poller and Close wakes it.
	w := &closeWatch{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, dir: dir, wd: -1, done: make(chan struct{})}
	w.rewatch()
	w.wg.Go(func() { w.read(out) })
	return w
}

// rewatch (re)attaches the watch to whatever directory dir names now.
func (w *closeWatch) rewatch() {
	if w.wd >= 0 {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(w.wd)) // gone with its directory is fine
	}
	wd, err := unix.InotifyAddWatch(w.fd, w.dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
	if err != nil {
		wd = -1 // the directory is gone: Dir's rewatch comes back when it returns
	}
	w.wd = wd
}

// stop ends the reader and releases the inotify instance.
func (w *closeWatch) stop() {
	close(w.done)
	w.f.Close()
	w.wg.Wait()
}

// read turns inotify events into closed reports until stop. Each file is
// looked at as soon as its event is read, so that what Dir compares later
// is the file as the writer left it.
func (w *closeWatch) read(out chan<- closed) {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			// Closed by stop, or an error retrying would only repeat (the
			// poller already retries EINTR and EAGAIN): without reports,
			// waits last the quiet period, as on other platforms.
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			start := off + unix.SizeofInotifyEvent
			off = start + nameLen
			if mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO) == 0 || nameLen == 0 || off > n {
				continue // IN_IGNORED, IN_Q_OVERFLOW: fsnotify sees the same
			}
			name := unix.ByteSliceToString(buf[start:off])
			fi, err := os.Stat(filepath.Join(w.dir, name))
			if err != nil {
				continue // gone already: fsnotify reports that
			}
			select {
			case out <- closed{base: name, file: fi}:
			case <-w.done:
				return
			}
		}
	}
}
