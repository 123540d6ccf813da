package sdk

import (
	"strconv"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Level is a log level; it is also the "level" key's value in every line.
type Level string

// The levels Logger writes, each to the host log of the same level.
const (
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// Logger writes one JSON object per line to the host log (Envoy's wasm log),
// with the fixed keys "level", "filter" and "msg" first, then the fields in
// the order given. Lines are built with strconv, not fmt, so logging adds no
// weight to a module and no allocation beyond the line itself.
// The zero Logger logs with an empty filter name.
type Logger struct {
	filter string
}

// NewLogger returns a Logger whose lines carry "filter": filter.
func NewLogger(filter string) Logger { return Logger{filter: filter} }

// Field is one key/value in a log line; build it with String, Int, Uint or Bool.
type Field struct {
	key  string
	kind fieldKind
	str  string
	num  int64
	unum uint64
}

type fieldKind uint8

const (
	kindString fieldKind = iota
	kindInt
	kindUint
	kindBool
)

// String is a string field.
func String(key, value string) Field { return Field{key: key, kind: kindString, str: value} }

// Int is an integer field.
func Int(key string, value int64) Field { return Field{key: key, kind: kindInt, num: value} }

// Uint is an unsigned integer field (sizes, counts).
func Uint(key string, value uint64) Field { return Field{key: key, kind: kindUint, unum: value} }

// Bool is a boolean field.
func Bool(key string, value bool) Field {
	f := Field{key: key, kind: kindBool}
	if value {
		f.num = 1
	}
	return f
}

// Err is the field "error" with err's message; a nil err gives an empty string.
func Err(err error) Field {
	if err == nil {
		return String("error", "")
	}
	return String("error", err.Error())
}

// Debug logs at debug level.
func (l Logger) Debug(msg string, fields ...Field) {
	proxywasm.LogDebug(l.Line(LevelDebug, msg, fields...))
}

// Info logs at info level.
func (l Logger) Info(msg string, fields ...Field) {
	proxywasm.LogInfo(l.Line(LevelInfo, msg, fields...))
}

// Warn logs at warn level.
func (l Logger) Warn(msg string, fields ...Field) {
	proxywasm.LogWarn(l.Line(LevelWarn, msg, fields...))
}

// Error logs at error level.
func (l Logger) Error(msg string, fields ...Field) {
	proxywasm.LogError(l.Line(LevelError, msg, fields...))
}

// Line renders the JSON line Logger would write, without writing it.
func (l Logger) Line(level Level, msg string, fields ...Field) string {
	n := 48 + len(l.filter) + len(msg)
	for i := range fields {
		n += len(fields[i].key) + len(fields[i].str) + 24
	}
	b := l.appendHead(make([]byte, 0, n), level, msg)
	for i := range fields {
		f := &fields[i]
		b = appendKey(b, f.key)
		switch f.kind {
		case kindString:
			b = jsonv.AppendString(b, f.str)
		case kindInt:
			b = strconv.AppendInt(b, f.num, 10)
		case kindUint:
			b = strconv.AppendUint(b, f.unum, 10)
		case kindBool:
			b = strconv.AppendBool(b, f.num == 1)
		}
	}
	b = append(b, '}')
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is not touched again: no copy
}

// appendHead appends the line's opening brace and fixed keys.
func (l Logger) appendHead(b []byte, level Level, msg string) []byte {
	b = append(b, `{"level":`...)
	b = jsonv.AppendString(b, string(level))
	b = append(b, `,"filter":`...)
	b = jsonv.AppendString(b, l.filter)
	b = append(b, `,"msg":`...)
	return jsonv.AppendString(b, msg)
}

// appendKey appends a field's separator and key.
func appendKey(b []byte, key string) []byte {
	b = append(b, ',')
	b = jsonv.AppendString(b, key)
	return append(b, ':')
}

// Key is a field name rendered as JSON once (NewKey), for Entry: a line
// written on every request then copies its keys instead of escaping them
// each time (a byte loop costs nanoseconds a byte in a wasm guest). The
// zero Key is no key: make keys with NewKey.
type Key struct {
	json string // `,"name":`
}

// NewKey renders name as an Entry key. Not inlined: keys are made once,
// and an inlined copy per key would weigh on a module.
//
//go:noinline
func NewKey(name string) Key { return Key{json: string(appendKey(nil, name))} }

// Entry is a log line built in place: Begin, then a method per field, then
// Write. It keeps its buffer from line to line, so a line written on every
// request allocates nothing, where Logger.Info and friends allocate the
// fields and the line each time; allocation is dear in a wasm guest (the
// memory is zeroed, then collected). The line is the same JSON as Logger's.
// The zero Entry is ready to use; keep one per plugin. Not safe for
// concurrent use, like everything in a VM.
type Entry struct {
	b     []byte
	level Level
}

// Begin starts a line of l at level with msg, dropping the previous one.
func (e *Entry) Begin(l Logger, level Level, msg string) *Entry {
	e.level = level
	e.b = l.appendHead(e.b[:0], level, msg)
	return e
}

// String adds a string field.
func (e *Entry) String(k Key, value string) *Entry {
	e.b = jsonv.AppendString(append(e.b, k.json...), value)
	return e
}

// Int adds an integer field.
func (e *Entry) Int(k Key, value int64) *Entry {
	e.b = strconv.AppendInt(append(e.b, k.json...), value, 10)
	return e
}

// Uint adds an unsigned integer field.
func (e *Entry) Uint(k Key, value uint64) *Entry {
	e.b = strconv.AppendUint(append(e.b, k.json...), value, 10)
	return e
}

// maxKeptLine is the largest buffer an Entry keeps after writing: one huge
// line (a 64 KB header value, escaped) should not stay in memory for good.
const maxKeptLine = 16 << 10

// Write closes the line and writes it to the host log at its level.
func (e *Entry) Write() {
	e.b = append(e.b, '}')
	writeLine(e.level, e.b)
	if cap(e.b) > maxKeptLine {
		e.b = nil
	}
}
