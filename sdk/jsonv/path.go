package jsonv

// Field returns the value of the first member key of object v, or nil when
// v is not an object or has no such member. The pointer stays valid until
// v's members change. (Not inlined: the path functions would each carry a
// copy, and module size is what matters here.)
//
//go:noinline
func (v *Value) Field(key string) *Value {
	if v.Kind != Object {
		return nil
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			return &v.Members[i].Value
		}
	}
	return nil
}

// SetField sets member key of object v to val: the first member of that
// name is replaced in place (later duplicates are removed), otherwise the
// member is appended. It reports false when v is not an object.
//
//go:noinline
func (v *Value) SetField(key string, val Value) bool {
	if v.Kind != Object {
		return false
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			v.Members[i].Value = val
			rest := v.Members[:i+1]
			for _, m := range v.Members[i+1:] {
				if m.Key != key {
					rest = append(rest, m)
				}
			}
			v.Members = rest
			return true
		}
	}
	v.Members = append(v.Members, Member{Key: key, Value: val})
	return true
}

// DeleteField removes every member key of object v and reports whether
// there was one.
func (v *Value) DeleteField(key string) bool {
	if v.Kind != Object {
		return false
	}
	kept := v.Members[:0]
	for _, m := range v.Members {
		if m.Key != key {
			kept = append(kept, m)
		}
	}
	found := len(kept) != len(v.Members)
	v.Members = kept
	return found
}

// At follows path (object keys) from v and returns the value there, or nil.
// An empty path is v itself.
func (v *Value) At(path []string) *Value {
	cur := v
	for _, key := range path {
		if cur = cur.Field(key); cur == nil {
			return nil
		}
	}
	return cur
}

// SetAt sets the value at path, creating missing objects on the way. It
// reports false (and changes nothing) when something on the way exists but
// is not an object, or path is empty.
func (v *Value) SetAt(path []string, val Value) bool {
	if len(path) == 0 {
		return false
	}
	parent := v
	for i, key := range path[:len(path)-1] {
		next := parent.Field(key)
		if next == nil {
			if parent.Kind != Object {
				return false
			}
			parent.SetField(key, nest(path[i+1:], val))
			return true
		}
		parent = next
	}
	return parent.SetField(path[len(path)-1], val)
}

// nest builds {"a":{"b":val}} for path a.b.
func nest(path []string, val Value) Value {
	for i := len(path) - 1; i >= 0; i-- {
		val = Value{Kind: Object, Members: []Member{{Key: path[i], Value: val}}}
	}
	return val
}

// DeleteAt removes the value at path and reports whether there was one.
func (v *Value) DeleteAt(path []string) bool {
	if len(path) == 0 {
		return false
	}
	parent := v.At(path[:len(path)-1])
	return parent != nil && parent.DeleteField(path[len(path)-1])
}

// SplitPath splits a dotted path ("a.b.c") into its member names; it does
// not check for empty names. It is kept out of line: inlined at each call
// site it would cost a module kilobytes for nothing.
//
//go:noinline
func SplitPath(path string) []string {
	n := 1
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			n++
		}
	}
	out := make([]string, 0, n)
	start := 0
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			out = append(out, path[start:i])
			start = i + 1
		}
	}
	return append(out, path[start:])
}
