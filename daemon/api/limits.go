package api

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what clients can make the API hold: connections, streams,
// memory per answer and time per answer. Zero fields take the defaults of
// DefaultLimits. docs/RELIABILITY.md lists them with the tests that prove
// them.
type Limits struct {
	// MaxConns caps open HTTP connections (LimitListener). A connection
	// over the cap is answered 503 too_many_connections and closed.
	MaxConns int
	// MaxEventStreams caps concurrent GET /v1/events subscribers; the next
	// one is answered 503 too_many_streams.
	MaxEventStreams int
	// EventBufferBytes is each subscriber's budget of encoded events queued
	// but not yet written. A subscriber over it is dropped (its stream
	// ends); the node and the other subscribers go on. Events are encoded
	// once and shared, so all subscribers together hold at most this much
	// beyond the event being written.
	EventBufferBytes int
	// EventWriteTimeout is how long one event may take to reach the client.
	EventWriteTimeout time.Duration
	// StreamMaxAge ends an event stream after this long; clients reconnect.
	StreamMaxAge time.Duration
	// MaxHeavy caps concurrent answers of the list routes (blocks, pool,
	// accounts, stakes, /blockchain); the next one is answered 503 busy at
	// once, so the light routes (/healthz, /v1/status) never wait.
	MaxHeavy int
	// MaxPageBytes caps the JSON of one list page (GET /v1/blocks,
	// /v1/txs/pending, /v1/accounts); the rest comes with the cursor in
	// the X-Next-* header.
	MaxPageBytes int
	// WriteTimeout is the total time to write an answer (from the end of
	// the request headers), never pushed forward.
	WriteTimeout time.Duration
	// BlockchainTimeout is the total time GET /blockchain may take.
	BlockchainTimeout time.Duration
	// MaxBodiesInFlight caps the bytes of request bodies being read or
	// handled at once, MaxBodiesPerClient those of one client IP; a
	// request over either is answered 503 busy with a Retry-After
	// (bodybudget.go).
	MaxBodiesInFlight  int
	MaxBodiesPerClient int
	// MinBodyRate (bytes per second) and BodyGrace bound the time a body
	// may take: byte n of it must arrive within BodyGrace + n/MinBodyRate
	// of the request (and within the server's 30 s read timeout). A body
	// slower than that is answered 408 body_too_slow, its budget given
	// back at once (bodybudget.go).
	MinBodyRate int
	BodyGrace   time.Duration
}

// DefaultLimits are the limits of a node started without flags.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:          512,
		MaxEventStreams:   256,
		EventBufferBytes:  16 << 20,
		EventWriteTimeout: 10 * time.Second,
		StreamMaxAge:      30 * time.Minute,
		MaxHeavy:          8,
		MaxPageBytes:      4 << 20,
		WriteTimeout:      30 * time.Second,
		BlockchainTimeout: 5 * time.Minute,
		// Bodies are decoded whole: a JSON batch holds about 3 times its
		// bytes as Go values, and posd's GOGC of 200 lets the heap reach
		// three times what is live (up to its soft memory limit); 64 MiB
		// keeps a flood of 8 MiB bodies under 600 MB RSS
		// (docs/RELIABILITY.md).
		MaxBodiesInFlight:  64 << 20,
		MaxBodiesPerClient: 16 << 20,
		// 512 kbit/s: an 8 MiB body on such a link takes longer than the
		// 30 s read timeout anyway, so honest clients lose nothing; a
		// stalled one gives its declared length back after about 7 s.
		MinBodyRate: 64 << 10,
		BodyGrace:   5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxConns, d.MaxConns)
	set(&l.MaxEventStreams, d.MaxEventStreams)
	set(&l.EventBufferBytes, d.EventBufferBytes)
	setD(&l.EventWriteTimeout, d.EventWriteTimeout)
	setD(&l.StreamMaxAge, d.StreamMaxAge)
	set(&l.MaxHeavy, d.MaxHeavy)
	set(&l.MaxPageBytes, d.MaxPageBytes)
	setD(&l.WriteTimeout, d.WriteTimeout)
	setD(&l.BlockchainTimeout, d.BlockchainTimeout)
	set(&l.MaxBodiesInFlight, d.MaxBodiesInFlight)
	set(&l.MaxBodiesPerClient, d.MaxBodiesPerClient)
	set(&l.MinBodyRate, d.MinBodyRate)
	setD(&l.BodyGrace, d.BodyGrace)
	return l
}

// Codes of the limits.
const (
	codeBusy               = "busy"
	codeBodyTooSlow        = "body_too_slow"
	codeTooManyStreams     = "too_many_streams"
	codeTooManyConnections = "too_many_connections"
	codeHostNotAllowed     = "host_not_allowed"
)

// heavyRoutes are the patterns whose answers grow with the chain or the
// pool; at most Limits.MaxHeavy of them run at once.
var heavyRoutes = map[string]bool{
	"/v1/accounts":     true,
	"/v1/stakes":       true,
	"/v1/blocks":       true,
	"/v1/blocks/txids": true,
	"/v1/txs/pending":  true,
	"/accounts":        true,
	"/stakes":          true,
	"/blockchain":      true,
	"/transactions":    true,
}

// acquireHeavy takes a slot for a heavy answer, or answers 503 busy.
func (s *server) acquireHeavy(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	select {
	case s.heavy <- struct{}{}:
		return func() { <-s.heavy }, true
	default:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		s.writeError(w, r, http.StatusServiceUnavailable, codeBusy,
			fmt.Sprintf("%d list answers are being written already; try again shortly", cap(s.heavy)))
		return nil, false
	}
}

// hostAllowed implements the Host-header check of loopback listeners: a
// web page from another origin that rebinds its DNS name to 127.0.0.1
// still sends its own name as Host, and is refused.
func (s *server) hostAllowed(host string) bool {
	if !s.checkHost {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range s.allowedHosts {
		if a == "*" || strings.EqualFold(a, h) {
			return true
		}
	}
	return false
}

// LimitListener caps the open connections of ln at max: a connection over
// the cap gets a 503 too_many_connections answer and is closed at once, so
// it holds neither a file descriptor nor memory for long. Unlike
// golang.org/x/net/netutil it never blocks Accept, so the kernel's backlog
// does not fill with clients that will time out anyway. One exception: an
// over-cap connection whose first line is a health check (GET or HEAD
// /healthz, read within a second) is served on a few reserved slots, so a
// flood of connections never makes the node look dead to its monitor.
func LimitListener(ln net.Listener, max int) *ConnLimiter {
	if max <= 0 {
		max = DefaultLimits().MaxConns
	}
	l := &ConnLimiter{Listener: ln, max: int64(max), conns: make(chan net.Conn), closed: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// healthReserve is how many over-cap connections may be read for a health
// check at once (and served when they are one).
const healthReserve = 16

// ConnLimiter is the listener of LimitListener.
type ConnLimiter struct {
	net.Listener
	max      int64
	open     atomic.Int64
	refused  atomic.Int64
	triaging atomic.Int64

	conns     chan net.Conn
	acceptErr error // set before closed is closed
	closed    chan struct{}
	closeOnce sync.Once
}

// Open is the number of connections open now (health checks on reserved
// slots included).
func (l *ConnLimiter) Open() int { return int(l.open.Load()) }

// Refused counts connections refused over the cap.
func (l *ConnLimiter) Refused() int64 { return l.refused.Load() }

// Busy reports whether the listener is near its cap (three quarters):
// answers then close their connection instead of keeping it alive.
func (l *ConnLimiter) Busy() bool { return l.open.Load()*4 >= l.max*3 }

var tooManyConns = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: " +
	strconv.Itoa(len(tooManyConnsBody)) + "\r\n\r\n" + tooManyConnsBody)

const tooManyConnsBody = `{"error":{"code":"too_many_connections","message":"the node has as many open connections as it allows; try again shortly"}}` + "\n"

// Accept returns the next connection under the cap.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, l.acceptErr
	}
}

// Close closes the listener; Accept then returns its error.
func (l *ConnLimiter) Close() error {
	return l.Listener.Close()
}

func (l *ConnLimiter) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.acceptErr = err
			l.closeOnce.Do(func() { close(l.closed) })
			return
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			if l.triaging.Add(1) > healthReserve {
				l.triaging.Add(-1)
				l.refuse(c)
				continue
			}
			go l.triage(c)
			continue
		}
		l.hand(&limitedConn{Conn: c, l: l})
	}
}

// hand gives c to Accept, or closes it once the listener is closed.
func (l *ConnLimiter) hand(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *ConnLimiter) refuse(c net.Conn) {
	l.refused.Add(1)
	// A fresh socket's send buffer is empty: this write does not block,
	// and the deadline makes sure of it.
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(tooManyConns)
	_ = c.Close()
}

// triage reads the first line of an over-cap connection: a health check
// is served (on a reserved slot), anything else refused.
func (l *ConnLimiter) triage(c net.Conn) {
	defer l.triaging.Add(-1)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 0, 64)
	for len(buf) < cap(buf) && !bytes.Contains(buf, []byte("\r\n")) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	if !bytes.HasPrefix(buf, []byte("GET /healthz ")) && !bytes.HasPrefix(buf, []byte("HEAD /healthz ")) {
		l.refuse(c)
		return
	}
	l.open.Add(1)
	// The connection closes after this answer: Busy holds while over cap.
	l.hand(&limitedConn{Conn: &prefixConn{Conn: c, prefix: buf}, l: l})
}

// prefixConn replays bytes already read from Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

type limitedConn struct {
	net.Conn
	l    *ConnLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
