// Package client is a Go client for posd's HTTP API (docs/API.md): one typed
// method per /v1 route and /healthz, a Server-Sent Events reader for new
// blocks, and WaitTx to follow a transaction until it is committed.
//
// Answers use the shared types of chain and chain/rpc. A node's error answer
// becomes an *APIError (match codes with IsCode or errors.Is against the
// chain rule sentinels); a node that cannot be reached becomes an
// *UnreachableError. Transaction sends the node refuses whole with 503 and
// Retry-After (too_many_connections; busy when its budget for request
// bodies is spent) are sent again after the wait it asks for, a bounded
// number of times (WithBusyRetries); RetryAfter reads such a refusal.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// DefaultTimeout bounds each request unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client talks to one posd node. It is safe for concurrent use.
type Client struct {
	base    string // normalized base URL, no trailing slash
	baseErr error  // set when baseURL could not be parsed
	hc      *http.Client
	timeout time.Duration
	token   string
	agent   string
	retries int // sends again after a 503 with Retry-After (WithBusyRetries)
	// pause waits before a retry (a variable for tests).
	pause func(ctx context.Context, d time.Duration) error
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc. Leave
// hc.Timeout at zero: it would also cut the event stream (use WithTimeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds every request but Events (a stream) and WaitTx (bounded
// by its context; each of its polls is bounded). Zero or less: no bound.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithToken sets the admin bearer token (the content of <posd home>/api.token),
// sent with admin calls only: Config, SetConfig, Stake.
func WithToken(token string) Option {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// DefaultBusyRetries is how many times a transaction send is retried after
// a 503 with Retry-After, unless WithBusyRetries says otherwise.
const DefaultBusyRetries = 3

// WithBusyRetries sets how many times SubmitTx, SubmitTxs and
// SubmitTxsBinary send again a request the node refused whole with 503
// and a Retry-After header, waiting what the header asks (at most a
// minute) each time. Those 503s are too_many_connections (the listener
// is at its cap of connections) and busy (the API's budget for request
// bodies is spent; the node read nothing of the send); the API's other
// busy, list answers being written, never concerns a send. 0 turns it
// off; the last refusal is returned (see RetryAfter). Other calls are
// never retried.
func WithBusyRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a client for the node at baseURL ("http://127.0.0.1:5001"; a
// missing scheme means http). An unusable URL makes every call fail.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{hc: http.DefaultClient, timeout: DefaultTimeout, agent: "posd-client", retries: DefaultBusyRetries, pause: sleep}
	c.base, c.baseErr = normalize(baseURL)
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	return c
}

func normalize(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("empty node URL")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return raw, fmt.Errorf("invalid node URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return raw, fmt.Errorf("invalid node URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return raw, fmt.Errorf("invalid node URL %q: no host", raw)
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

// BaseURL returns the node's URL as the client uses it.
func (c *Client) BaseURL() string { return c.base }

// request describes one call.
type request struct {
	method string
	path   string // starting with "/"
	query  url.Values
	body   any // marshaled to JSON when non-nil
	// raw is sent as the body, with rawType as its Content-Type, when
	// body is nil.
	raw     []byte
	rawType string
	admin   bool
	stream  bool // no timeout, Accept: text/event-stream
	// busyRetry: a 503 with Retry-After is sent again, up to c.retries
	// times (only requests a refusal leaves without effect).
	busyRetry bool
	// binary, when set, decodes an answer of Content-Type
	// application/octet-stream (asked for in Accept, JSON still taken):
	// do hands it the body instead of decoding JSON.
	binary func([]byte) error
}

// maxBinaryAnswer bounds the body of a binary answer do reads: a binary
// batch answer of the largest batch a node takes with every transaction
// refused at length is a few MiB.
const maxBinaryAnswer = 32 << 20

// send performs r and returns the response of a 2xx answer; any other answer
// is decoded into an *APIError.
func (c *Client) send(ctx context.Context, r request) (*http.Response, context.CancelFunc, error) {
	if c.baseErr != nil {
		return nil, nil, c.baseErr
	}
	parent := ctx
	cancel := context.CancelFunc(func() {})
	if !r.stream && c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		data, err := json.Marshal(r.body)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(data)
	} else if r.raw != nil {
		body = bytes.NewReader(r.raw)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else if r.raw != nil {
		req.Header.Set("Content-Type", r.rawType)
	}
	switch {
	case r.stream:
		req.Header.Set("Accept", "text/event-stream")
	case r.binary != nil:
		req.Header.Set("Accept", rpc.ContentTypeTxBatch+", application/json;q=0.9")
	default:
		req.Header.Set("Accept", "application/json")
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	if r.admin && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		defer cancel()
		return nil, nil, c.transportError(parent, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		return nil, nil, decodeError(resp)
	}
	return resp, cancel, nil
}

// transportError turns a failed round trip into an error: the end of the
// caller's context stays as it is (its Err); anything else, including the
// client's own timeout, is an *UnreachableError.
func (c *Client) transportError(parent context.Context, err error) error {
	if perr := parent.Err(); perr != nil {
		return perr
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &UnreachableError{URL: c.base, Err: fmt.Errorf("no answer within %s", c.timeout)}
	}
	return &UnreachableError{URL: c.base, Err: err}
}

func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	retry := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	var eb rpc.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, RetryAfter: retry}
	}
	msg := strings.TrimSpace(string(data))
	if msg == "" || !isText(msg) || strings.HasPrefix(msg, "{") {
		msg = http.StatusText(resp.StatusCode)
	}
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return &APIError{Status: resp.StatusCode, Code: statusCode(resp.StatusCode), Message: msg, RetryAfter: retry}
}

func isText(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// do performs r and decodes a JSON answer into out (nil: discard).
func (c *Client) do(ctx context.Context, r request, out any) error {
	resp, cancel, err := c.send(ctx, r)
	for attempt := 1; err != nil && r.busyRetry && attempt <= c.retries; attempt++ {
		wait, ok := RetryAfter(err)
		if !ok {
			break
		}
		if err := c.pause(ctx, wait); err != nil {
			return err
		}
		resp, cancel, err = c.send(ctx, r)
		if err != nil && attempt == c.retries {
			if _, still := RetryAfter(err); still {
				return fmt.Errorf("%s %s: node still busy after %d attempts: %w", r.method, r.path, attempt+1, err)
			}
		}
	}
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return c.decode(ctx, r, resp, out)
}

// decode reads the answer to r into out (JSON), or hands it to r.binary
// when it is binary. ctx is the caller's.
func (c *Client) decode(ctx context.Context, r request, resp *http.Response, out any) error {
	var err error
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); r.binary != nil && mt == rpc.ContentTypeTxBatch {
		err = c.readBinary(r, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	if err == nil {
		return nil
	}
	if perr := ctx.Err(); perr != nil {
		return perr
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &UnreachableError{URL: c.base, Err: fmt.Errorf("no complete answer within %s", c.timeout)}
	}
	return fmt.Errorf("unexpected answer to %s %s from %s: %w", r.method, r.path, c.base, err)
}

// readBinary reads a binary answer to r (at most maxBinaryAnswer bytes)
// and hands it to r.binary.
func (c *Client) readBinary(r request, body io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(body, maxBinaryAnswer+1))
	switch {
	case err != nil:
		return err
	case len(data) > maxBinaryAnswer:
		return fmt.Errorf("a binary answer over %d bytes", maxBinaryAnswer)
	}
	return r.binary(data)
}

func get[T any](ctx context.Context, c *Client, path string, query url.Values) (T, error) {
	var v T
	err := c.do(ctx, request{method: http.MethodGet, path: path, query: query}, &v)
	return v, err
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (rpc.Status, error) {
	return get[rpc.Status](ctx, c, "/v1/status", nil)
}

// Accounts is GET /v1/accounts: every account in address order.
func (c *Client) Accounts(ctx context.Context) ([]rpc.Account, error) {
	return get[[]rpc.Account](ctx, c, "/v1/accounts", nil)
}

// Account is GET /v1/accounts/{addr}, with pending_nonce. An unknown address
// reads as zeros.
func (c *Client) Account(ctx context.Context, addr chain.Address) (rpc.Account, error) {
	return get[rpc.Account](ctx, c, "/v1/accounts/"+url.PathEscape(string(addr)), nil)
}

// Stakes is GET /v1/stakes: largest stake first.
func (c *Client) Stakes(ctx context.Context) ([]rpc.Stake, error) {
	return get[[]rpc.Stake](ctx, c, "/v1/stakes", nil)
}

// Block is GET /v1/blocks/{height|hash}.
func (c *Client) Block(ctx context.Context, idOrHeight string) (chain.Block, error) {
	return get[chain.Block](ctx, c, "/v1/blocks/"+url.PathEscape(idOrHeight), nil)
}

// BlockAt is Block by height.
func (c *Client) BlockAt(ctx context.Context, height uint64) (chain.Block, error) {
	return c.Block(ctx, strconv.FormatUint(height, 10))
}

// PendingTxs is GET /v1/txs/pending: the node's pool.
func (c *Client) PendingTxs(ctx context.Context) ([]chain.Transaction, error) {
	return get[[]chain.Transaction](ctx, c, "/v1/txs/pending", nil)
}

// Tx is GET /v1/txs/{id}: a pending or committed transaction.
func (c *Client) Tx(ctx context.Context, id chain.Hash) (rpc.TxInfo, error) {
	return get[rpc.TxInfo](ctx, c, "/v1/txs/"+id.String(), nil)
}

// SubmitTx is POST /v1/txs with one signed transaction.
func (c *Client) SubmitTx(ctx context.Context, tx *chain.Transaction) (rpc.SubmitResult, error) {
	var res rpc.SubmitResult
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/txs", body: tx, busyRetry: true}, &res)
	return res, err
}

// SubmitTxs is POST /v1/txs with a batch: one result per transaction, each
// with its id and status or its own error. The call fails as a whole only
// when the batch does (malformed, too large, node unreachable).
func (c *Client) SubmitTxs(ctx context.Context, txs []chain.Transaction) ([]rpc.SubmitResult, error) {
	if txs == nil {
		txs = []chain.Transaction{}
	}
	var res []rpc.SubmitResult
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/txs", body: txs, busyRetry: true}, &res)
	return res, err
}

// SubmitTxsBinary is SubmitTxs over the binary batch encoding
// (rpc.EncodeTxBatch, Content-Type application/octet-stream): the same
// answer, without JSON on the way in, and read in its binary form
// (rpc.DecodeTxResults) from a node that writes it. Load generators and
// wallets sending many transactions use it.
func (c *Client) SubmitTxsBinary(ctx context.Context, txs []chain.Transaction) ([]rpc.SubmitResult, error) {
	var res []rpc.SubmitResult
	binary := func(data []byte) (err error) {
		if res, err = rpc.DecodeTxResults(data, len(txs)); err == nil && len(res) != len(txs) {
			err = fmt.Errorf("%d results for %d transactions", len(res), len(txs))
		}
		return err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/txs", raw: rpc.EncodeTxBatch(txs), rawType: rpc.ContentTypeTxBatch, busyRetry: true, binary: binary}, &res)
	return res, err
}

// Config is GET /v1/config (admin).
func (c *Client) Config(ctx context.Context) (rpc.Config, error) {
	var cfg rpc.Config
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/config", admin: true}, &cfg)
	return cfg, err
}

// SetConfig is PUT /v1/config (admin): absent fields of patch stay as they are.
func (c *Client) SetConfig(ctx context.Context, patch rpc.ConfigPatch) (rpc.Config, error) {
	var cfg rpc.Config
	err := c.do(ctx, request{method: http.MethodPut, path: "/v1/config", body: patch, admin: true}, &cfg)
	return cfg, err
}

// Stake is POST /v1/stake (admin): the node stakes amount from its own key.
func (c *Client) Stake(ctx context.Context, amount uint64) (rpc.SubmitResult, error) {
	var res rpc.SubmitResult
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/stake", body: rpc.StakeRequest{Amount: amount}, admin: true}, &res)
	return res, err
}

// Peers is GET /v1/peers.
func (c *Client) Peers(ctx context.Context) ([]rpc.Peer, error) {
	return get[[]rpc.Peer](ctx, c, "/v1/peers", nil)
}

// Genesis is GET /v1/genesis, decoded (not validated: see chain.ParseGenesis
// on GenesisJSON for that).
func (c *Client) Genesis(ctx context.Context) (*chain.Genesis, error) {
	raw, err := c.GenesisJSON(ctx)
	if err != nil {
		return nil, err
	}
	var g chain.Genesis
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("unexpected answer to GET /v1/genesis from %s: %w", c.base, err)
	}
	return &g, nil
}

// GenesisJSON is GET /v1/genesis as the node serves it.
func (c *Client) GenesisJSON(ctx context.Context) (json.RawMessage, error) {
	return get[json.RawMessage](ctx, c, "/v1/genesis", nil)
}

// Health is GET /healthz.
func (c *Client) Health(ctx context.Context) (rpc.Health, error) {
	return get[rpc.Health](ctx, c, "/healthz", nil)
}

// WaitTx polls Tx every poll interval (<= 0: one second) until the
// transaction is committed, and returns it. It gives up when ctx ends, when
// the node no longer knows the transaction (evicted or never submitted: the
// *APIError not_found, after a short grace for a node between pool and
// chain), or on any other error.
func (c *Client) WaitTx(ctx context.Context, id chain.Hash, poll time.Duration) (rpc.TxInfo, error) {
	return c.waitTx(ctx, id, poll, func(info rpc.TxInfo) bool { return info.Status == rpc.TxCommitted }, nil)
}

// waitTx polls Tx until done says so; included, if set, is called once,
// the first time the transaction reads as committed.
func (c *Client) waitTx(ctx context.Context, id chain.Hash, poll time.Duration, done func(rpc.TxInfo) bool, included func(rpc.TxInfo)) (rpc.TxInfo, error) {
	if poll <= 0 {
		poll = time.Second
	}
	const notFoundGrace = 2
	missing := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return rpc.TxInfo{}, ctx.Err()
		case <-t.C:
		}
		info, err := c.Tx(ctx, id)
		switch {
		case err == nil:
			missing = 0
			if included != nil && info.Status == rpc.TxCommitted {
				included(info)
				included = nil
			}
			if done(info) {
				return info, nil
			}
		case IsNotFound(err) && missing < notFoundGrace:
			missing++
		default:
			if ctx.Err() != nil {
				return rpc.TxInfo{}, ctx.Err()
			}
			return rpc.TxInfo{}, err
		}
		t.Reset(poll)
	}
}
