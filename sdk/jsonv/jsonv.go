// Package jsonv parses JSON into a small tree of values and writes it back,
// for filter code running inside Envoy. It exists because encoding/json adds
// about 1.2 MB to a Go proxy-wasm module (the budget for a whole filter is
// 2.5 MB), while filters only need two things: decoding their configuration
// (sdk.DecodeConfig builds on Parse) and editing JSON bodies field by field.
//
// Objects keep their members in document order, so a body that is parsed,
// edited and written back changes only where it was edited (whitespace is
// not kept: output is compact). Numbers keep their literal text, so they
// round-trip exactly (Int and Float convert them). Parse is strict RFC 8259
// and bounds nesting depth; its strings share the input's memory rather
// than copying it, so the input must stay unmodified while they are used.
// Nothing here is safe for concurrent mutation; a proxy-wasm VM is
// single-threaded anyway.
package jsonv

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Kind is the JSON type of a Value.
type Kind uint8

// The JSON types. The zero Kind is Null.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"null", "boolean", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is one JSON value. Which fields mean something depends on Kind:
// Str is the text of a String and the literal of a Number, Bool a Bool's
// value, Items an Array's elements, Members an Object's members in order.
type Value struct {
	Kind    Kind
	Str     string
	Bool    bool
	Items   []Value
	Members []Member
}

// Member is one key/value pair of an Object.
type Member struct {
	Key   string
	Value Value
}

// MaxDepth bounds nesting: deeper input is an error rather than a deep
// recursion on a body a client controls.
const MaxDepth = 256

// Parse errors; the returned error wraps one of these with the byte offset.
var (
	ErrSyntax = errors.New("invalid JSON")
	ErrDepth  = errors.New("JSON nested too deeply")
)

// SyntaxError says where parsing stopped.
type SyntaxError struct {
	Offset int
	Msg    string
	Err    error
}

func (e *SyntaxError) Error() string {
	return e.Err.Error() + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// Parse parses exactly one JSON value (surrounding whitespace allowed).
// The Value's strings share memory with data: data must not be modified
// while the Value (or any string taken from it) is in use.
func Parse(data []byte) (Value, error) {
	p := parser{data: data}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.pos != len(p.data) {
		return Value{}, p.fail("trailing data after the value")
	}
	return v, nil
}

type parser struct {
	data []byte
	pos  int
}

// view is data[from:to] as a string without a copy: Parse's contract is
// that data is not modified while its Value is in use. Copying every key and
// value instead would double the allocations of a parse, which in a Go wasm
// guest are what a request pays for most.
func (p *parser) view(from, to int) string {
	if from == to {
		return ""
	}
	return unsafe.String(&p.data[from], to-from)
}

func (p *parser) fail(msg string) error {
	return &SyntaxError{Offset: p.pos, Msg: msg, Err: ErrSyntax}
}

func (p *parser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, &SyntaxError{Offset: p.pos, Msg: "more than " + strconv.Itoa(MaxDepth) + " levels", Err: ErrDepth}
	}
	if p.pos >= len(p.data) {
		return Value{}, p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		return Value{Kind: String, Str: s}, err
	case c == 't':
		return Value{Kind: Bool, Bool: true}, p.literal("true")
	case c == 'f':
		return Value{Kind: Bool}, p.literal("false")
	case c == 'n':
		return Value{}, p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return Value{}, p.fail("unexpected byte 0x" + string([]byte{hexDigits[p.data[p.pos]>>4], hexDigits[p.data[p.pos]&0xf]}))
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.fail("invalid literal")
	}
	p.pos += len(word)
	return nil
}

func (p *parser) object(depth int) (Value, error) {
	p.pos++ // {
	v := Value{Kind: Object, Members: make([]Member, 0, 4)}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.fail("expected a string key")
		}
		key, err := p.string()
		if err != nil {
			return Value{}, err
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.fail("expected ':' after key")
		}
		p.pos++
		p.space()
		elem, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Members = append(v.Members, Member{Key: key, Value: elem})
		p.space()
		if p.pos >= len(p.data) {
			return Value{}, p.fail("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return v, nil
		default:
			return Value{}, p.fail("expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(depth int) (Value, error) {
	p.pos++ // [
	v := Value{Kind: Array, Items: make([]Value, 0, 4)}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		elem, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.Items = append(v.Items, elem)
		p.space()
		if p.pos >= len(p.data) {
			return Value{}, p.fail("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return v, nil
		default:
			return Value{}, p.fail("expected ',' or ']' in array")
		}
	}
}

func (p *parser) number() (Value, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.digits() == 0:
		return Value{}, p.fail("invalid number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return Value{}, p.fail("invalid number: no digits after '.'")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return Value{}, p.fail("invalid number: no digits in exponent")
		}
	}
	return Value{Kind: Number, Str: p.view(start, p.pos)}, nil
}

func (p *parser) digits() int {
	n := 0
	for p.pos < len(p.data) && '0' <= p.data[p.pos] && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// string parses a string literal at p.pos (the opening quote). Unescaped
// runs are copied in one piece; b stays nil until the first escape.
func (p *parser) string() (string, error) {
	p.pos++
	start := p.pos
	var b []byte
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			if b == nil { // no escapes: the text is the input's bytes
				s := p.view(start, p.pos)
				if !utf8.ValidString(s) {
					return "", p.fail("invalid UTF-8 in string")
				}
				p.pos++
				return s, nil
			}
			b = append(b, p.data[start:p.pos]...)
			if !utf8.Valid(b) {
				return "", p.fail("invalid UTF-8 in string")
			}
			p.pos++
			return unsafe.String(unsafe.SliceData(b), len(b)), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c != '\\':
			p.pos++
			continue
		}
		b = append(b, p.data[start:p.pos]...)
		p.pos++ // backslash
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r = p.lowSurrogate(r)
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.fail("invalid escape")
		}
		start = p.pos
	}
	return "", p.fail("unterminated string")
}

// lowSurrogate completes the high surrogate hi with a following \uDC00-DFFF
// escape; anything else makes hi U+FFFD and is left to be parsed on its own.
func (p *parser) lowSurrogate(hi rune) rune {
	if len(p.data)-p.pos < 6 || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
		return utf8.RuneError
	}
	save := p.pos
	p.pos += 2
	lo, ok := p.hex4()
	if r := utf16.DecodeRune(hi, lo); ok && r != utf8.RuneError {
		return r
	}
	p.pos = save
	return utf8.RuneError
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.pos += 4
	return r, true
}

// Append appends v as compact JSON.
func (v *Value) Append(b []byte) []byte {
	switch v.Kind {
	case Null:
		return append(b, "null"...)
	case Bool:
		return strconv.AppendBool(b, v.Bool)
	case Number:
		return append(b, v.Str...)
	case String:
		return AppendString(b, v.Str)
	case Array:
		b = append(b, '[')
		for i := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.Items[i].Append(b)
		}
		return append(b, ']')
	case Object:
		b = append(b, '{')
		for i := range v.Members {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, v.Members[i].Key)
			b = append(b, ':')
			b = v.Members[i].Value.Append(b)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// Bytes is v as compact JSON.
func (v *Value) Bytes() []byte { return v.Append(make([]byte, 0, 256)) }

const hexDigits = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// isPlain reports whether AppendString copies c as it is: printable ASCII
// but '"' and '\\'.
func isPlain(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }

// plain8 reports whether all 8 bytes of w are plain (see isPlain), with word arithmetic
// (the classic has-zero-byte / has-less-than tests). In a Go wasm guest a
// per-byte loop costs tens of nanoseconds a byte, so the strings of log
// lines and bodies are scanned a word at a time.
func plain8(w uint64) bool {
	ctl := (w - 0x20*ones) & ^w & highs // a byte < 0x20
	quote := w ^ '"'*ones
	slash := w ^ '\\'*ones
	special := (quote-ones) & ^quote & highs | (slash-ones) & ^slash & highs
	return (w&highs | ctl | special) == 0
}

// plainRun returns how many leading bytes of s[i:] plain8 vouches for, in
// whole words.
func plainRun(s string, i int) int {
	start := i
	p := unsafe.Pointer(unsafe.StringData(s))
	for i+8 <= len(s) && plain8(*(*uint64)(unsafe.Add(p, i))) {
		i += 8
	}
	return i - start
}

// AppendString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD; control characters, U+2028 and U+2029 are escaped, so the result
// is always one line of valid JSON.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start, i := 0, 0
	for {
		i += plainRun(s, i)
		for i < len(s) && isPlain(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		b = append(b, s[start:i]...)
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
