package wasmhost

import (
	"context"
	"slices"

	"github.com/tetratelabs/wazero/api"
)

// buffer returns the buffer a guest names: a pointer to the bytes when it
// may change them, else the bytes; found is false when there is none now.
func (p *Plugin) buffer(t BufferType) (data []byte, mutable *[]byte, found bool) {
	s := p.stream()
	switch t {
	case RequestBody, ResponseBody:
		if s == nil {
			return nil, nil, false
		}
		b := &s.requestBody.buf
		if t == ResponseBody {
			b = &s.responseBody.buf
		}
		return *b, b, true
	case bufferHTTPCallResponseBody:
		if p.calloutResp == nil {
			return nil, nil, false
		}
		return p.calloutResp.Body, nil, true
	case bufferVMConfiguration:
		return p.cfg.VMConfig, nil, true
	case bufferPluginConfiguration:
		if !p.configuring { // Envoy offers it during proxy_on_configure only
			return nil, nil, false
		}
		return p.cfg.Configuration, nil, true
	}
	return nil, nil, false // TCP data, gRPC and call data: not hosted here
}

func hostGetBufferStatus(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(bufferCallData) {
		return statusBadArgument
	}
	data, _, found := p.buffer(BufferType(a[0]))
	if !found {
		return statusNotFound
	}
	if st := writeU32(mod, a[1], uint32(len(data))); st != statusOK {
		return st
	}
	return writeU32(mod, a[2], 0)
}

func hostGetBufferBytes(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(bufferCallData) {
		return statusBadArgument
	}
	data, _, found := p.buffer(BufferType(a[0]))
	if !found {
		return statusNotFound
	}
	start, length := uint64(uint32(a[1])), uint64(uint32(a[2]))
	if start > uint64(len(data)) {
		return statusOK
	}
	length = min(length, uint64(len(data))-start)
	if length == 0 {
		return statusOK // nothing written, as in proxy-wasm-cpp-host
	}
	return copyOut(ctx, p, mod, data[start:start+length], a[3], a[4])
}

// hostSetBufferBytes follows Envoy's Buffer::copyFrom: start 0 and length 0
// prepends, start 0 and length >= size replaces, start >= size appends;
// anything else (an edit in the middle) is BadArgument.
func hostSetBufferBytes(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	if a[0] > uint64(bufferCallData) {
		return statusBadArgument
	}
	_, b, found := p.buffer(BufferType(a[0]))
	if !found {
		return statusNotFound
	}
	if b == nil {
		return statusBadArgument
	}
	data, ok := readBytes(mod, a[3], a[4])
	if !ok {
		return statusInvalidMemoryAccess
	}
	return editBuffer(b, uint32(a[1]), uint32(a[2]), data)
}

func editBuffer(b *[]byte, start, length uint32, data []byte) status {
	size := uint32(len(*b))
	switch {
	case start == 0 && length == 0:
		*b = slices.Concat(data, *b) // never append into data: it may share memory with *b
	case start == 0 && length >= size:
		*b = data
	case start >= size:
		*b = append(*b, data...)
	default:
		return statusBadArgument
	}
	return statusOK
}
