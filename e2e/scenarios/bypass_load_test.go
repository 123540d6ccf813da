package scenarios

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// What the bypass scenarios put on requests and read back upstream.
const (
	// idHeader numbers every request of the load, so the upstream's record
	// and the client's answer can be joined.
	idHeader = "x-bypass-id"
	// ranHeader is where the stamp filters write their labels.
	ranHeader = "x-ran"
	// authNameHeader is set by auth to the matched key's name; auth also
	// removes any copy the client sent.
	authNameHeader = "x-auth-key"
	// keyParam is the query parameter the authenticated requests carry
	// their key in (see TestBypass on why not the header).
	keyParam = "api_key"
)

// Load of each transition: requests answered before the change and after
// every node switched, and the bounds no load may exceed whatever happens.
//
// Under the race detector every request (auth and two or three stamps,
// interpreted) costs tens of milliseconds of CPU, and it shares two cores
// with the control plane's trial runs and the nodes' module loads: two
// workers, at most one request per bypassPace each, leave the transitions
// enough CPU to finish well within switchTimeout.
const (
	bypassWorkers = 2
	// bypassPace is the least time between two requests of a worker:
	// enough requests to catch a window of a few milliseconds, few
	// enough to leave the nodes' module loads the CPU they need.
	bypassPace        = 5 * time.Millisecond
	bypassBefore      = 40
	bypassAfter       = 100
	bypassMaxRequests = 20_000
	bypassMaxTime     = 2 * time.Minute
	// switchTimeout bounds the wait for a transition to reach every node
	// under load: a trial run and every node loading a module, all
	// interpreted, can take longer than awaitTimeout under -race.
	switchTimeout = 90 * time.Second
	switchPoll    = 50 * time.Millisecond
	// maxBypassNotes bounds the examples kept per kind of violation.
	maxBypassNotes = 5
)

// run runs steps in order as subtests. Unlike runSteps it goes on after a
// step whose invariant failed, as long as the step got the fleet to its end
// state (a wrong count does not change what the next step starts from), so
// one run measures every transition; a step that did not get there stops
// the rest.
func (s *bypassScenario) run(t *testing.T, steps []step) {
	t.Helper()
	top := s.f.t
	for _, st := range steps {
		s.done = false
		ok := t.Run(st.name, func(t *testing.T) {
			s.f.t = t
			defer func() { s.f.t = top }()
			st.run(t)
			s.done = true
		})
		if !ok && !s.done {
			t.Fatalf("step %q did not complete; the steps after it build on it", st.name)
		}
	}
}

// recorder is the upstream: it records what each numbered request looked
// like when it arrived, then answers as echo does.
type recorder struct {
	mu  sync.Mutex
	saw map[int64]upstreamRecord
}

// upstreamRecord is what the upstream saw of one request.
type upstreamRecord struct {
	ran, authKey, query string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if id, err := strconv.ParseInt(req.Header.Get(idHeader), 10, 64); err == nil {
		rec := upstreamRecord{
			ran:     strings.Join(req.Header.Values(ranHeader), ","),
			authKey: strings.Join(req.Header.Values(authNameHeader), ","),
			query:   req.URL.RawQuery,
		}
		r.mu.Lock()
		r.saw[id] = rec
		r.mu.Unlock()
	}
	echo(w, req)
}

// take returns and forgets the record of request id.
func (r *recorder) take(id int64) (upstreamRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.saw[id]
	delete(r.saw, id)
	return rec, ok
}

// slowClient is client with a longer timeout: under -race on a busy
// machine a request that waits for a VM behind a module load can take more
// than client's 5 s, which is slowness, not a failed request. Still bounded.
var slowClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32},
}

// nextID numbers requests across every load of the test.
var nextID atomic.Int64

// chainLoad sends numbered requests, authenticated and not in turn, round
// robin over the nodes that serve, until stopped or a bound is reached.
type chainLoad struct {
	start time.Time
	stopc chan struct{}
	wg    sync.WaitGroup
	// phase is stamped on each request as it starts.
	phase atomic.Int32
	n     atomic.Int64

	mu   sync.Mutex
	reqs []sentRequest
}

// sentRequest is one request of a load and its answer.
type sentRequest struct {
	id     int64
	node   string
	authed bool
	phase  int
	at     time.Duration
	status int
	err    error
	body   string // on an unexpected answer, its start
}

// startChainLoad starts bypassWorkers senders over whatever nodes serve when
// each request starts (nodes joining under load get requests from their
// first moment of serving).
func (s *bypassScenario) startChainLoad() *chainLoad {
	l := &chainLoad{start: time.Now(), stopc: make(chan struct{})}
	for w := range bypassWorkers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			pace := time.NewTicker(bypassPace)
			defer pace.Stop()
			for i := w; ; i++ {
				select {
				case <-l.stopc:
					return
				case <-pace.C:
				}
				ts := s.serving()
				if len(ts) == 0 || l.n.Load() >= bypassMaxRequests || time.Since(l.start) > bypassMaxTime {
					return
				}
				m := ts[i%len(ts)]
				r := sentRequest{id: nextID.Add(1), node: m.id, authed: (i/len(ts))%2 == 0, phase: int(l.phase.Load()), at: time.Since(l.start)}
				path := "/bypass/" + strconv.FormatInt(r.id, 10)
				if r.authed {
					path += "?" + keyParam + "=" + sharedKey
				}
				a, err := sendVia(slowClient, m.addr(), path, map[string]string{idHeader: strconv.FormatInt(r.id, 10)})
				r.status, r.err = a.status, err
				want := http.StatusUnauthorized
				if r.authed {
					want = http.StatusOK
				}
				if err == nil && a.status != want {
					r.body = strings.TrimSpace(a.body[:min(len(a.body), 160)])
				}
				l.mu.Lock()
				l.reqs = append(l.reqs, r)
				l.mu.Unlock()
				l.n.Add(1)
			}
		}()
	}
	return l
}

// count is how many requests have been answered (or failed) so far.
func (l *chainLoad) count() int64 { return l.n.Load() }

// atLeast is nil once n requests have been answered (or failed).
func (l *chainLoad) atLeast(n int64) error {
	if c := l.count(); c < n {
		return fmt.Errorf("%d of %d requests so far (at most %d, for %v)", c, n, bypassMaxRequests, bypassMaxTime)
	}
	return nil
}

// stop ends the load (it may be called again) and returns every request.
func (l *chainLoad) stop() []sentRequest {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reqs
}

// serving lists the nodes whose listener serves.
func (s *bypassScenario) serving() []*member {
	return slices.DeleteFunc(s.f.members(), func(m *member) bool { return m.addr() == "" })
}

// tally counts one transition's (or phase's) requests.
type tally struct {
	sent, authed int
	// bypasses: unauthenticated requests that reached the upstream.
	bypasses int
	// failures: authenticated requests not answered 200 by the upstream.
	failures int
	// authTwice: failures answered 401 missing_credentials, which only a
	// second run of auth (after the first removed the key) gives.
	authTwice int
	// wrongChains: requests that reached the upstream without running
	// each configured filter exactly once in a configured order.
	wrongChains int
	// unauthOther: unauthenticated requests answered neither 401 nor by
	// the upstream (a 500 for an empty slot, a reset, ...).
	unauthOther int
	notes       []string
}

func (t *tally) note(kind, format string, args ...any) {
	n := 0
	for _, s := range t.notes {
		if strings.HasPrefix(s, kind+":") {
			n++
		}
	}
	if n < maxBypassNotes {
		t.notes = append(t.notes, kind+": "+fmt.Sprintf(format, args...))
	}
}

// clean reports whether the invariant held.
func (t tally) clean() bool {
	return t.bypasses == 0 && t.failures == 0 && t.wrongChains == 0 && t.unauthOther == 0
}

// tallies joins the requests to the upstream's records and counts them per
// phase; allowed lists the stamp label sequences a request may show.
func (s *bypassScenario) tallies(reqs []sentRequest, phases int, allowed [][]string) []tally {
	out := make([]tally, phases)
	for _, r := range reqs {
		t := &out[r.phase]
		t.sent++
		rec, reached := s.up.take(r.id)
		where := fmt.Sprintf("#%d via %s at +%v", r.id, r.node, r.at.Round(time.Millisecond))
		if !r.authed {
			switch {
			case reached:
				t.bypasses++
				t.note("bypass", "%s: status %d, upstream saw x-ran %q", where, r.status, rec.ran)
			case r.err != nil:
				t.unauthOther++
				t.note("unauthenticated", "%s: %v", where, r.err)
			case r.status != http.StatusUnauthorized:
				t.unauthOther++
				t.note("unauthenticated", "%s: status %d: %s", where, r.status, r.body)
			}
			continue
		}
		t.authed++
		switch {
		case r.err != nil:
			t.failures++
			t.note("failure", "%s: %v", where, r.err)
		case r.status == http.StatusUnauthorized && strings.Contains(r.body, "missing_credentials"):
			t.failures++
			t.authTwice++
			t.note("failure", "%s: 401 missing_credentials (auth ran twice: the first run took the key): %s", where, r.body)
		case r.status != http.StatusOK || !reached:
			t.failures++
			t.note("failure", "%s: status %d (reached upstream: %v): %s", where, r.status, reached, r.body)
		}
		if !reached {
			continue
		}
		authOnce := rec.authKey == keyNames[sharedKey] && !strings.Contains(rec.query, keyParam+"=")
		var ran []string
		if rec.ran != "" {
			ran = strings.Split(rec.ran, ",")
		}
		if !authOnce || !slices.ContainsFunc(allowed, func(want []string) bool { return slices.Equal(ran, want) }) {
			t.wrongChains++
			t.note("wrong chain", "%s: x-ran %q, x-auth-key %q, query %q; want auth then one of %q", where, rec.ran, rec.authKey, rec.query, allowed)
		}
	}
	return out
}

// phase is one part of a transition: a change (nil: none, the previous
// one goes on) and what shows it is over on every node.
type phase struct {
	name     string
	change   func(l *chainLoad)
	switched func() error
}

// bypassRow is one line of the summary.
type bypassRow struct {
	name string
	tally
}

// underLoad runs phases under load: it waits for before requests, makes
// each change and waits for it to be over, waits for bypassAfter requests
// more, then checks the invariant for each phase's requests (allowed: the
// label sequences a request may show). Several phases are reported as
// subtests, one each. If a wait fails, the requests sent until then are
// still counted and reported.
func (s *bypassScenario) underLoad(t *testing.T, before int64, allowed [][]string, phases ...phase) {
	t.Helper()
	l := s.startChainLoad()
	finished := false
	defer func() {
		if finished {
			return
		}
		for i, tl := range s.tallies(l.stop(), len(phases), allowed) {
			s.report(t, t.Name()+phaseSuffix(len(phases), phases[i].name)+" (incomplete)", tl)
		}
	}()
	s.awaitSwitch("load before the change", func() error { return l.atLeast(before) })
	for i, ph := range phases {
		l.phase.Store(int32(i))
		at := time.Now()
		if ph.change != nil {
			ph.change(l)
		}
		s.awaitSwitch(ph.name, ph.switched)
		t.Logf("%s: every node switched %v after the change", ph.name, time.Since(at).Round(time.Millisecond))
	}
	after := l.count()
	s.awaitSwitch("load after the switch", func() error { return l.atLeast(after + bypassAfter) })
	finished = true
	ts := s.tallies(l.stop(), len(phases), allowed)
	if len(phases) == 1 {
		s.report(t, t.Name(), ts[0])
		return
	}
	for i, ph := range phases {
		t.Run(ph.name, func(t *testing.T) { s.report(t, t.Name(), ts[i]) })
	}
}

// report adds a transition's counts to the summary as name, logs them, and
// fails t if the invariant did not hold.
func (s *bypassScenario) report(t *testing.T, name string, tl tally) {
	t.Helper()
	s.rows = append(s.rows, bypassRow{name: name, tally: tl})
	t.Logf("%d requests (%d authenticated): %d bypasses, %d failures (%d auth twice), %d wrong chains, %d other answers to unauthenticated",
		tl.sent, tl.authed, tl.bypasses, tl.failures, tl.authTwice, tl.wrongChains, tl.unauthOther)
	if !tl.clean() {
		t.Errorf("bypass invariant broken:\n  %s", strings.Join(tl.notes, "\n  "))
	}
}

// awaitSwitch polls check every switchPoll until it returns nil or
// switchTimeout passes, then fails the test with check's last error and
// what the fleet holds. (The checks read the admin API and send probes: a
// poll every few milliseconds would take CPU from the transition itself.)
func (s *bypassScenario) awaitSwitch(what string, check func() error) {
	s.f.t.Helper()
	end := time.Now().Add(switchTimeout)
	tick := time.NewTicker(switchPoll)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			s.f.dump()
			s.f.t.Fatalf("waiting for %s: not within %v: %v", what, switchTimeout, err)
		}
		<-tick.C
	}
}

func phaseSuffix(phases int, name string) string {
	if phases == 1 {
		return ""
	}
	return "/" + name
}

// summary logs the counts of every transition measured.
func (s *bypassScenario) summary(t *testing.T, mode string) {
	var b strings.Builder
	fmt.Fprintf(&b, "bypass invariant per transition, control plane %s:\n", mode)
	fmt.Fprintf(&b, "  %6s %7s %7s %7s %7s %7s  %s\n", "sent", "bypass", "failed", "twice", "chain", "other", "transition")
	for _, r := range s.rows {
		name := strings.TrimPrefix(r.name, t.Name()+"/")
		fmt.Fprintf(&b, "  %6d %7d %7d %7d %7d %7d  %s\n", r.sent, r.bypasses, r.failures, r.authTwice, r.wrongChains, r.unauthOther, name)
	}
	b.WriteString("  (bypass: unauthenticated requests that reached the upstream; failed: authenticated requests not answered by it;\n")
	b.WriteString("   twice: failures that show auth ran twice; chain: requests upstream without auth then each stamp once, in a configured order;\n")
	b.WriteString("   other: unauthenticated requests answered neither 401 nor by the upstream)")
	t.Log(b.String())
}
