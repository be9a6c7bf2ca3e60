package api

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Request bodies in flight are bounded in bytes, in all and per client IP.
// A body is read whole before it is decoded (up to the body cap, 8 MiB on a
// node), and up to --api-max-conns requests read at once: without a budget
// 300 clients each sending 8 MiB made a node hold 3 GB. The budget is taken
// as the body arrives: its first chunk before a byte is read, then a body
// of unknown length a chunk at a time, one of declared length all the rest
// at once as its second chunk arrives (readBody allocates the rest of its
// buffer then, so what is charged is what that buffer holds). A client
// that declares 8 MiB and sends nothing holds one chunk, not 8 MiB (taking
// the declared length before a byte arrived let 8 idle connections hold a
// 64 MiB budget for the 30 s read timeout); charging a declared body a
// chunk at a time instead read many bodies part-way before refusing them,
// and the garbage took a body flood's RSS from 442 to 628-742 MB. It is held until the
// request is answered (the decoded body lives as long), then given back.
// A request over the budget is answered 503 busy with a Retry-After: at
// once and without its body being read when not even its first chunk
// fits, otherwise as soon as the next chunk would pass the budget (the
// connection is closed), so it costs the node no memory. One client's
// share is a quarter of the total by default (limits.go), so one address
// cannot take the budget from the others.
//
// A body must also keep coming: byte n of it is due within
// Limits.BodyGrace + n/Limits.MinBodyRate of the request (5 s + n at
// 64 KiB/s by default, never past the server's read timeout), the
// connection's read deadline pushed forward as each chunk is asked for. A
// body later than that is answered 408 body_too_slow and its budget given
// back at once: before, a client that sent a chunk more than the first of
// a body declaring 8 MiB and then stalled held the 8 MiB until the 30 s
// read timeout, and two such connections kept its address's other POSTs
// refused (eight from four addresses, everyone's).

// bodyChunk is the most of a body read (and charged) at a time.
const bodyChunk = 64 << 10

// bodyBudget counts the bytes of request bodies in flight.
type bodyBudget struct {
	total, perClient int64

	mu     sync.Mutex
	used   int64
	byHost map[string]int64 // entries with bytes in flight only
	peak   int64            // the most used at once (tests, metrics)
}

func newBodyBudget(total, perClient int64) *bodyBudget {
	return &bodyBudget{total: total, perClient: min(perClient, total), byHost: map[string]int64{}}
}

// acquire takes n bytes for host; false (nothing taken) when the total or
// the host's share would be exceeded.
func (b *bodyBudget) acquire(host string, n int64) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.total || b.byHost[host]+n > b.perClient {
		return false
	}
	b.used += n
	b.byHost[host] += n
	b.peak = max(b.peak, b.used)
	return true
}

func (b *bodyBudget) release(host string, n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if left := b.byHost[host] - n; left > 0 {
		b.byHost[host] = left
	} else {
		delete(b.byHost, host)
	}
}

// inUse returns the bytes in flight, the clients holding some, and the peak.
func (b *bodyBudget) inUse() (used int64, clients int, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, len(b.byHost), b.peak
}

// clientHost is the IP of r's client (behind a proxy: the proxy's).
func clientHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// budgetedBody is a request body charged to the budget: held bytes are
// taken before they are read, and given back by done.
type budgetedBody struct {
	io.ReadCloser
	b      *bodyBudget
	host   string
	held   int64  // taken from the budget
	read   int64  // read so far
	size   int64  // the declared length (-1: unknown): never read more
	onOver func() // called once when the budget refuses more
	over   bool

	pace   *bodyPace // nil: no floor rate
	onSlow func()    // called once when the body falls behind it
	slow   error     // set once it did
}

// bodyPace sets the read deadlines of a body that must arrive at no less
// than a floor rate.
type bodyPace struct {
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64 // bytes per second
}

// deadline is when the body's first n bytes are due.
func (p *bodyPace) deadline(n int64) time.Time {
	due := p.grace + time.Duration(float64(n)/float64(p.rate)*float64(time.Second))
	return p.start.Add(min(due, readTimeout))
}

// errBodyTooSlow is returned by a budgetedBody's Read once the body fell
// behind the floor rate.
type errBodyTooSlow struct {
	read  int64
	rate  int64
	grace time.Duration
}

func (e *errBodyTooSlow) Error() string {
	return fmt.Sprintf("request body too slow: %d bytes arrived, a body must come at %d bytes/s or faster after the first %v", e.read, e.rate, e.grace)
}

// errBodyBudget is returned by a budgetedBody's Read when the budget
// refuses the next chunk of a body of unknown length.
type errBodyBudget struct{ total, perClient int64 }

func (e *errBodyBudget) Error() string {
	return fmt.Sprintf("request bodies in flight are at the node's budget (%d bytes in all, %d per client); try again shortly", e.total, e.perClient)
}

func (r *budgetedBody) Read(p []byte) (int, error) {
	if r.over {
		return 0, &errBodyBudget{r.b.total, r.b.perClient}
	}
	if r.slow != nil {
		return 0, r.slow
	}
	if r.size >= 0 {
		// net/http reads no further than the declared length.
		if r.read >= r.size {
			return 0, io.EOF
		}
		if left := r.size - r.read; int64(len(p)) > left {
			p = p[:left]
		}
	}
	// A chunk at a time, charged as it arrives (the caller's buffer
	// exists already: readBody grows it as the body comes; what the
	// budget bounds is what is kept).
	if len(p) > bodyChunk {
		p = p[:bodyChunk]
	}
	if r.pace != nil {
		_ = r.pace.rc.SetReadDeadline(r.pace.deadline(r.read + int64(len(p))))
	}
	n, err := r.ReadCloser.Read(p)
	if err != nil && r.pace != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// Given back now, not when the 408 is written: the connection
		// is dead and what it read is about to be dropped.
		r.slow = &errBodyTooSlow{read: r.read, rate: r.pace.rate, grace: r.pace.grace}
		r.done()
		if r.onSlow != nil {
			r.onSlow()
		}
		return 0, r.slow
	}
	if more := r.read + int64(n) - r.held; more > 0 {
		if r.size >= 0 {
			// Past the first chunk, the rest of the declared length at
			// once, as readDeclared allocates it: what is charged is
			// what that buffer holds, and a body refused is refused
			// before more than a chunk of it was read.
			more = r.size - r.held
		}
		if !r.b.acquire(r.host, more) {
			r.over = true
			if r.onOver != nil {
				r.onOver()
			}
			return 0, &errBodyBudget{r.b.total, r.b.perClient}
		}
		r.held += more
	}
	r.read += int64(n)
	if r.pace != nil && (err == io.EOF || r.size >= 0 && r.read >= r.size) {
		// Whole: the server's read timeout again. net/http reads the
		// connection in the background from here on to notice a client
		// gone, and that read hitting the floor rate's deadline would
		// cancel the request's context while it is handled.
		_ = r.pace.rc.SetReadDeadline(r.pace.start.Add(readTimeout))
		r.pace = nil
	}
	return n, err
}

// done gives the held bytes back; the body must not be read after it.
func (r *budgetedBody) done() {
	r.b.release(r.host, r.held)
	r.held = 0
}

// refuseBody answers 503 busy for a body over the budget; the connection
// is closed, so its unread body is never read.
func (s *server) refuseBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	s.writeError(w, r, http.StatusServiceUnavailable, codeBusy,
		(&errBodyBudget{s.bodies.total, s.bodies.perClient}).Error())
}

// chargeBody takes the budget for r's body and wraps it; release must be
// called once the answer is written. ok false: r was answered 503 busy.
func (s *server) chargeBody(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return func() {}, true
	}
	// Full duplex, for a refusal only: it is answered before the body is
	// read, then the body is drained (drainRefused); net/http would
	// otherwise read some of it first, then close the connection under
	// the client. Not for every request: a handler that answers without
	// reading a small body (a 401, say) relies on net/http reading it
	// before the answer, so the connection stays usable; in full duplex
	// the unread body could reset it.
	rc := http.NewResponseController(w)
	fullDuplex := func() { _ = rc.EnableFullDuplex() }
	host := clientHost(r)
	body := &budgetedBody{ReadCloser: r.Body, b: s.bodies, host: host, size: r.ContentLength}
	if r.ContentLength > s.maxBody {
		// Refused as too large (413) before a byte is read: nothing
		// taken, and nothing to read.
		body.size = 0
	} else {
		// The first chunk before a byte is read: a body refused at once
		// is never read (only drained); the rest is charged as it comes.
		first := int64(bodyChunk)
		if r.ContentLength >= 0 {
			first = min(first, r.ContentLength)
		}
		if !s.bodies.acquire(host, first) {
			fullDuplex()
			s.refuseBody(w, r)
			s.drainRefused(rc, r.Body, max(r.ContentLength, s.maxBody))
			return nil, false
		}
		body.held = first
	}
	if body.size != 0 {
		body.pace = &bodyPace{rc: rc, start: time.Now(), grace: s.limits.BodyGrace, rate: int64(s.limits.MinBodyRate)}
	}
	body.onSlow = func() {
		fullDuplex()
		w.Header().Set("Connection", "close")
	}
	body.onOver = func() {
		fullDuplex()
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
	}
	r.Body = body
	return func() {
		if body.over {
			left := s.maxBody - body.read
			if body.size >= 0 {
				left = body.size - body.read
			}
			s.drainRefused(rc, body.ReadCloser, left)
		}
		body.done()
	}, true
}

// Draining a refused body. Closing a connection whose client is still
// sending makes the kernel reset it, and the client then sees "connection
// reset" instead of the 503 (for 8 MiB bodies, 16 times in 20): it cannot
// tell to back off. So the answer is flushed and the rest of the body read
// and thrown away (into a shared 8 KiB buffer: it costs no memory), for at
// most drainTimeout and at most maxDrains connections at once (a flood of
// refused bodies must not buy much reading either); beyond
// them the connection is closed unread.
const (
	maxDrains    = 8
	drainTimeout = 2 * time.Second
)

// drainRefused flushes the answer written and discards up to n more bytes
// of body.
func (s *server) drainRefused(rc *http.ResponseController, body io.Reader, n int64) {
	if n <= 0 {
		return
	}
	select {
	case s.drains <- struct{}{}:
		defer func() { <-s.drains }()
	default:
		return
	}
	_ = rc.Flush()
	_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, body, n)
}
