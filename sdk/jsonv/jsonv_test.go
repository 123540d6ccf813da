package jsonv_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

func TestParseRoundTrip(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "object order kept", in: `{"b":1,"a":2}`, want: `{"b":1,"a":2}`},
		{name: "whitespace dropped", in: " { \"a\" : [ 1 , 2 ] ,\n\"b\":{} }\t", want: `{"a":[1,2],"b":{}}`},
		{name: "numbers keep their text", in: `[0,-0,1.50,1e400,-12.5E-3,12345678901234567890]`, want: `[0,-0,1.50,1e400,-12.5E-3,12345678901234567890]`},
		{name: "literals", in: `[true,false,null]`, want: `[true,false,null]`},
		{name: "escapes decoded and re-escaped minimally", in: `"\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00"`, want: "\"\\\"\\\\/\\u0008\\u000c\\n\\r\\tAé😀\""},
		{name: "lone surrogate becomes U+FFFD", in: `"\ud800x"`, want: "\"\uFFFDx\""},
		{name: "surrogate followed by non-low escape", in: `"\ud800\u0041"`, want: "\"\uFFFDA\""},
		{name: "duplicate keys kept", in: `{"a":1,"a":2}`, want: `{"a":1,"a":2}`},
		{name: "empty containers", in: `[[],{}]`, want: `[[],{}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonv.Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(v.Bytes()); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{name: "empty", in: "", want: jsonv.ErrSyntax},
		{name: "trailing data", in: `{} {}`, want: jsonv.ErrSyntax},
		{name: "trailing comma", in: `[1,]`, want: jsonv.ErrSyntax},
		{name: "single quotes", in: `{'a':1}`, want: jsonv.ErrSyntax},
		{name: "leading zero", in: `01`, want: jsonv.ErrSyntax},
		{name: "bare dot", in: `1.`, want: jsonv.ErrSyntax},
		{name: "plus sign", in: `+1`, want: jsonv.ErrSyntax},
		{name: "raw newline in string", in: "\"a\nb\"", want: jsonv.ErrSyntax},
		{name: "bad escape", in: `"\x"`, want: jsonv.ErrSyntax},
		{name: "short unicode escape", in: `"\u12"`, want: jsonv.ErrSyntax},
		{name: "invalid UTF-8", in: "\"\xff\"", want: jsonv.ErrSyntax},
		{name: "unterminated string", in: `"abc`, want: jsonv.ErrSyntax},
		{name: "unterminated object", in: `{"a":1`, want: jsonv.ErrSyntax},
		{name: "missing colon", in: `{"a" 1}`, want: jsonv.ErrSyntax},
		{name: "truncated literal", in: `tru`, want: jsonv.ErrSyntax},
		{name: "NaN", in: `NaN`, want: jsonv.ErrSyntax},
		{name: "too deep", in: strings.Repeat("[", jsonv.MaxDepth+2) + strings.Repeat("]", jsonv.MaxDepth+2), want: jsonv.ErrDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jsonv.Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var se *jsonv.SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(tt.in) {
				t.Fatalf("error %v has no sane offset", err)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	const doc = `{"a":{"b":1,"c":[1]},"s":"x","d":1,"d":2}`
	str := func(s string) jsonv.Value { return jsonv.Value{Kind: jsonv.String, Str: s} }
	tests := []struct {
		name string
		edit func(v *jsonv.Value) bool
		want string
		ok   bool
	}{
		{name: "set existing nested", edit: func(v *jsonv.Value) bool { return v.SetAt([]string{"a", "b"}, str("y")) }, ok: true,
			want: `{"a":{"b":"y","c":[1]},"s":"x","d":1,"d":2}`},
		{name: "set creates objects", edit: func(v *jsonv.Value) bool { return v.SetAt([]string{"n", "m", "k"}, str("y")) }, ok: true,
			want: `{"a":{"b":1,"c":[1]},"s":"x","d":1,"d":2,"n":{"m":{"k":"y"}}}`},
		{name: "set through a non-object fails", edit: func(v *jsonv.Value) bool { return v.SetAt([]string{"s", "k"}, str("y")) },
			want: doc},
		{name: "set into an array fails", edit: func(v *jsonv.Value) bool { return v.SetAt([]string{"a", "c", "k"}, str("y")) },
			want: doc},
		{name: "set replaces first duplicate, drops the rest", edit: func(v *jsonv.Value) bool { return v.SetAt([]string{"d"}, str("y")) }, ok: true,
			want: `{"a":{"b":1,"c":[1]},"s":"x","d":"y"}`},
		{name: "delete nested", edit: func(v *jsonv.Value) bool { return v.DeleteAt([]string{"a", "b"}) }, ok: true,
			want: `{"a":{"c":[1]},"s":"x","d":1,"d":2}`},
		{name: "delete all duplicates", edit: func(v *jsonv.Value) bool { return v.DeleteAt([]string{"d"}) }, ok: true,
			want: `{"a":{"b":1,"c":[1]},"s":"x"}`},
		{name: "delete missing", edit: func(v *jsonv.Value) bool { return v.DeleteAt([]string{"a", "zz"}) }, want: doc},
		{name: "empty path", edit: func(v *jsonv.Value) bool { return v.SetAt(nil, str("y")) || v.DeleteAt(nil) }, want: doc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonv.Parse([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if ok := tt.edit(&v); ok != tt.ok {
				t.Errorf("reported %v, want %v", ok, tt.ok)
			}
			if got := string(v.Bytes()); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	v, _ := jsonv.Parse([]byte(doc))
	if got := v.At([]string{"a", "c"}); got == nil || got.Kind != jsonv.Array {
		t.Errorf("At(a.c) = %v", got)
	}
	if got := v.At([]string{"s", "x"}); got != nil {
		t.Errorf("At(s.x) = %v, want nil", got)
	}
}

// FuzzParse checks Parse against encoding/json: the same inputs are valid
// (apart from nesting beyond MaxDepth and invalid UTF-8, which encoding/json
// accepts and replaces), and what Parse writes back means the same thing.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `[1e5,-0.5,true]`, `"\ud83d\ude00"`, `{"a":1,}`, `01`, `"\ud800"`, "\"\xff\"", `[[[[]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := jsonv.Parse(data)
		stdOK := json.Valid(data)
		if err != nil {
			if stdOK && !errors.Is(err, jsonv.ErrDepth) && !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("Parse rejects what encoding/json accepts: %q: %v", data, err)
			}
			return
		}
		if !stdOK {
			t.Fatalf("Parse accepts what encoding/json rejects: %q", data)
		}
		out := v.Bytes()
		a, err := decodeStd(data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := decodeStd(out)
		if err != nil {
			t.Fatalf("output is not JSON: %q -> %q: %v", data, out, err)
		}
		if !reflect.DeepEqual(a, b) && !hasDuplicateKeys(v) {
			t.Fatalf("meaning changed: %q -> %q", data, out)
		}
	})
}

// decodeStd decodes with encoding/json, numbers kept as text.
func decodeStd(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func hasDuplicateKeys(v jsonv.Value) bool {
	seen := map[string]bool{}
	for _, m := range v.Members {
		if seen[m.Key] || hasDuplicateKeys(m.Value) {
			return true
		}
		seen[m.Key] = true
	}
	for _, it := range v.Items {
		if hasDuplicateKeys(it) {
			return true
		}
	}
	return false
}

// FuzzAppendString: any string, including invalid UTF-8, renders as one
// line of valid JSON that decodes back to the same text (bad bytes as U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\n\r\t\x00\x7f", "é\u2028\u2029", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := jsonv.AppendString(nil, s)
		if strings.ContainsAny(string(b), "\n\r") {
			t.Fatalf("raw line break in %q", b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not valid JSON: %q: %v", b, err)
		}
		if want := string([]rune(s)); got != want {
			t.Fatalf("round trip %q -> %q, want %q", s, got, want)
		}
		v, err := jsonv.Parse(b)
		if err != nil || v.Str != got {
			t.Fatalf("Parse(AppendString(%q)) = %q, %v", s, v.Str, err)
		}
	})
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		in      string
		i       int64
		intOK   bool
		f       float64
		floatOK bool
	}{
		{in: "0", i: 0, intOK: true, f: 0, floatOK: true},
		{in: "-0", i: 0, intOK: true, f: 0, floatOK: true},
		{in: "42", i: 42, intOK: true, f: 42, floatOK: true},
		{in: "-9223372036854775808", i: -9223372036854775808, intOK: true, f: -9223372036854775808, floatOK: true},
		{in: "9223372036854775808", f: 9223372036854775808, floatOK: true},
		{in: "99999999999999999999999", f: 1e23, floatOK: true},
		{in: "0.25", f: 0.25, floatOK: true},
		{in: "1.5e3", f: 1500, floatOK: true},
		{in: "-12.5E-3", f: -0.0125, floatOK: true},
		{in: "0.1", f: 0.1, floatOK: true},
		{in: "1e-30", f: 1e-30, floatOK: true},
		{in: "1e400"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := jsonv.Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if i, ok := v.Int(); ok != tt.intOK || i != tt.i {
				t.Errorf("Int() = %d, %v; want %d, %v", i, ok, tt.i, tt.intOK)
			}
			if f, ok := v.Float(); ok != tt.floatOK || (ok && f != tt.f) {
				t.Errorf("Float() = %g, %v; want %g, %v", f, ok, tt.f, tt.floatOK)
			}
		})
	}
	s := jsonv.Value{Kind: jsonv.String, Str: "1"}
	if _, ok := s.Int(); ok {
		t.Error("a string converted to an integer")
	}
	if _, ok := s.Float(); ok {
		t.Error("a string converted to a number")
	}
}

// FuzzNumbers checks Int against strconv.ParseInt, and Float against
// strconv.ParseFloat within a relative 1e-15 (Float's documented accuracy).
func FuzzNumbers(f *testing.F) {
	for _, s := range []string{"0", "-1", "123456789012345678901234", "0.000123", "1.5e-300", "7e22", "-0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := jsonv.Parse([]byte(s))
		if err != nil || v.Kind != jsonv.Number {
			return
		}
		i, ok := v.Int()
		wantI, errI := strconv.ParseInt(v.Str, 10, 64)
		if ok != (errI == nil) || (ok && i != wantI) {
			t.Fatalf("Int(%s) = %d, %v; strconv says %d, %v", s, i, ok, wantI, errI)
		}
		got, ok := v.Float()
		want, errF := strconv.ParseFloat(v.Str, 64)
		if errF != nil || !ok || want == 0 {
			return // out of range, or an exact zero either way
		}
		if d := (got - want) / want; d > 1e-15 || d < -1e-15 {
			t.Fatalf("Float(%s) = %v, strconv says %v", s, got, want)
		}
	})
}
