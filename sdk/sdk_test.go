package sdk_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

type testConfig struct {
	Name  string
	Rate  float64
	Items []string
	Inner struct{ Size int }
	Rules []rule
	Raw   jsonv.Value
	On    bool
}

type rule struct {
	Path  string
	Value jsonv.Value
}

var _ sdk.Decodable = (*testConfig)(nil)

func (c *testConfig) DecodeJSON(d *sdk.Decoder) {
	d.String("name", &c.Name)
	d.Float("rate", &c.Rate)
	d.Strings("items", &c.Items)
	d.Object("inner", func(d *sdk.Decoder) { d.Int("size", &c.Inner.Size) })
	sdk.List(d, "rules", &c.Rules, func(d *sdk.Decoder, r *rule) {
		d.String("path", &r.Path)
		d.Raw("value", &r.Value)
	})
	d.Raw("raw", &c.Raw)
	d.Bool("on", &c.On)
}

func (c testConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, sdk.Invalid("name", sdk.ErrRequired, ""))
	}
	if c.Rate < 0 || c.Rate > 1 {
		errs = append(errs, sdk.Invalid("rate", sdk.ErrOutOfRange, "must be in 0..1"))
	}
	for i, it := range c.Items {
		if it == "" {
			errs = append(errs, sdk.Invalid(sdk.Index("items", i), sdk.ErrInvalid, "empty"))
		}
	}
	return errors.Join(errs...)
}

func defaults() testConfig { return testConfig{Rate: 1, Items: []string{"default"}} }

func mustParse(s string) jsonv.Value {
	v, err := jsonv.Parse([]byte(s))
	if err != nil {
		panic(err)
	}
	return v
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     testConfig
		problems []string // field of each *FieldError, in order
		sentinel error
	}{
		{name: "defaults fill what is absent", in: `{"name":"a"}`, want: testConfig{Name: "a", Rate: 1, Items: []string{"default"}}},
		{name: "null is absent", in: `{"name":"a","items":null,"rate":null}`, want: testConfig{Name: "a", Rate: 1, Items: []string{"default"}}},
		{name: "values override defaults", in: ` {"name":"a","rate":0.5,"items":["x","y"],"inner":{"size":3},"on":true} `,
			want: func() testConfig {
				c := testConfig{Name: "a", Rate: 0.5, Items: []string{"x", "y"}, On: true}
				c.Inner.Size = 3
				return c
			}()},
		{name: "lists of objects and raw JSON", in: `{"name":"a","rules":[{"path":"a.b","value":{"k":[1]}},{"path":"c"}],"raw":[true]}`,
			want: testConfig{Name: "a", Rate: 1, Items: []string{"default"},
				Rules: []rule{{Path: "a.b", Value: mustParse(`{"k":[1]}`)}, {Path: "c"}}, Raw: mustParse(`[true]`)}},
		{name: "duplicate member: last wins", in: `{"name":"a","name":"b"}`, want: testConfig{Name: "b", Rate: 1, Items: []string{"default"}}},
		{name: "empty input is all defaults, then validated", in: "", problems: []string{"name"}, sentinel: sdk.ErrRequired},
		{name: "whitespace input is empty input", in: " \n", problems: []string{"name"}},
		{name: "every validation problem reported", in: `{"rate":2,"items":["a",""]}`, problems: []string{"name", "rate", "items[1]"}, sentinel: sdk.ErrOutOfRange},
		{name: "unknown field named", in: `{"name":"a","nmae":"b"}`, problems: []string{"nmae"}, sentinel: sdk.ErrUnknownField},
		{name: "empty member name still named", in: `{"name":"a","":1}`, problems: []string{`""`}, sentinel: sdk.ErrUnknownField},
		{name: "unknown nested field named with its path", in: `{"name":"a","inner":{"sise":1}}`, problems: []string{"inner.sise"}, sentinel: sdk.ErrUnknownField},
		{name: "unknown field inside a list element", in: `{"name":"a","rules":[{"path":"x"},{"pth":"y"}]}`, problems: []string{"rules[1].pth"}, sentinel: sdk.ErrUnknownField},
		{name: "every decoding problem at once", in: `{"name":1,"items":[true,"ok",3],"extra":0,"rate":"x","inner":[],"rules":{},"on":"yes"}`,
			problems: []string{"name", "rate", "items[0]", "items[2]", "inner", "rules", "on", "extra"}, sentinel: sdk.ErrWrongType},
		{name: "list element not an object", in: `{"name":"a","rules":["x"]}`, problems: []string{"rules[0]"}, sentinel: sdk.ErrWrongType},
		{name: "integer field refuses a fraction", in: `{"name":"a","inner":{"size":1.5}}`, problems: []string{"inner.size"}, sentinel: sdk.ErrWrongType},
		{name: "integer overflow", in: `{"name":"a","inner":{"size":99999999999999999999}}`, problems: []string{"inner.size"}, sentinel: sdk.ErrWrongType},
		{name: "syntax error", in: `{"name":`, problems: []string{"(root)"}, sentinel: sdk.ErrSyntax},
		{name: "array is not an object", in: `["name"]`, problems: []string{"(root)"}, sentinel: sdk.ErrSyntax},
		{name: "null is not an object", in: `null`, problems: []string{"(root)"}, sentinel: sdk.ErrSyntax},
		{name: "trailing data", in: `{"name":"a"} {}`, problems: []string{"(root)"}, sentinel: sdk.ErrSyntax},
		{name: "YAML is not JSON", in: "name: a", problems: []string{"(root)"}, sentinel: sdk.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sdk.DecodeConfig([]byte(tt.in), defaults)
			if tt.problems == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want problems %v", tt.problems)
			}
			var fields []string
			for _, p := range sdk.Problems(err) {
				var fe *sdk.FieldError
				if !errors.As(p, &fe) {
					t.Fatalf("problem %v is not a *FieldError", p)
				}
				fields = append(fields, fe.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.problems, ",") {
				t.Errorf("fields %v, want %v (error: %v)", fields, tt.problems, err)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
		})
	}
}

type notDecodable struct{}

func (notDecodable) Validate() error { return nil }

func TestDecodeConfigNeedsDecodable(t *testing.T) {
	if _, err := sdk.DecodeConfig[notDecodable]([]byte(`{}`), nil); !errors.Is(err, sdk.ErrNotDecodable) {
		t.Fatalf("got %v, want ErrNotDecodable", err)
	}
}

// FuzzDecodeConfig: no configuration text panics the decoder, and whatever
// is refused is refused with named problems.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{`{"name":"a","rules":[{"path":"x","value":1}]}`, `{"inner":{"size":-1}}`, `[]`, `{"items":[1,"x",null]}`, ``, `{"name":"a","raw":{"a":[{}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := sdk.DecodeConfig(data, defaults)
		for _, p := range sdk.Problems(err) {
			var fe *sdk.FieldError
			if !errors.As(p, &fe) || fe.Field == "" {
				t.Fatalf("problem without a field: %v", p)
			}
		}
	})
}

func TestFieldErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "with detail", err: sdk.Invalid("rate", sdk.ErrOutOfRange, "must be in 0..1"), want: "rate: out of range: must be in 0..1"},
		{name: "without detail", err: sdk.Invalid(sdk.Index("items", 3), sdk.ErrRequired, ""), want: "items[3]: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoggerLine(t *testing.T) {
	log := sdk.NewLogger("auth")
	tests := []struct {
		name   string
		level  sdk.Level
		msg    string
		fields []sdk.Field
		want   string
	}{
		{name: "fixed keys first", level: sdk.LevelInfo, msg: "hi", want: `{"level":"info","filter":"auth","msg":"hi"}`},
		{name: "all field kinds", level: sdk.LevelError, msg: "m", fields: []sdk.Field{
			sdk.String("s", "v"), sdk.Int("i", -3), sdk.Uint("u", 18446744073709551615), sdk.Bool("t", true), sdk.Bool("f", false), sdk.Err(errors.New("boom")), sdk.Err(nil),
		}, want: `{"level":"error","filter":"auth","msg":"m","s":"v","i":-3,"u":18446744073709551615,"t":true,"f":false,"error":"boom","error":""}`},
		{name: "escaping", level: sdk.LevelWarn, msg: "a\"b\\c\nd\te\r\x00\x1f", fields: []sdk.Field{sdk.String("k\"", "\u2028é\xff")},
			want: `{"level":"warn","filter":"auth","msg":"a\"b\\c\nd\te\r\u0000\u001f","k\"":"\u2028é\ufffd"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := log.Line(tt.level, tt.msg, tt.fields...)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	tests := []struct {
		name, code, detail, want string
	}{
		{name: "code and detail", code: "unauthorized", detail: "missing token", want: `{"error":"unauthorized","detail":"missing token"}`},
		{name: "no detail", code: "bad_request", want: `{"error":"bad_request"}`},
		{name: "escaped", code: `a"b`, detail: "line\nbreak", want: `{"error":"a\"b","detail":"line\nbreak"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(sdk.ErrorBody(tt.code, tt.detail)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	h := [][2]string{{":path", "/"}, {"X-Request-Id", "abc"}, {"x-request-id", "second"}}
	tests := []struct {
		name, key, want string
		ok              bool
	}{
		{name: "exact", key: ":path", want: "/", ok: true},
		{name: "case-insensitive, first wins", key: "x-request-ID", want: "abc", ok: true},
		{name: "absent", key: "cookie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sdk.Header(h, tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestQueryParam(t *testing.T) {
	tests := []struct {
		name, path, key, want string
		ok                    bool
	}{
		{name: "simple", path: "/a?x=1&y=2", key: "y", want: "2", ok: true},
		{name: "first of repeated", path: "/a?x=1&x=2", key: "x", want: "1", ok: true},
		{name: "decoded value", path: "/a?q=a%20b+c%2F", key: "q", want: "a b c/", ok: true},
		{name: "encoded key", path: "/a?access%5Ftoken=t", key: "access_token", want: "t", ok: true},
		{name: "no value", path: "/a?flag&x=1", key: "flag", want: "", ok: true},
		{name: "empty value", path: "/a?flag=", key: "flag", want: "", ok: true},
		{name: "absent", path: "/a?x=1", key: "y"},
		{name: "no query", path: "/a", key: "a"},
		{name: "fragment ignored", path: "/a?x=1#y=2", key: "y"},
		{name: "bad escape kept raw", path: "/a?x=%zz", key: "x", want: "%zz", ok: true},
		{name: "truncated escape kept raw", path: "/a?x=%4", key: "x", want: "%4", ok: true},
		{name: "not a prefix match", path: "/a?xy=1", key: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sdk.QueryParam(tt.path, tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestWithoutQueryParam(t *testing.T) {
	tests := []struct {
		name, path, key, want string
		removed               bool
	}{
		{name: "only pair", path: "/a?k=1", key: "k", want: "/a", removed: true},
		{name: "first of several", path: "/a?k=1&x=2&y=3", key: "k", want: "/a?x=2&y=3", removed: true},
		{name: "middle", path: "/a?x=2&k=1&y=3", key: "k", want: "/a?x=2&y=3", removed: true},
		{name: "every repeat", path: "/a?k=1&x=2&k=3", key: "k", want: "/a?x=2", removed: true},
		{name: "encoded key", path: "/a?api%5Fkey=s&x=1", key: "api_key", want: "/a?x=1", removed: true},
		{name: "no value", path: "/a?k&x=1", key: "k", want: "/a?x=1", removed: true},
		{name: "others keep their encoding", path: "/a?q=a%20b+c&k=1", key: "k", want: "/a?q=a%20b+c", removed: true},
		{name: "fragment kept", path: "/a?k=1&x=2#f", key: "k", want: "/a?x=2#f", removed: true},
		{name: "absent", path: "/a?x=1", key: "k", want: "/a?x=1"},
		{name: "not a prefix match", path: "/a?kk=1", key: "k", want: "/a?kk=1"},
		{name: "no query", path: "/a", key: "k", want: "/a"},
		{name: "key in the path only", path: "/k=1?x=1", key: "k", want: "/k=1?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, removed := sdk.WithoutQueryParam(tt.path, tt.key)
			if got != tt.want || removed != tt.removed {
				t.Errorf("got %q %v, want %q %v", got, removed, tt.want, tt.removed)
			}
			if _, still := sdk.QueryParam(got, tt.key); still {
				t.Errorf("%q still has %s", got, tt.key)
			}
		})
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"", []byte{}, true},
		{"00ff7A", []byte{0, 0xff, 0x7a}, true},
		{"abc", nil, false},
		{"0g", nil, false},
		{" 0", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := sdk.ParseHex(tt.in)
			if ok != tt.ok || ok && string(got) != string(tt.want) {
				t.Errorf("ParseHex(%q) = %x %v, want %x %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// FuzzQueryParam: a path from a client never panics the lookup, and a value
// that was written with proper escaping is found again.
func FuzzQueryParam(f *testing.F) {
	for _, s := range []string{"/a?x=1", "/?%", "/?x=%", "?&&=&=x", "/a?x=%zz#frag", "/a?x=a+b%20"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, path, key string) {
		sdk.QueryParam(path, key)
		if strings.ContainsAny(key, "&=#?%+") || key == "" {
			return
		}
		got, ok := sdk.QueryParam("/p?"+key+"=v%20w", key)
		if !ok || got != "v w" {
			t.Fatalf("QueryParam(%q) = %q %v", key, got, ok)
		}
	})
}
