package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// The problems a file can have before any value is looked at: the decoder
// (sigs.k8s.io/yaml, through encoding/json) stops at the first of them and
// says neither where it is nor which field, so decode finds them itself.
var (
	ErrUnknownField = errors.New("unknown field")
	ErrType         = errors.New("wrong type")
	ErrDuplicateKey = errors.New("duplicate key")
)

// decode lays the YAML in b over v (a pointer to the defaults). It first
// walks the document's nodes against v's Go type, so that every unknown
// field, wrong type and duplicate key is reported with its path and
// position; the structs' json tags are the schema, there is no second one
// to keep in step. What the walk refuses is cut from the document and the
// rest is decoded, so Validate can still report the problems in the values.
// decoded is false when v could not be filled at all.
func decode(b []byte, v any) (c *checker, decoded bool) {
	c = &checker{at: map[string]position{}, aliases: map[aliasUse]bool{}}
	var doc yamlv3.Node
	if yamlv3.Unmarshal(b, &doc) != nil {
		// The decoder of record has the last word on syntax, and its
		// parser says where the problem is rather than where the enclosing
		// block began.
		if err := yaml.UnmarshalStrict(b, v); err != nil {
			c.problems = append(c.problems, syntaxProblem(err))
			return c, false
		}
		return c, true
	}
	if len(doc.Content) > 0 {
		c.value("", doc.Content[0], reflect.TypeOf(v).Elem())
	}
	if len(c.problems) > 0 {
		var err error
		if b, err = yamlv3.Marshal(&doc); err != nil {
			return c, false
		}
	}
	// The decoder of record stays the one the file was always read with
	// (YAML 1.1 booleans, numbers into strings), so an accepted file
	// means what it meant before.
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		if len(c.problems) == 0 {
			// The walk missed what the decoder refuses: refuse too, with
			// what the decoder says, rather than accept a file it cannot read.
			c.problems = append(c.problems, Problem{Err: fmt.Errorf("%w: %v", ErrSyntax, err)})
		}
		return c, false
	}
	return c, true
}

// report is the file's problems: the walk's, and values's (Validate's,
// which know no positions) placed at the field they name. A value problem
// inside a field the walk already refused is left out: that field was
// dropped, so the problem is a consequence, not news.
func (c *checker) report(file string, values Problems) error {
	ps := slices.Clone(c.problems)
	for _, p := range values {
		if slices.ContainsFunc(c.problems, func(s Problem) bool { return within(p.Path, s.Path) }) {
			continue
		}
		p.Line, p.Col = c.where(p.Path)
		ps = append(ps, p)
	}
	for i := range ps {
		ps[i].File = file
	}
	ps.sort()
	return ps.err()
}

var syntaxLine = regexp.MustCompile(`yaml: (?:line (\d+): )?(.*)$`)

// syntaxProblem turns the decoder's "... yaml: line 3: ..." into a Problem
// at that line. libyaml knows no column, and for a parser error (not a
// scanner error) its line can be the one before the problem.
func syntaxProblem(err error) Problem {
	m := syntaxLine.FindStringSubmatch(err.Error())
	switch {
	case m == nil:
		return Problem{Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
	case m[1] == "":
		return Problem{Err: fmt.Errorf("%w: %s", ErrSyntax, m[2])}
	}
	line, _ := strconv.Atoi(m[1])
	return Problem{Line: line, Col: 1, Err: fmt.Errorf("%w: %s", ErrSyntax, m[2])}
}

type position struct{ line, col int }

// checker is one walk over a document.
type checker struct {
	problems Problems
	// at is where each field and element the file writes is, so the
	// problems Validate finds after decoding get a position too.
	at map[string]position
	// aliases records which anchored nodes were checked as which type and
	// whether they passed: each is walked once however often it is
	// referred to, so aliases cannot make the walk exponential (or loop).
	aliases map[aliasUse]bool
}

type aliasUse struct {
	node *yamlv3.Node
	typ  reflect.Type
}

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

func (c *checker) add(path string, n *yamlv3.Node, err error) {
	c.problems = append(c.problems, Problem{Line: n.Line, Col: n.Column, Path: path, Err: err})
}

// value checks n against t and reports whether n can be decoded into it;
// the caller drops it when not. A nil t is free-form (a filter's plugin
// configuration): only what no decoder accepts is checked there.
func (c *checker) value(path string, n *yamlv3.Node, t reflect.Type) bool {
	if n.Kind == yamlv3.AliasNode {
		use := aliasUse{n.Alias, t}
		ok, done := c.aliases[use]
		if !done {
			c.aliases[use] = true // an anchor inside itself stops here
			ok = c.value(path, n.Alias, t)
			c.aliases[use] = ok
		}
		return ok
	}
	if n.Kind == yamlv3.ScalarNode && n.ShortTag() == "!!null" {
		return true // leaves the default
	}
	if t == rawMessageType || t != nil && t.Kind() == reflect.Interface {
		t = nil
	}
	if t != nil && reflect.PointerTo(t).Implements(unmarshalerType) {
		b, err := jsonOf(n)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			c.add(path, n, fmt.Errorf("%w: %v", ErrInvalidValue, err))
			return false
		}
		return true
	}
	if t != nil && t.Kind() == reflect.Pointer {
		return c.value(path, n, t.Elem())
	}
	switch {
	case t == nil && n.Kind == yamlv3.MappingNode,
		t != nil && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) && n.Kind == yamlv3.MappingNode:
		c.mapping(path, n, t)
		return true
	case t == nil && n.Kind == yamlv3.SequenceNode,
		t != nil && t.Kind() == reflect.Slice && n.Kind == yamlv3.SequenceNode:
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			c.at[p] = position{e.Line, e.Column}
			if !c.value(p, e, elem(t)) {
				n.Content[i] = &yamlv3.Node{Kind: yamlv3.ScalarNode, Tag: "!!null", Value: "null"}
			}
		}
		return true
	case t == nil, t.Kind() == reflect.String && n.Kind == yamlv3.ScalarNode:
		return true // a scalar the decoder turns into a string if it is not one
	case n.Kind == yamlv3.ScalarNode && isScalar(t):
		if b, err := jsonOf(n); err == nil && json.Unmarshal(b, reflect.New(t).Interface()) == nil {
			return true
		}
	}
	c.add(path, n, fmt.Errorf("%w: want %s, got %s", ErrType, want(t), got(n)))
	return false
}

// mapping checks a mapping's keys (scalars, each written once, each a
// field of t) and its values; what it refuses it cuts from n.
func (c *checker) mapping(path string, n *yamlv3.Node, t reflect.Type) {
	seen := map[string]*yamlv3.Node{}
	keep := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			if c.merge(path, v, t) {
				keep = append(keep, k, v)
			}
			continue
		}
		key := k
		if key.Kind == yamlv3.AliasNode {
			key = key.Alias
		}
		if key.Kind != yamlv3.ScalarNode || key.ShortTag() == "!!null" {
			c.add(path, k, fmt.Errorf("%w: want a string as the key, got %s", ErrType, got(key)))
			continue
		}
		p := field(path, key.Value)
		if first, dup := seen[key.Value]; dup {
			c.add(p, k, fmt.Errorf("%w (first at line %d)", ErrDuplicateKey, first.Line))
			continue
		}
		seen[key.Value] = k
		c.at[p] = position{k.Line, k.Column}
		et, known := member(t, key.Value)
		if !known {
			c.add(p, k, unknownField(t, key.Value))
			continue
		}
		if c.value(p, v, et) {
			keep = append(keep, k, v)
		}
	}
	n.Content = keep
}

// merge checks the value of a "<<" key: a mapping, or a list of them, whose
// entries count as n's own (YAML 1.1 merge keys, which the decoder applies).
func (c *checker) merge(path string, v *yamlv3.Node, t reflect.Type) bool {
	from := []*yamlv3.Node{v}
	if deref(v).Kind == yamlv3.SequenceNode {
		from = deref(v).Content
	}
	ok := true
	for _, m := range from {
		if deref(m).Kind != yamlv3.MappingNode {
			c.add(path, m, fmt.Errorf("%w: want a mapping to merge, got %s", ErrType, got(deref(m))))
			ok = false
			continue
		}
		ok = c.value(path, m, t) && ok
	}
	return ok
}

func deref(n *yamlv3.Node) *yamlv3.Node {
	if n.Kind == yamlv3.AliasNode {
		return n.Alias
	}
	return n
}

// elem is what a list of t holds; nil (free-form) stays nil.
func elem(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	return t.Elem()
}

// member is the type of a mapping's entry name in t: a map's values, or
// the struct field whose json name it is (matched as encoding/json does:
// exactly, else ignoring case).
func member(t reflect.Type, name string) (reflect.Type, bool) {
	if t == nil {
		return nil, true
	}
	if t.Kind() == reflect.Map {
		return t.Elem(), true
	}
	var folded reflect.Type
	for _, f := range fields(t) {
		if f.name == name {
			return f.typ, true
		}
		if folded == nil && strings.EqualFold(f.name, name) {
			folded = f.typ
		}
	}
	return folded, folded != nil
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// fields are t's fields under their json names.
func fields(t reflect.Type) []jsonField {
	var fs []jsonField
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		fs = append(fs, jsonField{name: cmp.Or(name, f.Name), typ: f.Type})
	}
	return fs
}

// unknownField names the closest field of t, for the typo it usually is.
func unknownField(t reflect.Type, name string) error {
	best, dist := "", 3 // further than 2 edits is not a typo
	for _, f := range fields(t) {
		if d := editDistance(strings.ToLower(name), f.name); d < dist {
			best, dist = f.name, d
		}
	}
	if best == "" {
		return ErrUnknownField
	}
	return fmt.Errorf("%w (did you mean %q?)", ErrUnknownField, best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev = cur
	}
	return prev[len(b)]
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// field is the path of entry name inside path; names that would read as
// path syntax are quoted.
func field(path, name string) string {
	if !plainKey.MatchString(name) {
		return fmt.Sprintf("%s[%q]", path, name)
	}
	return join(path, name)
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// where is the position of the field path names or, when the file does
// not write it, of the closest enclosing field it does write.
func (c *checker) where(path string) (line, col int) {
	for {
		if p, ok := c.at[path]; ok {
			return p.line, p.col
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0, 0
		}
		path = path[:i]
	}
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// yaml11Bools are the plain scalars the decoder of record (YAML 1.1) reads
// as booleans beyond true and false.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// jsonOf is n as the decoder of record hands it to encoding/json.
func jsonOf(n *yamlv3.Node) ([]byte, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok && n.Kind == yamlv3.ScalarNode && n.Style == 0 {
		if b, ok := yaml11Bools[s]; ok {
			v = b
		}
	}
	return json.Marshal(v)
}

// want says what a value of t is written as.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "an integer"
	}
}

// got says what n is, quoting strings so "10" and 10 differ.
func got(n *yamlv3.Node) string {
	switch n.Kind {
	case yamlv3.MappingNode:
		return "a mapping"
	case yamlv3.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(truncate(n.Value, 40))
	}
	return truncate(n.Value, 40)
}
