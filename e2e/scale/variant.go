package scale

import (
	"encoding/binary"
)

// VariantSection is the name of the custom section Variant appends.
const VariantSection = "wasmfleet.bench"

// Variant returns module with a custom section named VariantSection whose
// payload is n (8 bytes, little endian) appended. Engines ignore custom
// sections, so the variant behaves exactly like module but has another
// digest: every n gives a module the control plane has not seen before.
func Variant(module []byte, n uint64) []byte {
	return AppendCustomSection(module, VariantSection, binary.LittleEndian.AppendUint64(nil, n))
}

// AppendCustomSection returns a copy of module with a custom section (id 0)
// holding name and payload appended at the end, where the binary format
// allows custom sections. module is not checked: appending to something
// that is not a module yields something that is not one either.
func AppendCustomSection(module []byte, name string, payload []byte) []byte {
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := make([]byte, 0, len(module)+1+binary.MaxVarintLen64+len(body))
	out = append(out, module...)
	out = append(out, 0) // custom section id
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}
