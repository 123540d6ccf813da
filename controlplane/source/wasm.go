package source

// Wasm section ids whose presence requires a later section.
const (
	sectionFunction  = 3
	sectionCode      = 10
	sectionData      = 11
	sectionDataCount = 12
)

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// looksWhole checks, from the section headers alone, that b is an entire
// wasm binary rather than the first part of one: the header is there, the
// sections' sizes add up to exactly len(b), and sections that promise a
// later one (function -> code, data count -> data) are followed by it. It
// does not validate anything inside a section; admission does that. A copy
// cut off at a section boundary that breaks neither promise still passes,
// which is why the stat-before-and-after check comes first.
func looksWhole(b []byte) bool {
	if len(b) < len(wasmHeader) || string(b[:len(wasmHeader)]) != string(wasmHeader) {
		return false
	}
	var seen [sectionDataCount + 1]bool
	for i := len(wasmHeader); i < len(b); {
		id := b[i]
		size, n := uleb32(b[i+1:])
		if n == 0 {
			return false
		}
		i += 1 + n
		if uint64(size) > uint64(len(b)-i) {
			return false
		}
		i += int(size)
		if int(id) < len(seen) {
			seen[id] = true
		}
	}
	if seen[sectionFunction] && !seen[sectionCode] {
		return false
	}
	if seen[sectionDataCount] && !seen[sectionData] {
		return false
	}
	return true
}

// uleb32 decodes an unsigned LEB128 number of at most 32 bits, returning it
// and the bytes used, or n == 0 if b is too short or the encoding too long.
func uleb32(b []byte) (v uint32, n int) {
	for shift := 0; n < len(b) && n < 5; shift += 7 {
		c := b[n]
		n++
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, n
		}
	}
	return 0, 0
}
