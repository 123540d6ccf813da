package config

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Problem is one thing wrong in a config file (or a NAME.yaml), with where
// it is, so that a refused file says everything that needs fixing at once.
type Problem struct {
	// File is the file's path as it was given; empty for bytes that did
	// not come from a file (an admin API request body).
	File string
	// Line and Col are 1-based; 0 when the problem is about a field the
	// file does not write (a required one) and no enclosing field either.
	Line, Col int
	// Path is the field in the file's own terms ("filters[1].rollout.interval");
	// empty when the problem is the file as a whole (a YAML syntax error).
	Path string
	// Err is the message; it wraps one of the package's sentinels.
	Err error
}

// Error reads FILE:LINE:COL: PATH: MESSAGE, leaving out what is unknown.
func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File + ":")
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", p.Line, p.Col)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Err.Error())
	return b.String()
}

// Unwrap gives errors.Is the sentinel.
func (p Problem) Unwrap() error { return p.Err }

// Problems is every problem found in one file, ordered by line. It is the
// error Parse, Load, ParseFilterSettings and Validate return.
type Problems []Problem

// Error is one problem a line, so logs, the admin API's refused_reload
// reason and the CLI show them all.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As find any problem's sentinel.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// err is ps as an error, nil when there is none (a nil Problems in an
// error interface would not be nil).
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// sort orders by position, the problems without one last (by path), so
// the report reads top to bottom like the file.
func (ps Problems) sort() {
	line := func(p Problem) int {
		if p.Line == 0 {
			return math.MaxInt
		}
		return p.Line
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(line(a), line(b)),
			cmp.Compare(a.Col, b.Col),
			strings.Compare(a.Path, b.Path),
			strings.Compare(a.Err.Error(), b.Err.Error()),
		)
	})
}

// within reports whether path is parent or a field or element inside it.
func within(path, parent string) bool {
	if parent == "" || path == parent {
		return true
	}
	rest, ok := strings.CutPrefix(path, parent)
	return ok && (rest[0] == '.' || rest[0] == '[')
}

// add records a problem with the field at path (no position yet): the
// sentinel, then the message if there is one.
func (ps *Problems) add(path string, sentinel error, format string, args ...any) {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
	}
	*ps = append(*ps, Problem{Path: path, Err: err})
}
