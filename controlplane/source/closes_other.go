//go:build !linux

package source

// closeWatch is Linux-only (inotify's IN_CLOSE_WRITE and IN_MOVED_TO);
// elsewhere every wait lasts the quiet period.
type closeWatch struct{}

func watchCloses(string, chan<- closed) *closeWatch { return nil }

func (*closeWatch) rewatch() {}

func (*closeWatch) stop() {}
