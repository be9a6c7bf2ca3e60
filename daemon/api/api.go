// Package api serves posd's HTTP API: it turns HTTP requests into calls on a
// Backend (the node) and the answers into JSON, with the routes, statuses and
// error codes of docs/API.md. It holds no node state of its own.
//
// # Routes
//
// Every route is one line of the routes table in routes.go: method, pattern
// (net/http ServeMux syntax, path values read with r.PathValue), whether it
// needs the admin token, and a handler method of *server. To add an API, write
//
//	func (s *server) myThing(w http.ResponseWriter, r *http.Request) error
//
// and add {"GET", "/v1/my-thing", false, (*server).myThing} to the table.
// The handler writes its answer with writeJSON and returns nil, or returns an
// error and the table's wrapper writes the error body: a *chain.RuleError
// becomes its code with the status of statusOf (bad_request 400, already_known
// 409, ..., other rule codes 422), ErrNotFound 404, anything else a logged 500
// "internal". Panics are recovered into the same 500; the node keeps running.
//
// Around the table, the handler answers unknown paths with 404 not_found and
// known paths with the wrong method with 405 method_not_allowed (and Allow),
// both as JSON; admin routes need "Authorization: Bearer <token>" (else 401
// unauthorized); request bodies are capped at Options.MaxBodyBytes (413
// payload_too_large); every request is logged at debug level.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/metrics"
)

// Backend is what the node gives the API. The daemon implements it. Methods
// are called concurrently from request goroutines.
type Backend interface {
	Status() rpc.Status
	Genesis() *chain.Genesis
	Accounts() []rpc.Account             // address order
	Account(a chain.Address) rpc.Account // with PendingNonce set; unknown address: zeros
	Stakes() []rpc.Stake                 // largest first, then address
	BlockByHeight(h uint64) (*chain.Block, error)
	BlockByHash(h chain.Hash) (*chain.Block, error)        // ErrNotFound when absent
	Blocks(from uint64, limit int) ([]*chain.Block, error) // ascending, main chain, at most limit
	Height() uint64                                        // of the head
	PendingTxs() []chain.Transaction
	TxInfo(id chain.Hash) (rpc.TxInfo, error) // ErrNotFound when unknown
	// SubmitTx admits one transaction to the pool. Its errors are
	// *chain.RuleError: chain rule codes and the pool's (already_known,
	// nonce_in_use, nonce_gap, pool_full, unavailable, ...).
	SubmitTx(tx chain.Transaction) (chain.Hash, error)
	// SubmitTxs is SubmitTx per item: both slices have len(txs) entries.
	SubmitTxs(txs []chain.Transaction) ([]chain.Hash, []error)
	Config() rpc.Config
	SetConfig(p rpc.ConfigPatch) (rpc.Config, error) // validation errors: *chain.RuleError bad_request
	StakeFromNode(amount uint64) (chain.Hash, error) // errors as SubmitTx
	NodeKey() rpc.NodeKey
	Peers() []rpc.Peer
	// SubscribeBlocks delivers each new head until cancel is called; the
	// channel closes when the node stops.
	SubscribeBlocks() (ch <-chan *chain.Block, cancel func())
}

// ErrNotFound is what Backend lookups return (or wrap) for an absent block or
// transaction; the API answers 404 not_found.
var ErrNotFound = errors.New("not found")

// DefaultMaxBodyBytes caps request bodies when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 4 << 20

// Options configure NewHandler.
type Options struct {
	Backend Backend
	// Token is the admin bearer token. Empty refuses every admin call.
	Token string
	// Logger receives request logs (debug) and internal errors; nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBatch caps the transactions of one POST /v1/txs array; 0 means the
	// genesis max_block_txs.
	MaxBatch int
	// Limits bound connections, streams, pages and answer times; zero
	// fields take DefaultLimits.
	Limits Limits
	// Conns, if set, is the listener's connection limiter: near its cap
	// answers close their connections instead of keeping them alive.
	Conns *ConnLimiter
	// CheckHost refuses requests whose Host header is not a loopback name
	// or address (or in AllowedHosts) with 403 host_not_allowed. Set it on
	// loopback listeners: it stops DNS rebinding.
	CheckHost bool
	// AllowedHosts are further Host names CheckHost accepts ("*": any).
	AllowedHosts []string
	// Metrics is what GET /metrics serves (its Registry) and where request
	// durations go (its API). Nil: a registry of the API's own metrics.
	Metrics *metrics.Metrics
}

// HealthChecker is optional for a Backend: while Health returns an error
// (commits failing, the node halted), /healthz answers 503 "unhealthy".
// It must not wait for the chain lock: health answers while blocks import.
type HealthChecker interface {
	Health() (height uint64, err error)
}

// NewHandler returns the API's handler: the routes table behind 404/405,
// admin, body-limit, panic-recovery and logging handling.
func NewHandler(o Options) http.Handler { return newServer(o) }

// Timeouts of NewServer. WriteTimeout is a total: it is never pushed
// forward. /blockchain sets its own total (Limits.BlockchainTimeout) once;
// /v1/events gives each event Limits.EventWriteTimeout and ends at
// Limits.StreamMaxAge.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// NewServer returns an http.Server for h on addr with bounded timeouts and
// header size. Shutdown cancels the contexts of the requests in flight, so
// event streams end instead of holding Shutdown until its deadline.
func NewServer(addr string, h http.Handler) *http.Server {
	return NewServerLimits(addr, h, Limits{WriteTimeout: writeTimeout})
}

// NewServerLimits is NewServer with l.WriteTimeout as the total time to
// write an answer (zero: DefaultLimits).
func NewServerLimits(addr string, h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	srv.RegisterOnShutdown(cancel)
	return srv
}
