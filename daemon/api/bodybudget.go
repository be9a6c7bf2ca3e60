package api

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Request bodies in flight are bounded in bytes, in all and per client IP.
// A body is read whole before it is decoded (up to the body cap, 8 MiB on a
// node), and up to --api-max-conns requests read at once: without a budget
// 300 clients each sending 8 MiB made a node hold 3 GB. The budget is taken
// before the body is read: all of a declared Content-Length at once, and for
// a body of unknown length (chunked) as it arrives, a chunk at a time. It is
// held until the request is answered (the decoded body lives as long), then
// given back. A request over the budget is answered 503 busy with a
// Retry-After, at once and without its body being read (the connection is
// closed), so it costs the node no memory.

// bodyChunk is the most of a body of unknown length read at a time.
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
	fixed  bool   // held is the declared length: never take more
	onOver func() // called once when the budget refuses more
	over   bool
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
	if r.fixed {
		// The declared length was taken; net/http reads no further.
		if r.read >= r.held {
			return 0, io.EOF
		}
		if left := r.held - r.read; int64(len(p)) > left {
			p = p[:left]
		}
		n, err := r.ReadCloser.Read(p)
		r.read += int64(n)
		return n, err
	}
	// Unknown length: a chunk at a time, charged as it arrives (the
	// caller's buffer exists already; what the budget bounds is what is
	// kept).
	if len(p) > bodyChunk {
		p = p[:bodyChunk]
	}
	n, err := r.ReadCloser.Read(p)
	if more := r.read + int64(n) - r.held; more > 0 {
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
	// Full duplex: a refusal is answered before the body is read, then
	// the body is drained (drainRefused); net/http would otherwise read
	// some of it first, then close the connection under the client.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	host := clientHost(r)
	body := &budgetedBody{ReadCloser: r.Body, b: s.bodies, host: host}
	switch {
	case r.ContentLength > s.maxBody:
		// Refused as too large (413) before a byte is read: nothing
		// taken, and nothing to read.
		body.fixed = true
	case r.ContentLength > 0:
		if !s.bodies.acquire(host, r.ContentLength) {
			s.refuseBody(w, r)
			s.drainRefused(rc, r.Body, r.ContentLength)
			return nil, false
		}
		body.held, body.fixed = r.ContentLength, true
	}
	body.onOver = func() {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
	}
	r.Body = body
	return func() {
		if body.over {
			s.drainRefused(rc, body.ReadCloser, s.maxBody-body.read)
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
