package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// client sends the scenarios' requests through the nodes. Keep-alive is on:
// a real client reuses connections, and a swap must not break them.
var client = &http.Client{
	Timeout:   30 * time.Second, // -race on 2 cores can stall a node for seconds while it loads a module
	Transport: &http.Transport{MaxIdleConnsPerHost: 32},
}

// probe is one kind of request and the status it must get.
type probe struct {
	name   string
	header map[string]string
	want   int
}

// answer is what came back for a request.
type answer struct {
	status int
	header http.Header
	// saw is the upstream's description of the request, when the request
	// reached it (status 200) and the body was the upstream's JSON.
	saw  upstreamSaw
	body string
}

// send does one GET through a node.
func send(addr, path string, header map[string]string) (answer, error) {
	return sendVia(client, addr, path, header)
}

// sendVia is send with another client.
func sendVia(c *http.Client, addr, path string, header map[string]string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode == http.StatusOK {
		_ = json.Unmarshal(b, &a.saw)
	}
	return a, nil
}

// mustSend is send for the test goroutine: a transport error fails the test.
func mustSend(t *testing.T, addr, path string, header map[string]string) answer {
	t.Helper()
	a, err := send(addr, path, header)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	return a
}

// load sends requests from several goroutines, round robin over targets
// and probes, until stop, and counts every answer that is not the probe's
// expected status (or no answer at all) as a failure.
type load struct {
	start time.Time
	stopc chan struct{}
	wg    sync.WaitGroup
	total atomic.Int64

	mu       sync.Mutex
	failed   int
	failures []string // the first few, for the message
}

// maxFailureNotes bounds how many failures a load keeps the text of.
const maxFailureNotes = 10

func startLoad(targets []*member, probes []probe, workers int) *load {
	l := &load{start: time.Now(), stopc: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				m, p := targets[i%len(targets)], probes[(i/len(targets))%len(probes)]
				a, err := send(m.addr(), fmt.Sprintf("/load/%d/%d", w, i), p.header)
				l.total.Add(1)
				switch {
				case err != nil:
					l.fail(fmt.Sprintf("%s via %s: %v", p.name, m.id, err))
				case a.status != p.want:
					l.fail(fmt.Sprintf("%s via %s: status %d, want %d: %s", p.name, m.id, a.status, p.want, strings.TrimSpace(a.body)))
				}
			}
		}()
	}
	return l
}

func (l *load) fail(note string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	if len(l.failures) < maxFailureNotes {
		l.failures = append(l.failures, fmt.Sprintf("at +%v: %s", time.Since(l.start).Round(time.Millisecond), note))
	}
}

// count is the number of requests answered (or failed) so far.
func (l *load) count() int64 { return l.total.Load() }

// stop ends the load and returns the totals.
func (l *load) stop() (total int64, failed int, notes []string) {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total.Load(), l.failed, l.failures
}
