package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/internal/testkit"
)

const chainID = testkit.ChainID

var (
	alice = testkit.Alice.Addr
	bob   = testkit.Bob.Addr
)

// testChain is a valid chain of blocks 0..n made by the real rules; each
// block after the genesis carries alice's transfer of 5 to bob at nonce
// its height.
func testChain(tb testing.TB, n int) []chain.Block {
	tb.Helper()
	c := testkit.NewChain(tb, testkit.Genesis([]chain.Allocation{testkit.Fund(testkit.Alice, 1000, 10), testkit.Fund(testkit.Bob, 0, 10)}))
	for i := 1; i <= n; i++ {
		c.Add(testkit.Transfer(testkit.Alice, bob, 5, 1, uint64(i)))
	}
	out := make([]chain.Block, len(c.Blocks))
	for i, b := range c.Blocks {
		out[i] = *b
	}
	return out
}

// recorded is one request as the server saw it.
type recorded struct {
	Method, Path, Query, Auth, Body string
}

// server serves fixed answers per "METHOD /path" and records requests.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newServer(t *testing.T, routes map[string]http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), string(body)})
		s.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) last() recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return recorded{}
	}
	return s.reqs[len(s.reqs)-1]
}

func reply(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
}

func apiErr(status int, code, msg string) http.HandlerFunc {
	return reply(status, rpc.ErrorBody{Error: &rpc.Error{Code: code, Message: msg}})
}

func ptr[T any](v T) *T { return &v }

func TestMethods(t *testing.T) {
	hash := chain.Hash{1, 2, 3}
	tx := testkit.Transfer(testkit.Alice, bob, 5, 1, 1)
	txID := tx.ID()
	status := rpc.Status{ChainID: chainID, Height: 7, HeadHash: hash, Address: string(alice), Election: "lottery", P2PAddrs: []string{}}
	accounts := []rpc.Account{{Address: alice, Balance: 10, Stake: 2, Nonce: 1}}
	account := rpc.Account{Address: alice, Balance: 10, Nonce: 1, PendingNonce: ptr(uint64(3))}
	stakes := []rpc.Stake{{Address: alice, Stake: 3, Share: 0.75}, {Address: bob, Stake: 1, Share: 0.25}}
	blocks := testChain(t, 2)[1:]
	info := rpc.TxInfo{ID: txID, Status: rpc.TxCommitted, Height: ptr(uint64(2)), BlockHash: &hash, Index: ptr(0), Transaction: &tx}
	sub := rpc.SubmitResult{ID: &txID, Status: "pending"}
	cfg := rpc.Config{BlockSize: 10, BlockIntervalMs: 2000, PoolLimit: 100}
	peers := []rpc.Peer{{ID: "12D3KooW", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}}
	genesis := `{"chain_id":"posd-test","timestamp":5,"election":"lottery","slot_ms":2000,"max_rank":8,"max_block_txs":100,"block_reward":1,"exchange":"open","allocations":[{"address":"` + string(alice) + `","balance":10,"stake":5}]}`

	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/status":          reply(200, status),
		"GET /v1/accounts":        reply(200, accounts),
		"GET /v1/accounts/{addr}": reply(200, account),
		"GET /v1/stakes":          reply(200, stakes),
		"GET /v1/blocks":          reply(200, blocks),
		"GET /v1/blocks/{ref}":    reply(200, blocks[1]),
		"GET /v1/txs/pending":     reply(200, []chain.Transaction{tx}),
		"GET /v1/txs/{id}":        reply(200, info),
		"POST /v1/txs": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.Header.Get("Content-Type") == rpc.ContentTypeTxBatch {
				txs, err := rpc.DecodeTxBatch(body, 10)
				if err != nil || len(txs) != 2 || txs[0] != tx {
					reply(400, rpc.ErrorBody{Error: &rpc.Error{Code: "bad_request", Message: "not the batch sent"}})(w, r)
					return
				}
				reply(200, []rpc.SubmitResult{sub, {Error: &rpc.Error{Code: "bad_nonce", Message: "nonce 1, expects 2"}}})(w, r)
				return
			}
			if strings.HasPrefix(string(body), "[") {
				reply(200, []rpc.SubmitResult{sub, {Error: &rpc.Error{Code: "bad_nonce", Message: "nonce 1, expects 2"}}})(w, r)
				return
			}
			reply(202, sub)(w, r)
		},
		"GET /v1/config":  reply(200, cfg),
		"PUT /v1/config":  reply(200, rpc.Config{BlockSize: 50, BlockIntervalMs: 2000, PoolLimit: 100}),
		"POST /v1/stake":  reply(202, sub),
		"GET /v1/peers":   reply(200, peers),
		"GET /v1/genesis": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, genesis) },
		"GET /healthz":    reply(200, rpc.Health{Status: "ok", Height: 7}),
	})
	c := New(s.URL+"/", WithToken(" secret\n"))
	ctx := context.Background()

	check := func(name string, err error, got, want any, method, path, query string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("%s = %s, want %s", name, gj, wj)
		}
		r := s.last()
		if r.Method != method || r.Path != path || r.Query != query {
			t.Errorf("%s sent %s %s?%s, want %s %s?%s", name, r.Method, r.Path, r.Query, method, path, query)
		}
		admin := strings.HasPrefix(path, "/v1/config") || path == "/v1/stake"
		if admin && r.Auth != "Bearer secret" {
			t.Errorf("%s: Authorization %q, want the bearer token", name, r.Auth)
		}
		if !admin && r.Auth != "" {
			t.Errorf("%s: sent the admin token to a public route", name)
		}
	}

	st, err := c.Status(ctx)
	check("Status", err, st, status, "GET", "/v1/status", "")
	accs, err := c.Accounts(ctx)
	check("Accounts", err, accs, accounts, "GET", "/v1/accounts", "")
	acc, err := c.Account(ctx, alice)
	check("Account", err, acc, account, "GET", "/v1/accounts/"+string(alice), "")
	if acc.PendingNonce == nil || *acc.PendingNonce != 3 {
		t.Errorf("Account pending_nonce = %v", acc.PendingNonce)
	}
	sts, err := c.Stakes(ctx)
	check("Stakes", err, sts, stakes, "GET", "/v1/stakes", "")
	bs, err := c.Blocks(ctx, nil, 0)
	check("Blocks(nil, 0)", err, bs, blocks, "GET", "/v1/blocks", "")
	bs, err = c.Blocks(ctx, ptr(uint64(0)), 5)
	check("Blocks(0, 5)", err, bs, blocks, "GET", "/v1/blocks", "from=0&limit=5")
	if bs[1].Hash() != blocks[1].Hash() || len(bs[1].Transactions) != 1 {
		t.Errorf("Blocks did not round-trip the block")
	}
	b, err := c.Block(ctx, "2")
	check("Block", err, b, blocks[1], "GET", "/v1/blocks/2", "")
	b, err = c.BlockAt(ctx, 2)
	check("BlockAt", err, b, blocks[1], "GET", "/v1/blocks/2", "")
	pend, err := c.PendingTxs(ctx)
	check("PendingTxs", err, pend, []chain.Transaction{tx}, "GET", "/v1/txs/pending", "")
	if pend[0].Validate(chainID) != nil {
		t.Errorf("pending tx does not validate after the round trip")
	}
	ti, err := c.Tx(ctx, txID)
	check("Tx", err, ti, info, "GET", "/v1/txs/"+txID.String(), "")
	res, err := c.SubmitTx(ctx, &tx)
	check("SubmitTx", err, res, sub, "POST", "/v1/txs", "")
	var sent chain.Transaction
	if err := json.Unmarshal([]byte(s.last().Body), &sent); err != nil || sent != tx {
		t.Errorf("SubmitTx body %s does not decode to the transaction (%v)", s.last().Body, err)
	}
	results, err := c.SubmitTxs(ctx, []chain.Transaction{tx, testkit.Transfer(testkit.Alice, bob, 5, 1, 1)})
	check("SubmitTxs", err, results, []rpc.SubmitResult{sub, {Error: &rpc.Error{Code: "bad_nonce", Message: "nonce 1, expects 2"}}}, "POST", "/v1/txs", "")
	results, err = c.SubmitTxsBinary(ctx, []chain.Transaction{tx, testkit.Transfer(testkit.Alice, bob, 5, 1, 1)})
	check("SubmitTxsBinary", err, results, []rpc.SubmitResult{sub, {Error: &rpc.Error{Code: "bad_nonce", Message: "nonce 1, expects 2"}}}, "POST", "/v1/txs", "")
	got, err := c.Config(ctx)
	check("Config", err, got, cfg, "GET", "/v1/config", "")
	got, err = c.SetConfig(ctx, rpc.ConfigPatch{BlockSize: ptr(50)})
	check("SetConfig", err, got, rpc.Config{BlockSize: 50, BlockIntervalMs: 2000, PoolLimit: 100}, "PUT", "/v1/config", "")
	if body := s.last().Body; strings.TrimSpace(body) != `{"block_size":50}` {
		t.Errorf("SetConfig body %s, want only block_size", body)
	}
	res, err = c.Stake(ctx, 9)
	check("Stake", err, res, sub, "POST", "/v1/stake", "")
	if body := s.last().Body; strings.TrimSpace(body) != `{"amount":9}` {
		t.Errorf("Stake body %s", body)
	}
	ps, err := c.Peers(ctx)
	check("Peers", err, ps, peers, "GET", "/v1/peers", "")
	g, err := c.Genesis(ctx)
	if err != nil || g.ChainID != chainID || !g.Exchange.Open || len(g.Allocations) != 1 {
		t.Errorf("Genesis = %+v, %v", g, err)
	}
	raw, err := c.GenesisJSON(ctx)
	if err != nil || string(raw) != genesis {
		t.Errorf("GenesisJSON = %s, %v", raw, err)
	}
	h, err := c.Health(ctx)
	check("Health", err, h, rpc.Health{Status: "ok", Height: 7}, "GET", "/healthz", "")
}

func TestAPIErrors(t *testing.T) {
	s := newServer(t, map[string]http.HandlerFunc{
		"POST /v1/txs":     apiErr(422, "bad_nonce", "nonce 3, account x expects 2"),
		"GET /v1/config":   apiErr(401, "unauthorized", "missing or wrong bearer token"),
		"GET /v1/txs/{id}": apiErr(404, "not_found", "no transaction 00"),
		"GET /v1/peers": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		},
		"GET /v1/stakes": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
		},
		"GET /v1/status": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not json") },
	})
	c := New(s.URL)
	ctx := context.Background()

	tx := testkit.Transfer(testkit.Alice, bob, 5, 1, 3)
	_, err := c.SubmitTx(ctx, &tx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 422 || ae.Code != "bad_nonce" || ae.Message != "nonce 3, account x expects 2" {
		t.Fatalf("SubmitTx error = %#v", err)
	}
	if err.Error() != "bad_nonce: nonce 3, account x expects 2" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !IsCode(err, "bad_nonce") || IsCode(err, "bad_signature") {
		t.Errorf("IsCode wrong")
	}
	if !errors.Is(err, chain.ErrBadNonce) || errors.Is(err, chain.ErrInsufficientFunds) {
		t.Errorf("errors.Is against chain sentinels wrong")
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", err), &APIError{Code: "bad_nonce"}) {
		t.Errorf("errors.Is against an APIError with the same code failed")
	}

	_, err = c.Config(ctx)
	if !IsCode(err, "unauthorized") {
		t.Errorf("Config without token: %v", err)
	}
	_, err = c.Tx(ctx, chain.Hash{})
	if !IsNotFound(err) {
		t.Errorf("Tx: %v, want not_found", err)
	}
	_, err = c.Peers(ctx)
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "internal" || ae.Message != "<html>bad gateway</html>" {
		t.Errorf("Peers non-JSON error = %#v", err)
	}
	_, err = c.Stakes(ctx)
	if !errors.As(err, &ae) || ae.Code != "unavailable" || ae.Message != "Service Unavailable" {
		t.Errorf("Stakes empty 503 = %#v", err)
	}
	_, err = c.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "unexpected answer to GET /v1/status") {
		t.Errorf("Status with a non-JSON answer: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	url := s.URL
	s.Close()
	c := New(url)
	_, err := c.Status(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.URL != url {
		t.Fatalf("error = %#v, want *UnreachableError for %s", err, url)
	}
	if !strings.HasPrefix(err.Error(), "node not reachable at "+url+": ") {
		t.Errorf("message %q", err.Error())
	}

	// A caller's cancellation is not "unreachable".
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(url).Status(ctx); !errors.Is(err, context.Canceled) || errors.As(err, &ue) {
		t.Errorf("canceled: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/status": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		},
	})
	defer close(release)
	c := New(s.URL, WithTimeout(50*time.Millisecond))
	_, err := c.Status(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("error = %v", err)
	}
}

func TestNew(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5001":           "http://127.0.0.1:5001",
		"http://localhost:5001/":   "http://localhost:5001",
		"https://node.example/api": "https://node.example/api",
	} {
		if got := New(in).BaseURL(); got != want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://"} {
		if _, err := New(bad).Status(context.Background()); err == nil {
			t.Errorf("New(%q): calls should fail", bad)
		}
	}
}

func TestEvents(t *testing.T) {
	c := testChain(t, 2)
	b1, b2 := c[1], c[2]
	j1, _ := json.Marshal(b1)
	j2, _ := json.Marshal(b2)
	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/events": func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept") != "text/event-stream" {
				t.Errorf("Accept = %q", r.Header.Get("Accept"))
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, ": hello\n\nevent: block\ndata: %s\n\n", j1)
			fmt.Fprintf(w, "event: ping\ndata: {}\n\n")
			// Data split over two lines, CRLF endings.
			half := strings.Index(string(j2), `,"height"`) + 1 // between two JSON tokens
			fmt.Fprintf(w, "event: block\r\ndata: %s\r\ndata: %s\r\n\r\n", j2[:half], j2[half:])
		},
	})
	blocks, errc := New(s.URL).Events(context.Background())
	var got []*chain.Block
	for b := range blocks {
		got = append(got, b)
	}
	err := <-errc
	if len(got) != 2 || got[0].Hash() != b1.Hash() || got[1].Height != 2 {
		t.Fatalf("got %d blocks", len(got))
	}
	if got[1].Hash() != b2.Hash() {
		t.Errorf("second block hash differs")
	}
	if !errors.Is(err, ErrStreamClosed) {
		t.Errorf("end of stream: %v", err)
	}
}

func TestEventsErrors(t *testing.T) {
	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/events": apiErr(404, "not_found", "no route"),
	})
	_, errc := New(s.URL).Events(context.Background())
	if err := <-errc; !IsNotFound(err) {
		t.Errorf("error = %v", err)
	}

	// Cancelling ends the subscription without an error.
	hold := make(chan struct{})
	defer close(hold)
	s2 := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/events": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	blocks, errc := New(s2.URL, WithTimeout(time.Millisecond)).Events(ctx) // the stream has no timeout
	time.Sleep(20 * time.Millisecond)
	cancel()
	for range blocks {
	}
	if err := <-errc; err != nil {
		t.Errorf("after cancel: %v", err)
	}
}

func TestWaitTx(t *testing.T) {
	tx := testkit.Transfer(testkit.Alice, bob, 5, 1, 1)
	id := tx.ID()
	var calls atomic.Int32
	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/txs/{id}": func(w http.ResponseWriter, r *http.Request) {
			switch calls.Add(1) {
			case 1:
				apiErr(404, "not_found", "unknown")(w, r) // between submit and pool: tolerated
			case 2, 3:
				reply(200, rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx})(w, r)
			default:
				reply(200, rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(uint64(4)), Transaction: &tx})(w, r)
			}
		},
	})
	info, err := New(s.URL).WaitTx(context.Background(), id, time.Millisecond)
	if err != nil || info.Status != rpc.TxCommitted || *info.Height != 4 {
		t.Fatalf("WaitTx = %+v, %v", info, err)
	}

	// A transaction the node keeps not knowing is an error.
	s2 := newServer(t, map[string]http.HandlerFunc{"GET /v1/txs/{id}": apiErr(404, "not_found", "unknown")})
	if _, err := New(s2.URL).WaitTx(context.Background(), id, time.Millisecond); !IsNotFound(err) {
		t.Errorf("WaitTx on an unknown tx: %v", err)
	}

	// The context bounds the wait.
	s3 := newServer(t, map[string]http.HandlerFunc{"GET /v1/txs/{id}": reply(200, rpc.TxInfo{ID: id, Status: rpc.TxPending})})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := New(s3.URL).WaitTx(ctx, id, 5*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitTx past its deadline: %v", err)
	}
}

func TestReadSSE(t *testing.T) {
	in := "data: a\ndata: b\n\n: comment\nevent: x\ndata:c\n\nevent: lone\n\nretry: 5\nid: 1\ndata: last" // no final blank line
	var got []string
	err := readSSE(strings.NewReader(in), func(event, data string) error {
		got = append(got, event+"="+data)
		return nil
	})
	want := []string{"message=a\nb", "x=c"}
	if fmt.Sprint(got) != fmt.Sprint(want) || !errors.Is(err, ErrStreamClosed) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// TestBusyRetries: a send refused whole with 503 and Retry-After is sent
// again after the wait the node asked for, up to WithBusyRetries times;
// then the last refusal comes back, saying how many attempts were made.
// A 503 without Retry-After, other refusals and other calls are not
// retried.
func TestBusyRetries(t *testing.T) {
	var posts atomic.Int64
	busyFor := int64(2)
	s := newServer(t, map[string]http.HandlerFunc{
		"POST /v1/txs": func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if posts.Add(1) <= busyFor {
				w.Header().Set("Retry-After", "3")
				apiErr(503, "busy", "request bodies in flight over budget")(w, r)
				return
			}
			if len(body) == 0 {
				apiErr(400, "bad_json", "empty body")(w, r)
				return
			}
			id := chain.Hash{1}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(202)
			json.NewEncoder(w).Encode(rpc.SubmitResult{ID: &id, Status: rpc.TxPending})
		},
		"GET /v1/stakes": func(w http.ResponseWriter, r *http.Request) {
			posts.Add(1)
			w.Header().Set("Retry-After", "1")
			apiErr(503, "busy", "busy")(w, r)
		},
	})
	var waits []time.Duration
	newClient := func(opts ...Option) *Client {
		c := New(s.URL, opts...)
		c.pause = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
		return c
	}
	ctx := context.Background()
	tx := testkit.Transfer(testkit.Alice, bob, 5, 1, 1)

	// Busy twice, then taken: the body is sent again whole.
	res, err := newClient().SubmitTx(ctx, &tx)
	if err != nil || res.Status != rpc.TxPending || posts.Load() != 3 {
		t.Fatalf("SubmitTx after two busy answers: %+v, %v, %d posts", res, err, posts.Load())
	}
	if len(waits) != 2 || waits[0] != 3*time.Second || waits[1] != 3*time.Second {
		t.Fatalf("waits %v, want the 3 s Retry-After twice", waits)
	}

	// Busy for ever: 1 + 2 attempts, then the refusal, still an APIError.
	posts.Store(0)
	waits = nil
	busyFor = 1 << 40
	_, err = newClient(WithBusyRetries(2)).SubmitTxs(ctx, []chain.Transaction{tx})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "busy" || ae.RetryAfter != 3*time.Second || posts.Load() != 3 || len(waits) != 2 {
		t.Fatalf("always busy: %v (%d posts, waits %v)", err, posts.Load(), waits)
	}
	if !strings.Contains(err.Error(), "still busy after 3 attempts") {
		t.Errorf("message %q", err.Error())
	}
	if d, ok := RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter(err) = %v, %v", d, ok)
	}

	// Retries off: one attempt, the refusal as it came.
	posts.Store(0)
	if _, err := newClient(WithBusyRetries(0)).SubmitTxsBinary(ctx, []chain.Transaction{tx}); !IsCode(err, "busy") || posts.Load() != 1 {
		t.Errorf("no retries: %v, %d posts", err, posts.Load())
	}

	// A read is never retried, even with Retry-After.
	posts.Store(0)
	if _, err := newClient().Stakes(ctx); !IsCode(err, "busy") || posts.Load() != 1 {
		t.Errorf("GET retried: %v, %d requests", err, posts.Load())
	}

	// The caller's context ends the wait.
	posts.Store(0)
	c := New(s.URL)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.SubmitTx(cctx, &tx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("canceled wait: %v after %s", err, time.Since(start))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{" 7 ", 7 * time.Second},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999", 0}, // over uint32: unreadable
		{"3600", maxRetryAfter},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestSubmitTxsBinaryAnswer: SubmitTxsBinary asks for the binary answer,
// reads it into the same results as the JSON one, and refuses one that
// does not decode or holds more results than the batch.
func TestSubmitTxsBinaryAnswer(t *testing.T) {
	tx := testkit.Transfer(testkit.Alice, bob, 5, 1, 1)
	id := tx.ID()
	want := []rpc.SubmitResult{{ID: &id, Status: rpc.TxPending}, {Error: &rpc.Error{Code: "bad_signature", Message: "not hex"}}}
	var answer []byte
	var accept string
	s := newServer(t, map[string]http.HandlerFunc{
		"POST /v1/txs": func(w http.ResponseWriter, r *http.Request) {
			accept = r.Header.Get("Accept")
			w.Header().Set("Content-Type", rpc.ContentTypeTxBatch)
			_, _ = w.Write(answer)
		},
	})
	c := New(s.URL)
	ctx := context.Background()
	batch := []chain.Transaction{tx, tx}
	answer = rpc.EncodeTxResults(want)
	got, err := c.SubmitTxsBinary(ctx, batch)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("binary answer: %+v (%v), want %+v", got, err, want)
	}
	if !strings.HasPrefix(accept, rpc.ContentTypeTxBatch) {
		t.Errorf("Accept %q: the binary answer not asked for", accept)
	}
	for _, bad := range []struct {
		name   string
		answer []byte
		want   string
	}{
		{"truncated", answer[:len(answer)-1], "truncated"},
		{"more results than transactions", rpc.EncodeTxResults(append(want, want...)), "4 results, the limit is 2"},
		{"a JSON body marked binary", []byte(`[{"status":"pending"}]`), "answer version 91"},
	} {
		answer = bad.answer
		_, err := c.SubmitTxsBinary(ctx, batch)
		if err == nil || !strings.Contains(err.Error(), "unexpected answer to POST /v1/txs") || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an unexpected answer saying %q", bad.name, err, bad.want)
		}
	}
}
