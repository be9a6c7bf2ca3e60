package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/metrics"
)

// Codes of the API's own errors (rule codes come from chain and the pool).
const (
	codeBadJSON          = "bad_json"
	codeBadRequest       = "bad_request"
	codeBadAddress       = "bad_address"
	codeBadHash          = "bad_hash"
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codePayloadTooLarge  = "payload_too_large"
	codeInternal         = "internal"
	codeUnavailable      = "unavailable"
	codeAlreadyKnown     = "already_known"
	codeNonceInUse       = "nonce_in_use"
	codePoolFull         = "pool_full"
	codeNotSupported     = "not_supported"
)

// heartbeatInterval is how often /v1/events sends a comment, so proxies
// keep the stream open.
const heartbeatInterval = 15 * time.Second

// server is the API handler.
type server struct {
	b         Backend
	log       *slog.Logger
	tokenSum  [32]byte // SHA-256 of the token, compared in constant time
	hasToken  bool
	maxBody   int64
	maxBatch  int
	mux       *http.ServeMux
	methods   []string // every method in routes, for the 405 Allow header
	heartbeat time.Duration

	limits       Limits
	heavy        chan struct{} // slots of heavyRoutes answers
	bodies       *bodyBudget   // request bodies in flight (bodybudget.go)
	drains       chan struct{} // refused bodies being drained (bodybudget.go)
	hub          *hub          // /v1/events subscribers
	conns        *ConnLimiter  // nil when the listener is not limited
	checkHost    bool
	allowedHosts []string
	met          *metrics.API // request durations; nil-safe
	promHandler  http.Handler // GET /metrics
}

func newServer(o Options) *server {
	if o.Backend == nil {
		panic("api: Options.Backend is nil")
	}
	s := &server{
		b:         o.Backend,
		log:       o.Logger,
		hasToken:  o.Token != "",
		tokenSum:  sha256.Sum256([]byte(o.Token)),
		maxBody:   o.MaxBodyBytes,
		maxBatch:  o.MaxBatch,
		mux:       http.NewServeMux(),
		heartbeat: heartbeatInterval,

		limits:       o.Limits.withDefaults(),
		conns:        o.Conns,
		checkHost:    o.CheckHost,
		allowedHosts: o.AllowedHosts,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.heavy = make(chan struct{}, s.limits.MaxHeavy)
	s.bodies = newBodyBudget(int64(s.limits.MaxBodiesInFlight), int64(s.limits.MaxBodiesPerClient))
	s.drains = make(chan struct{}, maxDrains)
	s.hub = newHub(o.Backend, s.limits, s.log)
	s.hub.summarize = func(b *chain.Block) any { return s.summarize(b) }
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	s.met, s.promHandler = o.Metrics.API, o.Metrics.Handler()
	s.registerMetrics(o.Metrics)
	for _, rt := range routes {
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
		if !slices.Contains(s.methods, rt.method) {
			s.methods = append(s.methods, rt.method)
		}
		if rt.method == http.MethodGet && !slices.Contains(s.methods, http.MethodHead) {
			s.methods = append(s.methods, http.MethodHead)
		}
	}
	slices.Sort(s.methods)
	return s
}

// registerMetrics puts the API's own bounds on m: event streams open and
// dropped, heavy answers in flight, connections open and refused. A
// registry serves one API server (a second registration is skipped).
func (s *server) registerMetrics(m *metrics.Metrics) {
	if m == nil || m.Registry == nil {
		return
	}
	gauge := func(name, help string, f func() float64) {
		_ = m.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: name, Help: help}, f))
	}
	gauge("api_event_streams", "Open /v1/events streams.", func() float64 { n, _ := s.hub.stats(); return float64(n) })
	_ = m.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "api_event_streams_dropped",
		Help: "Event streams dropped for falling behind their byte budget."}, func() float64 { _, d := s.hub.stats(); return float64(d) }))
	gauge("api_bodies_in_flight_bytes", "Bytes of request bodies being read or handled (capped by the body budget).",
		func() float64 { used, _, _ := s.bodies.inUse(); return float64(used) })
	gauge("api_heavy_in_flight", "List answers being written now (capped by --api-max-lists).", func() float64 { return float64(len(s.heavy)) })
	if s.conns != nil {
		gauge("api_connections_open", "Open API connections.", func() float64 { return float64(s.conns.Open()) })
		_ = m.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "api_connections_refused",
			Help: "API connections refused at the connection cap."}, func() float64 { return float64(s.conns.Refused()) }))
	}
}

// ServeHTTP logs, recovers panics, and answers unknown routes and wrong
// methods in JSON before handing the request to the mux.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	if s.conns != nil && s.conns.Busy() {
		// Near the connection cap: idle keep-alive connections would hold
		// the slots new clients (and health checks) need.
		sw.Header().Set("Connection", "close")
	}
	route := metrics.UnmatchedRoute
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("api: panic in handler", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.wroteHeader {
				// Part of an answer is out: abort the connection so the
				// client sees a failure, not a truncated success.
				panic(http.ErrAbortHandler)
			}
			s.writeError(sw, r, http.StatusInternalServerError, codeInternal, "internal error")
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "api: request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.Status()), slog.Duration("duration", time.Since(start)))
		}
		s.met.ObserveRequest(route, sw.Status(), time.Since(start))
	}()
	if !s.hostAllowed(r.Host) {
		s.writeError(sw, r, http.StatusForbidden, codeHostNotAllowed,
			fmt.Sprintf("Host %q is not allowed on a loopback listener (DNS rebinding guard); use localhost or 127.0.0.1, or list the name in --api-allowed-hosts", r.Host))
		return
	}
	if clean := cleanPath(r.URL.Path); clean != r.URL.Path {
		// ServeMux would redirect with an HTML body; the API answers JSON.
		s.writeError(sw, r, http.StatusNotFound, codeNotFound,
			fmt.Sprintf("no route %s %s: paths hold no . or .. elements nor empty ones (did you mean %s?)", r.Method, r.URL.Path, clean))
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		if allow := s.allowed(r); len(allow) > 0 {
			sw.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(sw, r, http.StatusMethodNotAllowed, codeMethodNotAllowed,
				fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		s.writeError(sw, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
		return
	}
	route = pattern // a line of the route table: bounded label values
	release, ok := s.chargeBody(sw, r)
	if !ok {
		return
	}
	defer release()
	if r.Body != nil {
		// On the server's own writer, so an oversized body also closes the connection.
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	}
	s.mux.ServeHTTP(sw, r)
}

// cleanPath is p as ServeMux would redirect it: without . and ..
// elements or empty ones, a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// allowed returns the methods the mux would route for r's path.
func (s *server) allowed(r *http.Request) []string {
	var out []string
	for _, m := range s.methods {
		if m == r.Method {
			continue
		}
		probe := r.WithContext(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			out = append(out, m)
		}
	}
	return out
}

// wrap turns a route into an http.Handler: admin check, then the handler,
// then the error body for what it returns.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.admin && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="posd"`)
			s.writeError(w, r, http.StatusUnauthorized, codeUnauthorized,
				"this call needs Authorization: Bearer <the content of api.token>")
			return
		}
		if heavyRoutes[rt.pattern] {
			release, ok := s.acquireHeavy(w, r)
			if !ok {
				return
			}
			defer release()
		}
		if err := rt.handle(s, w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// authorized reports whether r carries the admin token.
func (s *server) authorized(r *http.Request) bool {
	if !s.hasToken {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) == 1
}

// fail writes the error body for err (see statusOf).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, e := s.errorOf(r, err)
	s.writeError(w, r, status, e.Code, e.Message)
}

// errorOf maps err to a status and an error body, logging internal errors.
func (s *server) errorOf(r *http.Request, err error) (int, *rpc.Error) {
	status, code := statusOf(err)
	if status == http.StatusInternalServerError {
		s.log.Error("api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		return status, &rpc.Error{Code: codeInternal, Message: "internal error"}
	}
	msg := err.Error()
	var re *chain.RuleError
	if errors.As(err, &re) && re.Message != "" {
		msg = re.Message
	}
	return status, &rpc.Error{Code: code, Message: msg}
}

// statusOf maps an error to its HTTP status and code: rule codes by the
// table of docs/API.md (unlisted rule codes 422), ErrNotFound 404, an
// oversized body 413, anything else 500 internal.
func statusOf(err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, codePayloadTooLarge
	}
	if code := string(chain.CodeOf(err)); code != "" {
		switch code {
		case codeAlreadyKnown, codeNonceInUse:
			return http.StatusConflict, code
		case codePoolFull, codeUnavailable, codeBusy, codeTooManyStreams, codeTooManyConnections:
			return http.StatusServiceUnavailable, code
		case codePayloadTooLarge:
			return http.StatusRequestEntityTooLarge, code
		case codeBadRequest, codeBadJSON, codeBadAddress, codeBadHash:
			return http.StatusBadRequest, code
		case codeHostNotAllowed:
			return http.StatusForbidden, code
		case codeUnauthorized:
			return http.StatusUnauthorized, code
		case codeNotFound:
			return http.StatusNotFound, code
		case codeMethodNotAllowed:
			return http.StatusMethodNotAllowed, code
		case codeBodyTooSlow:
			return http.StatusRequestTimeout, code
		case codeInternal:
			return http.StatusInternalServerError, code
		case codeNotSupported:
			return http.StatusNotImplemented, code
		}
		return http.StatusUnprocessableEntity, code
	}
	if errors.Is(err, ErrNotFound) {
		return http.StatusNotFound, codeNotFound
	}
	return http.StatusInternalServerError, codeInternal
}

// apiErr returns a RuleError with one of the API's own codes.
func apiErr(code, format string, args ...any) error {
	return &chain.RuleError{Code: chain.ErrorCode(code), Message: fmt.Sprintf(format, args...)}
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.writeJSON(w, r, status, rpc.ErrorBody{Error: &rpc.Error{Code: code, Message: msg}})
}

// writeJSON writes v as the JSON answer with status.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.log.Error("api: encode answer", "method", r.Method, "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		data, _ = json.Marshal(rpc.ErrorBody{Error: &rpc.Error{Code: codeInternal, Message: "internal error"}})
	}
	data = append(data, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// readBody reads the whole body (capped by the MaxBytesReader of ServeHTTP) and
// refuses an empty one.
func (s *server) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return nil, apiErr(codePayloadTooLarge, "body of %d bytes, the limit is %d", r.ContentLength, s.maxBody)
	}
	if r.Body == nil {
		return nil, apiErr(codeBadJSON, "empty body")
	}
	var data []byte
	var err error
	if r.ContentLength > 0 {
		data, err = readDeclared(r.Body, r.ContentLength)
	} else {
		data, err = io.ReadAll(r.Body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var be *errBodyBudget
		var slow *errBodyTooSlow
		switch {
		case errors.As(err, &mbe):
			return nil, apiErr(codePayloadTooLarge, "body over the limit of %d bytes", mbe.Limit)
		case errors.As(err, &be):
			return nil, apiErr(codeBusy, "%v", be)
		case errors.As(err, &slow):
			return nil, apiErr(codeBodyTooSlow, "%v", slow)
		}
		return nil, apiErr(codeBadRequest, "reading body: %v", err)
	}
	if len(trimJSONSpace(data)) == 0 {
		return nil, apiErr(codeBadJSON, "empty body")
	}
	return data, nil
}

// readDeclared reads a body of the declared size: its first chunk into a
// buffer of that chunk, then, once more of it arrived, the rest into one
// buffer of the whole size. The body budget charges the rest when that
// read arrives (and refuses it there if it must), so the whole buffer is
// allocated only once charged. A client that declares 8 MiB and sends
// nothing makes the node hold one chunk.
func readDeclared(body io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, min(size, bodyChunk))
	var next []byte // a read past the first chunk, before the buffer grows
	for int64(len(data)) < size {
		var n int
		var err error
		if len(data) < cap(data) {
			n, err = body.Read(data[len(data):cap(data)])
			data = data[:len(data)+n]
		} else {
			if next == nil {
				next = make([]byte, min(bodyChunk, size-int64(len(data))))
			}
			if n, err = body.Read(next); n > 0 {
				whole := make([]byte, len(data), size)
				copy(whole, data)
				data = append(whole, next[:n]...)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return data, err
		}
	}
	if int64(len(data)) < size {
		return data, io.ErrUnexpectedEOF
	}
	return data, nil
}

// decodeJSON decodes exactly one JSON value from data into v: unknown fields
// are ignored, wrong types, syntax errors, a top-level null and anything
// after the value are 400 bad_json. A value the chain types refuse with a
// rule code (a public_key or signature that is not the lowercase hex of
// its size: bad_public_key, bad_signature) keeps that code, 422, as when
// such a transaction decoded and the rules refused it.
func decodeJSON(data []byte, v any) error {
	data = trimJSONSpace(data)
	if len(data) == 0 {
		return apiErr(codeBadJSON, "empty JSON value")
	}
	if bytes.Equal(data, []byte("null")) {
		return apiErr(codeBadJSON, "expected a JSON object, got null")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return apiErr(codeBadJSON, "unexpected end of JSON input")
		}
		var re *chain.RuleError
		if errors.As(err, &re) {
			return re
		}
		return apiErr(codeBadJSON, "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apiErr(codeBadJSON, "unexpected data after the JSON value at offset %d", dec.InputOffset())
	}
	return nil
}

// readJSON is readBody then decodeJSON.
func (s *server) readJSON(r *http.Request, v any) error {
	data, err := s.readBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(data, v)
}

func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

// statusWriter records the status for the request log and the panic
// handler. Unwrap lets http.ResponseController reach the connection.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets code that asserts http.Flusher flush through the wrapper.
func (w *statusWriter) Flush() {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status written so far (200 when the handler wrote nothing).
func (w *statusWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
