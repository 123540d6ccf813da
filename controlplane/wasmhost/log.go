package wasmhost

import (
	"bytes"
	"strings"
)

// log handles one guest log line. Must hold p.mu.
func (p *Plugin) log(level LogLevel, msg string) {
	if level >= LogError && len(p.reasons) < maxReasons && msg != "" {
		p.reasons = append(p.reasons, msg)
	}
	if p.cfg.Log != nil && level >= p.cfg.LogLevel {
		p.cfg.Log(level, msg)
	}
}

// logs reports whether log would do anything with a line at level.
func (p *Plugin) logs(level LogLevel) bool {
	return level >= LogError && len(p.reasons) < maxReasons ||
		p.cfg.Log != nil && level >= p.cfg.LogLevel
}

// logStderr logs a line of the guest's stderr at error level, as Envoy
// does. A Go guest that panics prints the message, then a traceback; the
// traceback is logged but kept out of error messages.
func (p *Plugin) logStderr(line string) {
	if strings.HasPrefix(line, "goroutine ") {
		p.traceback = true
	}
	if p.traceback {
		if p.cfg.Log != nil && LogError >= p.cfg.LogLevel {
			p.cfg.Log(LogError, line)
		}
		return
	}
	p.log(LogError, line)
}

// lineWriter turns a guest's stdout or stderr into log lines. It is only
// written from the goroutine running the guest, under the plugin's lock.
type lineWriter struct {
	buf []byte
	log func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// flush logs a last line without newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.log(string(w.buf))
		w.buf = w.buf[:0]
	}
}
