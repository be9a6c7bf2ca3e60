package api

import (
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
	return l
}

// Codes of the limits.
const (
	codeBusy               = "busy"
	codeTooManyStreams     = "too_many_streams"
	codeTooManyConnections = "too_many_connections"
	codeHostNotAllowed     = "host_not_allowed"
)

// heavyRoutes are the patterns whose answers grow with the chain or the
// pool; at most Limits.MaxHeavy of them run at once.
var heavyRoutes = map[string]bool{
	"/v1/accounts":    true,
	"/v1/stakes":      true,
	"/v1/blocks":      true,
	"/v1/txs/pending": true,
	"/accounts":       true,
	"/stakes":         true,
	"/blockchain":     true,
	"/transactions":   true,
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
// it holds neither a file descriptor nor memory. Unlike
// golang.org/x/net/netutil it never blocks Accept, so the kernel's backlog
// does not fill with clients that will time out anyway.
func LimitListener(ln net.Listener, max int) *ConnLimiter {
	if max <= 0 {
		max = DefaultLimits().MaxConns
	}
	return &ConnLimiter{Listener: ln, max: int64(max)}
}

// ConnLimiter is the listener of LimitListener.
type ConnLimiter struct {
	net.Listener
	max      int64
	open     atomic.Int64
	refused  atomic.Int64
	accepted atomic.Int64
}

// Open is the number of connections open now.
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
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refused.Add(1)
			// A fresh socket's send buffer is empty: this write does not
			// block, and the deadline makes sure of it.
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(tooManyConns)
			_ = c.Close()
			continue
		}
		l.accepted.Add(1)
		return &limitedConn{Conn: c, l: l}, nil
	}
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
