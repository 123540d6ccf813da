package standin

import (
	"errors"
	"fmt"
)

// errPaused is returned when a filter stops iteration at the end of the
// stream without sending a reply: Envoy would wait for the filter to resume
// it, which the stand-in's synchronous host never does.
var errPaused = errors.New("standin: filter paused the stream without a reply")

// phase selects the callbacks of one direction.
type phase struct {
	headers func(filterStream, *headerMap, bool) (action, error)
	body    func(filterStream, *[]byte, bool) (action, error)
}

var (
	decode = phase{filterStream.requestHeaders, filterStream.requestBody}
	encode = phase{filterStream.responseHeaders, filterStream.responseBody}
)

// run passes headers and a fully buffered body through fs in order, the way
// Envoy iterates: headers go down the chain until a filter stops; the body
// then goes to every filter that has seen the headers; when the stopping
// filter continues on the body, the headers resume at the next filter. It
// returns the first local reply a filter sends.
func (p phase) run(fs []filterStream, h *headerMap, body *[]byte) (*localReply, error) {
	hasBody := len(*body) > 0
	for start := 0; start < len(fs); {
		k := start
		for ; k < len(fs); k++ {
			a, err := p.headers(fs[k], h, !hasBody)
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
			a, err := p.body(fs[j], body, true)
			if lr, err := outcome(fs[j], j, err); lr != nil || err != nil {
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
