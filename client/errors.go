package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/poslab/posd/chain"
)

// APIError is an error answer from the node: the HTTP status and the
// {"error":{"code","message"}} body (see docs/API.md). When the body is not
// an error body, Code is derived from the status (bad_request, unauthorized,
// not_found, ...) and Message carries what the body said.
type APIError struct {
	Status  int    // HTTP status code
	Code    string // stable machine-readable code, e.g. "bad_nonce"
	Message string // human-readable detail
	// RetryAfter is the wait the node asked for in a Retry-After header
	// (503 too_many_connections; 503 busy: the budget for request bodies
	// or for list answers is spent), 0 when it named none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is reports whether target names the same code: another *APIError with an
// equal Code, or a chain rule sentinel (chain.ErrBadNonce, ...) whose code
// equals e.Code. So errors.Is(err, chain.ErrInsufficientFunds) works on
// errors the node sent.
func (e *APIError) Is(target error) bool {
	switch t := target.(type) {
	case *APIError:
		return t.Code == e.Code
	case *chain.RuleError:
		return string(t.Code) == e.Code
	}
	return false
}

// IsCode reports whether err is, or wraps, an *APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// IsNotFound reports whether err is the node's 404 not_found.
func IsNotFound(err error) bool { return IsCode(err, "not_found") }

// UnreachableError means no HTTP answer came back from the node: the
// connection was refused, the name did not resolve, or the request timed out.
type UnreachableError struct {
	URL string // the node's base URL
	Err error  // the underlying transport error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("node not reachable at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// statusCode is the code given to an error answer that carried no error body.
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "unauthorized"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "already_known"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "http_error"
}

// maxRetryAfter caps the wait a Retry-After header may ask of the client.
const maxRetryAfter = time.Minute

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110 §10.2.3), capped at maxRetryAfter; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// RetryAfter reports whether err is a node's refusal of the whole request
// that asks the client to come back later, and after how long: a 503 with
// a Retry-After header, that is too_many_connections (the listener is at
// its cap) or busy (the API's budget for request bodies, or for list
// answers, is spent). Nothing of such a request was taken, so sending it
// again is safe.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.RetryAfter <= 0 {
		return 0, false
	}
	return ae.RetryAfter, true
}
