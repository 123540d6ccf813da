package wasmhost

import (
	"fmt"
	"strconv"
)

// Action is what a stream callback tells the host to do next. The values are
// the ABI's: 0 continues, 1 stops (headers and trailers: StopIteration; body:
// StopIterationAndBuffer). Larger values are passed through clamped as Envoy
// clamps them: headers up to 4 (StopAllIterationAndWatermark), body up to 3
// (StopIterationNoBuffer); for trailers anything but 0 is 1.
type Action uint32

const (
	// ActionContinue lets the data go on to the next filter.
	ActionContinue Action = 0
	// ActionPause stops iteration; for a body, the host keeps buffering it.
	ActionPause Action = 1
)

func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "continue"
	case ActionPause:
		return "pause"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Body statuses above ActionPause, as Envoy names them.
const (
	actionStopIterationAndWatermark Action = 2
	actionStopIterationNoBuffer     Action = 3
	actionStopAllIterationWatermark Action = 4
)

// LogLevel is the ABI's log level.
type LogLevel uint32

// Log levels, as the ABI numbers them.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

func (l LogLevel) String() string {
	switch l {
	case LogTrace:
		return "trace"
	case LogDebug:
		return "debug"
	case LogInfo:
		return "info"
	case LogWarn:
		return "warn"
	case LogError:
		return "error"
	case LogCritical:
		return "critical"
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLogLevel reads a level as String writes it.
func ParseLogLevel(s string) (LogLevel, error) {
	for l := LogTrace; l <= LogCritical; l++ {
		if s == l.String() {
			return l, nil
		}
	}
	return 0, fmt.Errorf("log level %q: want trace, debug, info, warn, error or critical", s)
}

// BufferType names a byte buffer the guest can read (ABI values). Only the
// two HTTP bodies are exposed to callers, through HTTPStream.Body.
type BufferType uint32

// Buffers of an HTTP stream.
const (
	RequestBody  BufferType = 0
	ResponseBody BufferType = 1
)

// The other buffers this host serves; 2 and 3 (TCP data) and 5 (gRPC) it
// does not, and 8 (call data) is the highest type the ABI defines.
const (
	bufferHTTPCallResponseBody BufferType = 4
	bufferVMConfiguration      BufferType = 6
	bufferPluginConfiguration  BufferType = 7
	bufferCallData             BufferType = 8
)

// mapType names a header map (ABI values).
type mapType uint32

// Header maps; 4 and 5 (gRPC metadata) exist in the ABI but not here.
const (
	mapRequestHeaders          mapType = 0
	mapRequestTrailers         mapType = 1
	mapResponseHeaders         mapType = 2
	mapResponseTrailers        mapType = 3
	mapHTTPCallResponseHeaders mapType = 6
	mapHTTPCallResponseTrailer mapType = 7
)

// streamType names a direction of a stream (ABI values); 2 and 3 are the
// TCP directions, which HTTP streams refuse with BadArgument, as Envoy does.
type streamType uint32

const (
	streamRequest  streamType = 0
	streamResponse streamType = 1
)

// status is the ABI's WasmResult.
type status uint32

const (
	statusOK                  status = 0
	statusNotFound            status = 1
	statusBadArgument         status = 2
	statusInvalidMemoryAccess status = 6
	statusEmpty               status = 7 // a shared queue with nothing in it
	statusCasMismatch         status = 8
	statusInternalFailure     status = 10
	statusBrokenConnection    status = 11
	statusUnimplemented       status = 12
)
