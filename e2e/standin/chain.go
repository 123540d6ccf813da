package standin

import (
	"context"
	"errors"
	"fmt"
)

// errPaused is returned when a filter stopped iteration at the end of the
// stream and then neither resumed it nor replied: it reset the stream
// (proxy_close_stream), which Envoy answers by resetting the request.
var errPaused = errors.New("standin: filter paused the stream without a reply")

// errHeadersSent is returned when a filter sends a local reply after the
// response headers went past the last filter, to the client: Envoy can no
// longer send the reply and resets the stream instead
// (DownstreamFilterManager::sendLocalReply, source/common/http/filter_manager.cc:
// "response headers have already been sent to the client. All we can do at
// this point is reset the stream").
var errHeadersSent = errors.New("standin: local reply after the response headers were sent")

// phase selects the callbacks of one direction.
type phase struct {
	headers func(filterStream, context.Context, *headerMap, bool) (action, error)
	body    func(filterStream, context.Context, *[]byte, bool) (action, error)
	// headersLeave: headers that went past the last filter have left for
	// the client, so a local reply after them is errHeadersSent. Request
	// headers only reach the router: a reply still goes out.
	headersLeave bool
}

var (
	decode = phase{filterStream.requestHeaders, filterStream.requestBody, false}
	encode = phase{filterStream.responseHeaders, filterStream.responseBody, true}
)

// run passes headers and a fully buffered body through fs in order, the way
// Envoy iterates: headers go down the chain until a filter stops; the body
// then goes to every filter that has seen the headers; when the stopping
// filter continues on the body, the headers resume at the next filter. It
// returns the first local reply a filter sends, or errHeadersSent for one
// that comes too late (see headersLeave). ctx is the request's: it
// bounds how long a filter may hold the stream at its end.
func (p phase) run(ctx context.Context, fs []filterStream, h *headerMap, body *[]byte) (*localReply, error) {
	hasBody := len(*body) > 0
	for start := 0; start < len(fs); {
		k := start
		for ; k < len(fs); k++ {
			a, err := p.headers(fs[k], ctx, h, !hasBody)
			if lr, err := outcome(fs[k], k, err); lr != nil || err != nil {
				return lr, err
			}
			if a == actStop {
				if !hasBody {
					return nil, fmt.Errorf("%w (filter %d, headers)", errPaused, k)
				}
				break
			}
		}
		if !hasBody {
			return nil, nil
		}
		end := min(k, len(fs)-1)
		for j := start; j <= end; j++ {
			a, err := p.body(fs[j], ctx, body, true)
			lr, err := outcome(fs[j], j, err)
			if lr != nil && p.headersLeave && k == len(fs) {
				return nil, fmt.Errorf("%w (filter %d, body)", errHeadersSent, j)
			}
			if lr != nil || err != nil {
				return lr, err
			}
			if a == actStop {
				return nil, fmt.Errorf("%w (filter %d, body)", errPaused, j)
			}
		}
		start = end + 1
	}
	return nil, nil
}

func outcome(f filterStream, i int, err error) (*localReply, error) {
	if err != nil {
		return nil, fmt.Errorf("standin: filter %d: %w", i, err)
	}
	return f.local(), nil
}
