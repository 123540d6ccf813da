package sdk

import "github.com/wasmfleet/wasmfleet/sdk/jsonv"

// Decoder fills a configuration from one JSON object. Each method names a
// member and where its value goes; an absent member (or null) leaves the
// destination as it was (the default). A member of the wrong type is a
// problem with its full field path. Once DecodeJSON returns, every member
// no method asked for is an unknown-field problem. Duplicate members: the
// last one wins, as with encoding/json.
type Decoder struct {
	obj  *jsonv.Value
	path string
	used []bool
	errs *[]error
}

func decodeObject(obj *jsonv.Value, path string, errs *[]error, decode func(d *Decoder)) {
	d := &Decoder{obj: obj, path: path, used: make([]bool, len(obj.Members)), errs: errs}
	decode(d)
	for i := range obj.Members {
		if !d.used[i] {
			d.fail(obj.Members[i].Key, ErrUnknownField, "")
		}
	}
}

// field is the full path of member key; an empty key shows as `""`, so
// that every problem still names something.
func (d *Decoder) field(key string) string {
	if key == "" {
		key = `""`
	}
	if d.path == "" {
		return key
	}
	return d.path + "." + key
}

func (d *Decoder) fail(key string, err error, detail string) {
	*d.errs = append(*d.errs, Invalid(d.field(key), err, detail))
}

// member returns the last member key (marking every one of that name as
// known), or nil when it is absent or null. Not inlined: it would be copied
// into every decoding method of every module.
//
//go:noinline
func (d *Decoder) member(key string) *jsonv.Value {
	var v *jsonv.Value
	for i := range d.obj.Members {
		if d.obj.Members[i].Key == key {
			d.used[i] = true
			v = &d.obj.Members[i].Value
		}
	}
	if v == nil || v.Kind == jsonv.Null {
		return nil
	}
	return v
}

//go:noinline
func (d *Decoder) want(key string, v *jsonv.Value, kind string) {
	d.fail(key, ErrWrongType, "got JSON "+v.Kind.String()+", want "+kind)
}

// String decodes member key into dst.
func (d *Decoder) String(key string, dst *string) {
	if v := d.member(key); v != nil {
		if v.Kind != jsonv.String {
			d.want(key, v, "string")
			return
		}
		*dst = v.Str
	}
}

// Bool decodes member key into dst.
func (d *Decoder) Bool(key string, dst *bool) {
	if v := d.member(key); v != nil {
		if v.Kind != jsonv.Bool {
			d.want(key, v, "boolean")
			return
		}
		*dst = v.Bool
	}
}

// Int decodes member key, an integer, into dst.
func (d *Decoder) Int(key string, dst *int) {
	if v := d.member(key); v != nil {
		n, ok := v.Int()
		if !ok || int64(int(n)) != n {
			d.want(key, v, "integer")
			return
		}
		*dst = int(n)
	}
}

// Float decodes member key, a number, into dst.
func (d *Decoder) Float(key string, dst *float64) {
	if v := d.member(key); v != nil {
		f, ok := v.Float()
		if !ok {
			d.want(key, v, "number")
			return
		}
		*dst = f
	}
}

// Strings decodes member key, an array of strings, into dst (replacing it).
func (d *Decoder) Strings(key string, dst *[]string) {
	v := d.member(key)
	if v == nil {
		return
	}
	if v.Kind != jsonv.Array {
		d.want(key, v, "array of strings")
		return
	}
	out := make([]string, 0, len(v.Items))
	for i := range v.Items {
		if v.Items[i].Kind != jsonv.String {
			d.want(Index(key, i), &v.Items[i], "string")
			continue
		}
		out = append(out, v.Items[i].Str)
	}
	*dst = out
}

// Raw stores member key as it is, for values the filter interprets itself
// (e.g. a JSON value to write into a body).
func (d *Decoder) Raw(key string, dst *jsonv.Value) {
	if v := d.member(key); v != nil {
		*dst = *v
	}
}

// Object decodes member key, a nested object, with decode.
func (d *Decoder) Object(key string, decode func(d *Decoder)) {
	v := d.member(key)
	if v == nil {
		return
	}
	if v.Kind != jsonv.Object {
		d.want(key, v, "object")
		return
	}
	decodeObject(v, d.field(key), d.errs, decode)
}

// List decodes member key, an array of objects, into dst (replacing it):
// decode fills each element from its object.
func List[T any](d *Decoder, key string, dst *[]T, decode func(d *Decoder, item *T)) {
	var out []T
	if d.list(key, func(n int) { out = make([]T, n) }, func(i int, d *Decoder) { decode(d, &out[i]) }) {
		*dst = out
	}
}

// list is List's non-generic body (generic code is stamped out per element
// type, and module size matters): it reports the length to alloc, then
// decodes each object element with decode. It returns false when the member
// is absent or not an array.
func (d *Decoder) list(key string, alloc func(n int), decode func(i int, d *Decoder)) bool {
	v := d.member(key)
	if v == nil {
		return false
	}
	if v.Kind != jsonv.Array {
		d.want(key, v, "array of objects")
		return false
	}
	alloc(len(v.Items))
	for i := range v.Items {
		item := &v.Items[i]
		if item.Kind != jsonv.Object {
			d.want(Index(key, i), item, "object")
			continue
		}
		decodeObject(item, d.field(Index(key, i)), d.errs, func(d *Decoder) { decode(i, d) })
	}
	return true
}
