package abi

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors of Inspect. Every error Inspect returns wraps exactly one
// of them and says where in the binary the problem is.
var (
	// ErrNotWasm: the bytes do not start with the wasm magic and version 1
	// (a text file, an archive, a component-model binary, ...).
	ErrNotWasm = errors.New("not a wasm module")
	// ErrTruncated: the module ends before something it declares, typically
	// a partially written or partially downloaded file.
	ErrTruncated = errors.New("truncated wasm module")
	// ErrMalformed: the bytes are there but do not form a valid module
	// structure (a length that overruns its section, a bad kind, ...).
	ErrMalformed = errors.New("malformed wasm module")
)

// ExternKind is what an import or export is, as encoded in the binary.
type ExternKind byte

// The extern kinds of the core spec plus exception-handling tags.
const (
	KindFunc   ExternKind = 0
	KindTable  ExternKind = 1
	KindMemory ExternKind = 2
	KindGlobal ExternKind = 3
	KindTag    ExternKind = 4
)

func (k ExternKind) String() string {
	switch k {
	case KindFunc:
		return "func"
	case KindTable:
		return "table"
	case KindMemory:
		return "memory"
	case KindGlobal:
		return "global"
	case KindTag:
		return "tag"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// SectionID is a section's id byte.
type SectionID byte

// Section ids of the binary format.
const (
	SectionCustom    SectionID = 0
	SectionType      SectionID = 1
	SectionImport    SectionID = 2
	SectionFunction  SectionID = 3
	SectionTable     SectionID = 4
	SectionMemory    SectionID = 5
	SectionGlobal    SectionID = 6
	SectionExport    SectionID = 7
	SectionStart     SectionID = 8
	SectionElement   SectionID = 9
	SectionCode      SectionID = 10
	SectionData      SectionID = 11
	SectionDataCount SectionID = 12
	SectionTag       SectionID = 13
)

// sectionOrder is the position each non-custom section must keep relative to
// the others (the spec orders them by this rank, not by id: datacount and tag
// sit between lower ids).
var sectionOrder = [...]int{
	SectionType: 1, SectionImport: 2, SectionFunction: 3, SectionTable: 4,
	SectionMemory: 5, SectionTag: 6, SectionGlobal: 7, SectionExport: 8,
	SectionStart: 9, SectionElement: 10, SectionDataCount: 11, SectionCode: 12,
	SectionData: 13,
}

// Import is one entry of the import section.
type Import struct {
	Module string
	Name   string
	Kind   ExternKind
}

func (i Import) String() string { return i.Module + "." + i.Name }

// Export is one entry of the export section.
type Export struct {
	Name string
	Kind ExternKind
}

// Section is where one section lies in the binary: Offset is its id byte,
// End the first byte after its content. Name is set for custom sections.
type Section struct {
	ID     SectionID
	Name   string
	Offset int
	End    int
}

// Info is what Inspect learned about a module.
type Info struct {
	Imports  []Import
	Exports  []Export
	Sections []Section
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Inspect parses the structure of a core wasm module: its sections, imports
// and exports. It does not validate code. Errors wrap ErrNotWasm,
// ErrTruncated or ErrMalformed and give the offset of the problem.
//
// The cost is proportional to the size of the import and export sections,
// not to the module: code and data sections are skipped by their length.
func Inspect(wasm []byte) (*Info, error) {
	if len(wasm) < len(header) {
		if string(wasm) == string(header[:len(wasm)]) {
			return nil, fmt.Errorf("%w: %d bytes, a module header alone is 8", ErrTruncated, len(wasm))
		}
		return nil, fmt.Errorf("%w: %d bytes that are not a wasm header", ErrNotWasm, len(wasm))
	}
	if string(wasm[:4]) != string(header[:4]) {
		return nil, fmt.Errorf("%w: bad magic % x", ErrNotWasm, wasm[:4])
	}
	if string(wasm[4:8]) != string(header[4:8]) {
		return nil, fmt.Errorf("%w: binary version % x is not a core module (want 01 00 00 00)", ErrNotWasm, wasm[4:8])
	}

	info := &Info{}
	var (
		lastRank    int
		funcCount   uint32
		codeCount   uint32
		dataCount   uint32
		seen        = map[SectionID]bool{}
		top         = reader{b: wasm, off: len(header)}
		truncatedAt = func(what string) error {
			return fmt.Errorf("%w: ends at offset %d inside %s", ErrTruncated, len(wasm), what)
		}
	)
	for top.off < len(wasm) {
		start := top.off
		id, _ := top.byte()
		size, err := top.u32()
		if err != nil {
			if errors.Is(err, errEOF) {
				return nil, truncatedAt(fmt.Sprintf("the header of section %d", id))
			}
			return nil, fmt.Errorf("%w: section %d at offset %d: size: %w", ErrMalformed, id, start, err)
		}
		if uint64(size) > uint64(len(wasm)-top.off) {
			return nil, fmt.Errorf("%w: section %d at offset %d declares %d bytes, %d remain",
				ErrTruncated, id, start, size, len(wasm)-top.off)
		}
		body := reader{b: wasm[:top.off+int(size)], off: top.off}
		top.off += int(size)
		sec := Section{ID: SectionID(id), Offset: start, End: top.off}

		if SectionID(id) != SectionCustom {
			if int(id) >= len(sectionOrder) || sectionOrder[id] == 0 {
				return nil, fmt.Errorf("%w: unknown section id %d at offset %d", ErrMalformed, id, start)
			}
			if seen[SectionID(id)] || sectionOrder[id] < lastRank {
				return nil, fmt.Errorf("%w: section %d at offset %d is duplicated or out of order", ErrMalformed, id, start)
			}
			seen[SectionID(id)] = true
			lastRank = sectionOrder[id]
		}

		switch SectionID(id) {
		case SectionCustom:
			sec.Name, err = body.name()
		case SectionImport:
			info.Imports, err = parseImports(&body)
		case SectionExport:
			info.Exports, err = parseExports(&body)
		case SectionFunction:
			funcCount, err = body.u32()
		case SectionCode:
			codeCount, err = body.u32()
		case SectionDataCount:
			dataCount, err = body.u32()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %d at offset %d: %w", ErrMalformed, id, start, err)
		}
		switch SectionID(id) {
		case SectionImport, SectionExport, SectionDataCount:
			if body.off != len(body.b) {
				return nil, fmt.Errorf("%w: section %d at offset %d has %d bytes after its last entry",
					ErrMalformed, id, start, len(body.b)-body.off)
			}
		}
		info.Sections = append(info.Sections, sec)
	}

	// A module cut exactly between two sections parses; these catch the cuts
	// that drop a section the earlier ones promised.
	if funcCount > 0 && !seen[SectionCode] {
		return nil, truncatedAt(fmt.Sprintf("the module: %d functions declared, no code section", funcCount))
	}
	if seen[SectionCode] && codeCount != funcCount {
		return nil, fmt.Errorf("%w: %d functions declared but %d bodies in the code section", ErrMalformed, funcCount, codeCount)
	}
	if dataCount > 0 && !seen[SectionData] {
		return nil, truncatedAt(fmt.Sprintf("the module: %d data segments declared, no data section", dataCount))
	}
	return info, nil
}

func parseImports(r *reader) ([]Import, error) {
	n, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	// Every entry takes at least 4 bytes, so a lying count cannot make this
	// allocate more than the section's own size.
	out := make([]Import, 0, min(int(n), r.remaining()/4))
	for i := range n {
		var im Import
		if im.Module, err = r.name(); err != nil {
			return nil, fmt.Errorf("import %d: module: %w", i, err)
		}
		if im.Name, err = r.name(); err != nil {
			return nil, fmt.Errorf("import %d (%s): name: %w", i, im.Module, err)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, fmt.Errorf("import %d (%s): kind: %w", i, im, err)
		}
		im.Kind = ExternKind(kind)
		if err := r.skipImportDesc(im.Kind); err != nil {
			return nil, fmt.Errorf("import %d (%s): %w", i, im, err)
		}
		out = append(out, im)
	}
	return out, nil
}

func parseExports(r *reader) ([]Export, error) {
	n, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	out := make([]Export, 0, min(int(n), r.remaining()/3))
	for i := range n {
		var ex Export
		if ex.Name, err = r.name(); err != nil {
			return nil, fmt.Errorf("export %d: name: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, fmt.Errorf("export %d (%s): kind: %w", i, ex.Name, err)
		}
		if ex.Kind = ExternKind(kind); ex.Kind > KindTag {
			return nil, fmt.Errorf("export %d (%s): unknown kind %d", i, ex.Name, kind)
		}
		if _, err := r.u32(); err != nil {
			return nil, fmt.Errorf("export %d (%s): index: %w", i, ex.Name, err)
		}
		out = append(out, ex)
	}
	return out, nil
}

// errEOF: a read ran past the end of the bytes the reader may use.
var errEOF = errors.New("unexpected end")

// reader decodes the binary format's primitives from b[off:]. b ends where
// the enclosing section ends, so nothing can be read past a declared length.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errEOF
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// uleb reads an unsigned LEB128 of at most bits bits, refusing overlong
// encodings and set bits beyond the width.
func (r *reader) uleb(bits uint) (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift+7 > bits && c>>(bits-shift) != 0 {
			return 0, fmt.Errorf("integer too large for %d bits at offset %d", bits, r.off-1)
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// s33 skips a signed LEB128 of at most 33 bits (a heap type index).
func (r *reader) s33() error {
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return fmt.Errorf("heap type too long at offset %d", r.off)
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if uint64(n) > uint64(r.remaining()) {
		return "", fmt.Errorf("length %d at offset %d overruns the section by %d bytes", n, r.off, int(n)-r.remaining())
	}
	b := r.b[r.off : r.off+int(n)]
	if !utf8.Valid(b) {
		return "", fmt.Errorf("name at offset %d is not UTF-8", r.off)
	}
	r.off += int(n)
	return string(b), nil
}

// valType skips a value or reference type: one byte, or 0x63/0x64 (a
// nullable or non-null reference) followed by a heap type.
func (r *reader) valType() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	if c == 0x63 || c == 0x64 {
		return r.s33()
	}
	return nil
}

// limits skips table or memory limits: flags (bit 0 max present, bit 1
// shared, bit 2 64-bit, bit 3 custom page size), min, max, page size.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags > 0x0f {
		return fmt.Errorf("limits flags %#x at offset %d", flags, r.off-1)
	}
	bits := uint(32)
	if flags&0x04 != 0 {
		bits = 64
	}
	if _, err := r.uleb(bits); err != nil {
		return err
	}
	if flags&0x01 != 0 {
		if _, err := r.uleb(bits); err != nil {
			return err
		}
	}
	if flags&0x08 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) skipImportDesc(k ExternKind) error {
	switch k {
	case KindFunc:
		_, err := r.u32()
		return err
	case KindTable:
		if err := r.valType(); err != nil {
			return err
		}
		return r.limits()
	case KindMemory:
		return r.limits()
	case KindGlobal:
		if err := r.valType(); err != nil {
			return err
		}
		mut, err := r.byte()
		if err == nil && mut > 1 {
			err = fmt.Errorf("global mutability %d at offset %d", mut, r.off-1)
		}
		return err
	case KindTag:
		if _, err := r.byte(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	}
	return fmt.Errorf("unknown kind %d", byte(k))
}
