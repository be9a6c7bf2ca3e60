package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/internal/testkit"

	"github.com/poslab/posd/internal/testutil"
)

const (
	testChainID  = "posd-test"
	testToken    = "s3cret-token"
	testMaxBatch = 3
	testHeight   = 1203 // blocks 0..1203: /blockchain needs three pages
)

// alice and bob are wallets, the node's key is carol's.
var (
	alice    = testkit.Alice.Addr
	bob      = testkit.Bob.Addr
	nodeKey  = testkit.Carol
	nodeAddr = nodeKey.Addr
	nobody   = chain.Address(strings.Repeat("ab", 20))
)

// committedTx is in block 1, pooledTx in the pool; alice's next nonce is 3.
var (
	committedTx = testkit.Transfer(testkit.Alice, bob, 5, 0, 1)
	pooledTx    = testkit.Transfer(testkit.Alice, bob, 6, 0, 2)
)

// fakeBackend is an in-memory node: a fixed chain, a pool with nonce rules
// like the real one's, and switches to make it fail.
type fakeBackend struct {
	mu       sync.Mutex
	gen      *chain.Genesis
	blocks   []*chain.Block
	accounts map[chain.Address]chain.Account
	pool     []chain.Transaction
	cfg      rpc.Config
	subs     map[int]chan *chain.Block
	nextSub  int

	// switches
	poolFull    bool
	panicStatus bool
	txInfoErr   error
	blocksDelay time.Duration
	maxPage     int // largest limit Blocks was asked for
}

func newFake() *fakeBackend {
	g := testkit.Genesis([]chain.Allocation{testkit.Fund(testkit.Alice, 1000, 100), testkit.Fund(testkit.Bob, 500, 300)})
	f := &fakeBackend{
		gen: g,
		accounts: map[chain.Address]chain.Account{
			alice: {Balance: 995, Stake: 100, Nonce: 1},
			bob:   {Balance: 505, Stake: 300},
		},
		pool: []chain.Transaction{pooledTx},
		cfg:  rpc.Config{BlockSize: 100, BlockIntervalMs: 2000, PoolLimit: 5000},
		subs: map[int]chan *chain.Block{},
	}
	f.blocks = []*chain.Block{g.Block()}
	for h := uint64(1); h <= testHeight; h++ {
		prev := f.blocks[h-1]
		b := &chain.Block{Header: chain.Header{Height: h, PrevHash: prev.Hash(), Timestamp: prev.Timestamp + 2000, Forger: bob}}
		if h == 1 {
			b.Transactions = []chain.Transaction{committedTx}
		}
		b.TxRoot = chain.TxRoot(b.Transactions)
		f.blocks = append(f.blocks, b)
	}
	return f
}

func (f *fakeBackend) Status() rpc.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicStatus {
		panic("fake: status exploded")
	}
	head := f.blocks[len(f.blocks)-1]
	return rpc.Status{ChainID: testChainID, GenesisHash: f.gen.Hash(), Height: head.Height, HeadHash: head.Hash(),
		Address: string(nodeAddr), Election: f.gen.Election, BlockSize: f.cfg.BlockSize, Pending: len(f.pool), Version: "test"}
}

func (f *fakeBackend) Genesis() *chain.Genesis { return f.gen }

func (f *fakeBackend) Accounts() []rpc.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rpc.Account
	for a, acc := range f.accounts {
		n := acc.Nonce // set on purpose: the handler must strip it
		out = append(out, rpc.Account{Address: a, Balance: acc.Balance, Stake: acc.Stake, Nonce: acc.Nonce, PendingNonce: &n})
	}
	slices.SortFunc(out, func(x, y rpc.Account) int { return strings.Compare(string(x.Address), string(y.Address)) })
	return out
}

func (f *fakeBackend) pendingNonce(a chain.Address) uint64 {
	n := f.accounts[a].Nonce
	for _, tx := range f.pool {
		if tx.From == a && tx.Nonce > n {
			n = tx.Nonce
		}
	}
	return n
}

func (f *fakeBackend) Account(a chain.Address) rpc.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc := f.accounts[a]
	pn := f.pendingNonce(a)
	return rpc.Account{Address: a, Balance: acc.Balance, Stake: acc.Stake, Nonce: acc.Nonce, PendingNonce: &pn}
}

func (f *fakeBackend) Stakes() []rpc.Stake {
	return []rpc.Stake{{Address: bob, Stake: 300, Share: 0.75}, {Address: alice, Stake: 100, Share: 0.25}}
}

func (f *fakeBackend) BlockByHeight(h uint64) (*chain.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h >= uint64(len(f.blocks)) {
		return nil, fmt.Errorf("block %d: %w", h, ErrNotFound)
	}
	return f.blocks[h], nil
}

func (f *fakeBackend) BlockByHash(h chain.Hash) (*chain.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		if b.Hash() == h {
			return b, nil
		}
	}
	return nil, ErrNotFound
}

func (f *fakeBackend) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	f.mu.Lock()
	f.maxPage = max(f.maxPage, limit)
	delay := f.blocksDelay
	f.mu.Unlock()
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if from >= uint64(len(f.blocks)) {
		return nil, nil
	}
	end := min(uint64(len(f.blocks)), from+uint64(limit))
	return slices.Clone(f.blocks[from:end]), nil
}

func (f *fakeBackend) Height() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.blocks) - 1)
}

func (f *fakeBackend) PendingTxs() []chain.Transaction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pool)
}

func (f *fakeBackend) TxInfo(id chain.Hash) (rpc.TxInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.txInfoErr != nil {
		return rpc.TxInfo{}, f.txInfoErr
	}
	for i := range f.pool {
		if f.pool[i].ID() == id {
			return rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &f.pool[i]}, nil
		}
	}
	for _, b := range f.blocks {
		for i := range b.Transactions {
			if b.Transactions[i].ID() == id {
				h, bh, idx := b.Height, b.Hash(), i
				return rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: &h, BlockHash: &bh, Index: &idx, Transaction: &b.Transactions[i]}, nil
			}
		}
	}
	return rpc.TxInfo{}, ErrNotFound
}

func rule(code, msg string) error { return &chain.RuleError{Code: chain.ErrorCode(code), Message: msg} }

func (f *fakeBackend) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.submitLocked(tx)
}

func (f *fakeBackend) submitLocked(tx chain.Transaction) (chain.Hash, error) {
	if f.poolFull {
		return chain.Hash{}, rule("pool_full", "the pool holds its limit")
	}
	if err := tx.Validate(testChainID); err != nil {
		return chain.Hash{}, err
	}
	id := tx.ID()
	for _, b := range f.blocks[:2] {
		for _, c := range b.Transactions {
			if c.ID() == id {
				return id, rule("already_known", "committed")
			}
		}
	}
	for _, p := range f.pool {
		if p.ID() == id {
			return id, rule("already_known", "pooled")
		}
		if p.From == tx.From && p.Nonce == tx.Nonce {
			return id, rule("nonce_in_use", "another pooled transaction has this nonce")
		}
	}
	switch acc := f.accounts[tx.From]; {
	case tx.Nonce <= acc.Nonce:
		return id, rule("bad_nonce", "nonce already used")
	case tx.Nonce > f.pendingNonce(tx.From)+1:
		return id, rule("nonce_gap", "nonce leaves a gap")
	}
	f.pool = append(f.pool, tx)
	return id, nil
}

func (f *fakeBackend) SubmitTxs(txs []chain.Transaction) ([]chain.Hash, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids, errs := make([]chain.Hash, len(txs)), make([]error, len(txs))
	for i, tx := range txs {
		ids[i], errs[i] = f.submitLocked(tx)
	}
	return ids, errs
}

func (f *fakeBackend) Config() rpc.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *fakeBackend) SetConfig(p rpc.ConfigPatch) (rpc.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.BlockSize != nil && *p.BlockSize < 1 {
		return rpc.Config{}, rule("bad_request", "block_size must be at least 1")
	}
	if p.BlockSize != nil {
		f.cfg.BlockSize = *p.BlockSize
	}
	if p.BlockIntervalMs != nil {
		f.cfg.BlockIntervalMs = *p.BlockIntervalMs
	}
	if p.PoolLimit != nil {
		f.cfg.PoolLimit = *p.PoolLimit
	}
	return f.cfg, nil
}

func (f *fakeBackend) StakeFromNode(amount uint64) (chain.Hash, error) {
	tx := testkit.Stake(nodeKey, amount, 0, 1)
	if amount == 0 {
		return chain.Hash{}, tx.CheckStateless(testChainID) // zero_amount
	}
	return tx.ID(), nil
}

func (f *fakeBackend) NodeKey() rpc.NodeKey {
	return rpc.NodeKey{PublicKey: fmt.Sprintf("%x", nodeKey.Public()), Address: nodeAddr, PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\n"}
}

func (f *fakeBackend) Peers() []rpc.Peer {
	return []rpc.Peer{
		{ID: "12D3KooWpeer", Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, RTTMs: 82.44, RTTLastMs: 80.1},
		{ID: "12D3KooWnew", Addrs: []string{"/ip4/127.0.0.1/tcp/4002"}}, // not measured yet
	}
}

func (f *fakeBackend) SubscribeBlocks() (<-chan *chain.Block, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan *chain.Block, 8)
	n := f.nextSub
	f.nextSub++
	f.subs[n] = ch
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, n)
	}
}

func (f *fakeBackend) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeBackend) publish(b *chain.Block) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- b
	}
}

// ---- helpers ----

func newTestHandler(f *fakeBackend) *server {
	return newServer(Options{Backend: f, Token: testToken, MaxBatch: testMaxBatch})
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, base, method, path, body, token string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, data}
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, data, err)
	}
	return v
}

// ---- the table ----

func TestRoutes(t *testing.T) {
	const admin = "Bearer " + testToken
	newTx := testkit.Transfer(testkit.Alice, bob, 7, 0, 3)
	newTx2 := testkit.Transfer(testkit.Bob, alice, 1, 0, 1)
	badSig := newTx2
	badSig.Amount = 99 // signature no longer verifies
	badSig.CacheID()   // its id follows the edit, as the server computes it
	wrongChain := newTx
	wrongChain.ChainID = "other"
	wrongChain = testkit.Resign(testkit.Alice, wrongChain)
	nonceInUse := testkit.Transfer(testkit.Alice, bob, 8, 0, 2)
	nonceGap := testkit.Transfer(testkit.Alice, bob, 8, 0, 9)
	block7 := newFake().blocks[7]
	hugeBody := `{"type":"TRANSFER","chain_id":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	wrongType := strings.Replace(mustJSON(t, newTx), `"amount":7`, `"amount":"5"`, 1)

	pending := func(want chain.Hash) func(*testing.T, reply) {
		return func(t *testing.T, r reply) {
			res := decode[rpc.SubmitResult](t, r.body)
			if res.ID == nil || *res.ID != want || res.Status != rpc.TxPending || res.Error != nil {
				t.Errorf("result %s, want id %s pending", r.body, want)
			}
		}
	}
	heights := func(want ...uint64) func(*testing.T, reply) {
		return func(t *testing.T, r reply) {
			var got []uint64
			for _, b := range decode[[]chain.Block](t, r.body) {
				got = append(got, b.Height)
			}
			if !slices.Equal(got, want) {
				t.Errorf("heights %v, want %v", got, want)
			}
		}
	}
	var newest []uint64
	for h := uint64(testHeight - 19); h <= testHeight; h++ {
		newest = append(newest, h)
	}

	tests := []struct {
		name          string
		setup         func(*fakeBackend)
		method, path  string
		body, token   string
		status        int
		code          string // error code when status >= 400
		check         func(*testing.T, reply)
		allow         string // expected Allow header (405)
		contentPrefix string // expected Content-Type prefix, default application/json
	}{
		// /v1 happy paths
		{name: "status", method: "GET", path: "/v1/status", status: 200, check: func(t *testing.T, r reply) {
			s := decode[rpc.Status](t, r.body)
			if s.ChainID != testChainID || s.Height != testHeight || s.Pending != 1 {
				t.Errorf("status %+v", s)
			}
		}},
		{name: "accounts", method: "GET", path: "/v1/accounts", status: 200, check: func(t *testing.T, r reply) {
			list := decode[[]rpc.Account](t, r.body)
			if len(list) != 2 || list[0].Address > list[1].Address {
				t.Fatalf("accounts %s", r.body)
			}
			for _, a := range list {
				if a.PendingNonce != nil {
					t.Errorf("pending_nonce in the list: %s", r.body)
				}
				if a.Address == alice && (a.Balance != 995 || a.Stake != 100 || a.Nonce != 1) {
					t.Errorf("alice %+v", a)
				}
			}
		}},
		{name: "account", method: "GET", path: "/v1/accounts/" + string(alice), status: 200, check: func(t *testing.T, r reply) {
			a := decode[rpc.Account](t, r.body)
			if a.Address != alice || a.Balance != 995 || a.Nonce != 1 || a.PendingNonce == nil || *a.PendingNonce != 2 {
				t.Errorf("account %s", r.body)
			}
		}},
		{name: "account unknown is zeros", method: "GET", path: "/v1/accounts/" + string(nobody), status: 200, check: func(t *testing.T, r reply) {
			a := decode[rpc.Account](t, r.body)
			if a.Address != nobody || a.Balance != 0 || a.PendingNonce == nil || *a.PendingNonce != 0 {
				t.Errorf("account %s", r.body)
			}
		}},
		{name: "stakes", method: "GET", path: "/v1/stakes", status: 200, check: func(t *testing.T, r reply) {
			s := decode[[]rpc.Stake](t, r.body)
			if len(s) != 2 || s[0].Address != bob || s[0].Stake != 300 || s[0].Share != 0.75 {
				t.Errorf("stakes %s", r.body)
			}
		}},
		{name: "blocks newest", method: "GET", path: "/v1/blocks", status: 200, check: heights(newest...)},
		{name: "blocks from limit", method: "GET", path: "/v1/blocks?from=0&limit=3", status: 200, check: heights(0, 1, 2)},
		{name: "blocks newest 2", method: "GET", path: "/v1/blocks?limit=2", status: 200, check: heights(testHeight-1, testHeight)},
		{name: "blocks past head empty", method: "GET", path: "/v1/blocks?from=99999", status: 200, check: func(t *testing.T, r reply) {
			if strings.TrimSpace(string(r.body)) != "[]" {
				t.Errorf("body %s, want []", r.body)
			}
		}},
		{name: "block by height", method: "GET", path: "/v1/blocks/1", status: 200, check: func(t *testing.T, r reply) {
			b := decode[chain.Block](t, r.body)
			if b.Height != 1 || len(b.Transactions) != 1 || b.Transactions[0].ID() != committedTx.ID() {
				t.Errorf("block %s", r.body)
			}
			var raw map[string]any
			_ = json.Unmarshal(r.body, &raw)
			if raw["hash"] != newFake().blocks[1].Hash().String() {
				t.Errorf("hash %v", raw["hash"])
			}
		}},
		{name: "block by hash", method: "GET", path: "/v1/blocks/" + block7.Hash().String(), status: 200, check: func(t *testing.T, r reply) {
			if b := decode[chain.Block](t, r.body); b.Height != 7 || b.Hash() != block7.Hash() {
				t.Errorf("block %s", r.body)
			}
		}},
		{name: "pending txs", method: "GET", path: "/v1/txs/pending", status: 200, check: func(t *testing.T, r reply) {
			txs := decode[[]chain.Transaction](t, r.body)
			if len(txs) != 1 || txs[0] != pooledTx || !strings.Contains(string(r.body), `"id":"`+pooledTx.ID().String()) {
				t.Errorf("pending %s", r.body)
			}
		}},
		{name: "tx pending", method: "GET", path: "/v1/txs/" + pooledTx.ID().String(), status: 200, check: func(t *testing.T, r reply) {
			info := decode[rpc.TxInfo](t, r.body)
			if info.Status != rpc.TxPending || info.ID != pooledTx.ID() || info.Height != nil || *info.Transaction != pooledTx {
				t.Errorf("info %s", r.body)
			}
		}},
		{name: "tx committed", method: "GET", path: "/v1/txs/" + committedTx.ID().String(), status: 200, check: func(t *testing.T, r reply) {
			info := decode[rpc.TxInfo](t, r.body)
			if info.Status != rpc.TxCommitted || info.Height == nil || *info.Height != 1 || info.Index == nil || *info.Index != 0 {
				t.Errorf("info %s", r.body)
			}
		}},
		{name: "post tx", method: "POST", path: "/v1/txs", body: mustJSON(t, newTx), status: 202, check: pending(newTx.ID())},
		{name: "post tx with whitespace", method: "POST", path: "/v1/txs", body: "\n  " + mustJSON(t, newTx) + "\n", status: 202, check: pending(newTx.ID())},
		{name: "post tx unknown fields ignored", method: "POST", path: "/v1/txs", body: strings.Replace(mustJSON(t, newTx), "{", `{"extra":[1,2],`, 1), status: 202, check: pending(newTx.ID())},
		{name: "post batch", method: "POST", path: "/v1/txs", body: mustJSON(t, []chain.Transaction{newTx, badSig, pooledTx}), status: 200, check: func(t *testing.T, r reply) {
			res := decode[[]rpc.SubmitResult](t, r.body)
			if len(res) != 3 {
				t.Fatalf("results %s", r.body)
			}
			if res[0].Status != rpc.TxPending || *res[0].ID != newTx.ID() || res[0].Error != nil {
				t.Errorf("item 0: %s", r.body)
			}
			if res[1].Error == nil || res[1].Error.Code != "bad_signature" || res[1].Status != "" || *res[1].ID != badSig.ID() {
				t.Errorf("item 1: %s", r.body)
			}
			if res[2].Error == nil || res[2].Error.Code != "already_known" {
				t.Errorf("item 2: %s", r.body)
			}
		}},
		{name: "post empty batch", method: "POST", path: "/v1/txs", body: "[]", status: 200, check: func(t *testing.T, r reply) {
			if strings.TrimSpace(string(r.body)) != "[]" {
				t.Errorf("body %s", r.body)
			}
		}},
		{name: "post batch at the limit", method: "POST", path: "/v1/txs", body: mustJSON(t, []chain.Transaction{newTx, newTx2, pooledTx}), status: 200},
		{name: "config", method: "GET", path: "/v1/config", token: admin, status: 200, check: func(t *testing.T, r reply) {
			if c := decode[rpc.Config](t, r.body); c != (rpc.Config{BlockSize: 100, BlockIntervalMs: 2000, PoolLimit: 5000}) {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "config lowercase bearer", method: "GET", path: "/v1/config", token: "bearer " + testToken, status: 200},
		{name: "put config", method: "PUT", path: "/v1/config", token: admin, body: `{"block_size":50,"pool_limit":10}`, status: 200, check: func(t *testing.T, r reply) {
			if c := decode[rpc.Config](t, r.body); c != (rpc.Config{BlockSize: 50, BlockIntervalMs: 2000, PoolLimit: 10}) {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "stake", method: "POST", path: "/v1/stake", token: admin, body: `{"amount":10}`, status: 202,
			check: pending(stakeID(10))},
		{name: "peers", method: "GET", path: "/v1/peers", status: 200, check: func(t *testing.T, r reply) {
			if p := decode[[]rpc.Peer](t, r.body); len(p) != 2 || p[0].ID != "12D3KooWpeer" || p[0].RTTMs != 82.44 || p[0].RTTLastMs != 80.1 {
				t.Errorf("peers %s", r.body)
			}
			// A peer not measured yet has no RTT fields at all (not 0).
			raw := decode[[]map[string]any](t, r.body)
			if _, ok := raw[1]["rtt_ms"]; ok || len(raw[1]) != 2 {
				t.Errorf("an unmeasured peer: %v", raw[1])
			}
		}},
		{name: "genesis", method: "GET", path: "/v1/genesis", status: 200, check: func(t *testing.T, r reply) {
			g, err := chain.ParseGenesis(r.body)
			if err != nil || g.ChainID != testChainID || g.Hash() != newFake().gen.Hash() {
				t.Errorf("genesis %s: %v", r.body, err)
			}
		}},
		{name: "healthz", method: "GET", path: "/healthz", status: 200, check: func(t *testing.T, r reply) {
			if h := decode[rpc.Health](t, r.body); h != (rpc.Health{Status: "ok", Height: testHeight}) {
				t.Errorf("health %+v", h)
			}
		}},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, contentPrefix: "text/plain", check: func(t *testing.T, r reply) {
			body := string(r.body)
			if !strings.Contains(body, "# TYPE go_goroutines gauge\n") {
				t.Errorf("metrics without the Go collector:\n%s", body)
			}
			for _, want := range []string{"posd_api_event_streams 0\n", "posd_api_event_streams_dropped 0\n", "posd_api_heavy_in_flight 0\n"} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics without %q:\n%s", want, body)
				}
			}
		}},

		// the original's routes
		{name: "pkey", method: "GET", path: "/pkey", status: 200, check: func(t *testing.T, r reply) {
			if k := decode[rpc.NodeKey](t, r.body); k.Address != nodeAddr || len(k.PublicKey) != 64 {
				t.Errorf("pkey %s", r.body)
			}
		}},
		{name: "accounts map", method: "GET", path: "/accounts", status: 200, check: func(t *testing.T, r reply) {
			if m := decode[map[chain.Address]uint64](t, r.body); len(m) != 2 || m[alice] != 995 || m[bob] != 505 {
				t.Errorf("accounts %s", r.body)
			}
		}},
		{name: "stakes map", method: "GET", path: "/stakes", status: 200, check: func(t *testing.T, r reply) {
			if m := decode[map[chain.Address]uint64](t, r.body); len(m) != 2 || m[alice] != 100 || m[bob] != 300 {
				t.Errorf("stakes %s", r.body)
			}
		}},
		{name: "stakes amount", method: "GET", path: "/stakes/10", token: admin, status: 202,
			check: pending(stakeID(10))},
		{name: "blockchain", method: "GET", path: "/blockchain", status: 200, check: func(t *testing.T, r reply) {
			var v struct{ Blocks []chain.Block }
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if len(v.Blocks) != testHeight+1 {
				t.Fatalf("%d blocks, want %d", len(v.Blocks), testHeight+1)
			}
			for i, b := range v.Blocks {
				if b.Height != uint64(i) || i > 0 && b.PrevHash != v.Blocks[i-1].Hash() {
					t.Fatalf("block %d: height %d, bad link", i, b.Height)
				}
			}
		}},
		{name: "transactions", method: "GET", path: "/transactions", status: 200, check: func(t *testing.T, r reply) {
			if txs := decode[[]chain.Transaction](t, r.body); len(txs) != 1 || txs[0] != pooledTx {
				t.Errorf("transactions %s", r.body)
			}
		}},
		{name: "pool limit", method: "GET", path: "/pool/limit/7", token: admin, status: 200, check: func(t *testing.T, r reply) {
			if c := decode[rpc.Config](t, r.body); c.BlockSize != 7 {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "post transaction bare", method: "POST", path: "/transaction", body: mustJSON(t, newTx), status: 202, check: pending(newTx.ID())},
		{name: "post transaction wrapped", method: "POST", path: "/transaction", body: `{"transaction":` + mustJSON(t, newTx) + `}`, status: 202, check: pending(newTx.ID())},

		// bad JSON bodies
		{name: "malformed json", method: "POST", path: "/v1/txs", body: `{"type":`, status: 400, code: "bad_json"},
		{name: "syntax error", method: "POST", path: "/v1/txs", body: `{"type" "x"}`, status: 400, code: "bad_json"},
		{name: "wrong type", method: "POST", path: "/v1/txs", body: wrongType, status: 400, code: "bad_json", check: func(t *testing.T, r reply) {
			if e := decode[rpc.ErrorBody](t, r.body); !strings.Contains(e.Error.Message, "amount") {
				t.Errorf("message %q does not name the field", e.Error.Message)
			}
		}},
		{name: "negative amount", method: "POST", path: "/v1/txs", body: `{"amount":-1}`, status: 400, code: "bad_json"},
		{name: "number body", method: "POST", path: "/v1/txs", body: `5`, status: 400, code: "bad_json"},
		{name: "null body", method: "POST", path: "/v1/txs", body: `null`, status: 400, code: "bad_json"},
		{name: "trailing garbage", method: "POST", path: "/v1/txs", body: mustJSON(t, newTx) + " x", status: 400, code: "bad_json"},
		{name: "two objects", method: "POST", path: "/v1/txs", body: mustJSON(t, newTx) + mustJSON(t, newTx), status: 400, code: "bad_json"},
		{name: "empty body", method: "POST", path: "/v1/txs", status: 400, code: "bad_json"},
		{name: "blank body", method: "POST", path: "/v1/txs", body: " \n\t ", status: 400, code: "bad_json"},
		{name: "huge body", method: "POST", path: "/v1/txs", body: hugeBody, status: 413, code: "payload_too_large"},
		{name: "batch too large", method: "POST", path: "/v1/txs", body: mustJSON(t, []chain.Transaction{newTx, newTx, newTx, newTx}), status: 413, code: "payload_too_large"},
		{name: "batch item wrong type", method: "POST", path: "/v1/txs", body: "[" + mustJSON(t, newTx) + "," + wrongType + "]", status: 400, code: "bad_json"},
		{name: "batch item null", method: "POST", path: "/v1/txs", body: "[null]", status: 400, code: "bad_json"},
		{name: "batch trailing garbage", method: "POST", path: "/v1/txs", body: "[]]", status: 400, code: "bad_json"},
		{name: "wrapped wrong type", method: "POST", path: "/transaction", body: `{"transaction":` + wrongType + `}`, status: 400, code: "bad_json"},
		{name: "wrapped null", method: "POST", path: "/transaction", body: `{"transaction":null}`, status: 400, code: "bad_json"},
		{name: "transaction empty body", method: "POST", path: "/transaction", status: 400, code: "bad_json"},
		{name: "put config wrong type", method: "PUT", path: "/v1/config", token: admin, body: `{"block_size":"50"}`, status: 400, code: "bad_json"},
		{name: "put config empty", method: "PUT", path: "/v1/config", token: admin, status: 400, code: "bad_json"},
		{name: "stake wrong type", method: "POST", path: "/v1/stake", token: admin, body: `{"amount":"5"}`, status: 400, code: "bad_json"},
		{name: "stake negative", method: "POST", path: "/v1/stake", token: admin, body: `{"amount":-5}`, status: 400, code: "bad_json"},

		// rule and pool errors
		{name: "bad signature", method: "POST", path: "/v1/txs", body: mustJSON(t, badSig), status: 422, code: "bad_signature"},
		{name: "wrong chain", method: "POST", path: "/v1/txs", body: mustJSON(t, wrongChain), status: 422, code: "wrong_chain"},
		{name: "bad nonce", method: "POST", path: "/v1/txs", body: mustJSON(t, testkit.Transfer(testkit.Alice, bob, 8, 0, 1)), status: 422, code: "bad_nonce"},
		{name: "nonce gap", method: "POST", path: "/v1/txs", body: mustJSON(t, nonceGap), status: 422, code: "nonce_gap"},
		{name: "zero tx", method: "POST", path: "/v1/txs", body: `{}`, status: 422, code: "unknown_type"},
		{name: "already known pooled", method: "POST", path: "/v1/txs", body: mustJSON(t, pooledTx), status: 409, code: "already_known"},
		{name: "already known committed", method: "POST", path: "/transaction", body: mustJSON(t, committedTx), status: 409, code: "already_known"},
		{name: "nonce in use", method: "POST", path: "/v1/txs", body: mustJSON(t, nonceInUse), status: 409, code: "nonce_in_use"},
		{name: "pool full", setup: func(f *fakeBackend) { f.poolFull = true }, method: "POST", path: "/v1/txs", body: mustJSON(t, newTx), status: 503, code: "pool_full"},
		{name: "stake zero", method: "POST", path: "/v1/stake", token: admin, body: `{"amount":0}`, status: 422, code: "zero_amount"},
		{name: "put config invalid", method: "PUT", path: "/v1/config", token: admin, body: `{"block_size":0}`, status: 400, code: "bad_request"},
		{name: "pool limit invalid", method: "GET", path: "/pool/limit/0", token: admin, status: 400, code: "bad_request"},

		// bad parameters
		{name: "block not found", method: "GET", path: "/v1/blocks/99999", status: 404, code: "not_found"},
		{name: "block hash not found", method: "GET", path: "/v1/blocks/" + strings.Repeat("0", 64), status: 404, code: "not_found"},
		{name: "block bad hash", method: "GET", path: "/v1/blocks/abc", status: 400, code: "bad_hash"},
		{name: "block bad hash 64", method: "GET", path: "/v1/blocks/" + strings.Repeat("z", 64), status: 400, code: "bad_hash"},
		{name: "block negative height", method: "GET", path: "/v1/blocks/-1", status: 400, code: "bad_request"},
		{name: "block height overflow", method: "GET", path: "/v1/blocks/99999999999999999999999", status: 400, code: "bad_request"},
		{name: "blocks limit 0", method: "GET", path: "/v1/blocks?limit=0", status: 400, code: "bad_request"},
		{name: "blocks limit 1001", method: "GET", path: "/v1/blocks?limit=1001", status: 400, code: "bad_request"},
		{name: "blocks limit abc", method: "GET", path: "/v1/blocks?limit=abc", status: 400, code: "bad_request"},
		{name: "blocks from negative", method: "GET", path: "/v1/blocks?from=-1", status: 400, code: "bad_request"},
		{name: "blocks from empty", method: "GET", path: "/v1/blocks?from=", status: 400, code: "bad_request"},
		{name: "blocks bad query", method: "GET", path: "/v1/blocks?from=%zz", status: 400, code: "bad_request"},
		{name: "tx bad id", method: "GET", path: "/v1/txs/xyz", status: 400, code: "bad_hash"},
		{name: "tx not found", method: "GET", path: "/v1/txs/" + strings.Repeat("1", 64), status: 404, code: "not_found"},
		{name: "tx backend error", setup: func(f *fakeBackend) { f.txInfoErr = errors.New("disk on fire") },
			method: "GET", path: "/v1/txs/" + strings.Repeat("1", 64), status: 500, code: "internal", check: func(t *testing.T, r reply) {
				if strings.Contains(string(r.body), "disk") {
					t.Errorf("internal detail leaked: %s", r.body)
				}
			}},
		{name: "account bad address", method: "GET", path: "/v1/accounts/xyz", status: 400, code: "bad_address"},
		{name: "account uppercase address", method: "GET", path: "/v1/accounts/" + strings.ToUpper(string(alice)), status: 400, code: "bad_address"},
		{name: "stakes bad amount", method: "GET", path: "/stakes/abc", token: admin, status: 400, code: "bad_request"},
		{name: "stakes negative amount", method: "GET", path: "/stakes/-3", token: admin, status: 400, code: "bad_request"},
		{name: "pool limit bad", method: "GET", path: "/pool/limit/x", token: admin, status: 400, code: "bad_request"},

		// routing
		{name: "unknown route", method: "GET", path: "/nope", status: 404, code: "not_found"},
		{name: "unknown v1 route", method: "GET", path: "/v1/blocks/1/extra", status: 404, code: "not_found"},
		{name: "dashboard", method: "GET", path: "/", status: 200, contentPrefix: "text/html",
			check: func(t *testing.T, r reply) {
				if !strings.Contains(string(r.body), "/ui/app.js") {
					t.Errorf("the dashboard does not load its script")
				}
			}},
		{name: "not the dashboard", method: "GET", path: "/index.html", status: 404, code: "not_found"},
		{name: "wrong method status", method: "DELETE", path: "/v1/status", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "wrong method post status", method: "POST", path: "/v1/status", body: "{}", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "wrong method txs", method: "GET", path: "/v1/txs", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "wrong method config", method: "POST", path: "/v1/config", token: admin, status: 405, code: "method_not_allowed", allow: "GET, HEAD, PUT"},
		{name: "wrong method tx id", method: "PUT", path: "/v1/txs/" + strings.Repeat("1", 64), status: 405, code: "method_not_allowed", allow: "GET, HEAD"},

		// admin
		{name: "config no token", method: "GET", path: "/v1/config", status: 401, code: "unauthorized"},
		{name: "config wrong token", method: "GET", path: "/v1/config", token: "Bearer nope", status: 401, code: "unauthorized"},
		{name: "config token prefix", method: "GET", path: "/v1/config", token: "Bearer " + testToken[:4], status: 401, code: "unauthorized"},
		{name: "config basic scheme", method: "GET", path: "/v1/config", token: "Basic " + testToken, status: 401, code: "unauthorized"},
		{name: "config bare token", method: "GET", path: "/v1/config", token: testToken, status: 401, code: "unauthorized"},
		{name: "put config no token", method: "PUT", path: "/v1/config", body: `{"block_size":5}`, status: 401, code: "unauthorized"},
		{name: "stake no token", method: "POST", path: "/v1/stake", body: `{"amount":5}`, status: 401, code: "unauthorized"},
		{name: "stakes amount no token", method: "GET", path: "/stakes/10", status: 401, code: "unauthorized"},
		{name: "stakes amount wrong token", method: "GET", path: "/stakes/10", token: "Bearer x", status: 401, code: "unauthorized"},
		{name: "pool limit no token", method: "GET", path: "/pool/limit/7", status: 401, code: "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			srv := httptest.NewServer(newTestHandler(f))
			defer srv.Close()
			r := do(t, srv.URL, tc.method, tc.path, tc.body, tc.token)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			prefix := tc.contentPrefix
			if prefix == "" {
				prefix = "application/json"
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, prefix) {
				t.Errorf("Content-Type %q, want %s", ct, prefix)
			}
			if tc.status >= 400 {
				e := decode[rpc.ErrorBody](t, r.body)
				if e.Error == nil || e.Error.Code != tc.code || e.Error.Message == "" {
					t.Errorf("error %s, want code %s", r.body, tc.code)
				}
			}
			if tc.allow != "" && r.header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tc.allow)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestSubmitChangesPool(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newTestHandler(f))
	defer srv.Close()
	tx := testkit.Transfer(testkit.Alice, bob, 7, 0, 3)
	if r := do(t, srv.URL, "POST", "/v1/txs", mustJSON(t, tx), ""); r.status != 202 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	if r := do(t, srv.URL, "POST", "/v1/txs", mustJSON(t, tx), ""); r.status != 409 {
		t.Fatalf("again: %d %s", r.status, r.body)
	}
	r := do(t, srv.URL, "GET", "/v1/accounts/"+string(alice), "", "")
	if a := decode[rpc.Account](t, r.body); *a.PendingNonce != 3 {
		t.Errorf("pending nonce %d, want 3", *a.PendingNonce)
	}
}

func TestBlockchainPages(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newTestHandler(f))
	defer srv.Close()
	r := do(t, srv.URL, "GET", "/blockchain", "", "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if f.maxPage > blockchainPage {
		t.Errorf("asked the backend for %d blocks at once", f.maxPage)
	}
}

func TestPanicRecovered(t *testing.T) {
	f := newFake()
	f.panicStatus = true
	var logs syncBuffer
	h := newServer(Options{Backend: f, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 3 {
		r := do(t, srv.URL, "GET", "/v1/status", "", "")
		if e := decode[rpc.ErrorBody](t, r.body); r.status != 500 || e.Error.Code != "internal" {
			t.Fatalf("status %d %s, want 500 internal", r.status, r.body)
		}
		if r := do(t, srv.URL, "GET", "/healthz", "", ""); r.status != 200 {
			t.Fatalf("after the panic: %d %s", r.status, r.body)
		}
	}
	if !strings.Contains(logs.String(), "status exploded") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	if !strings.Contains(logs.String(), "method=GET path=/v1/status status=500 duration=") {
		t.Errorf("request not logged: %s", logs.String())
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{rule("already_known", ""), 409, "already_known"},
		{rule("nonce_in_use", ""), 409, "nonce_in_use"},
		{rule("pool_full", ""), 503, "pool_full"},
		{rule("unavailable", ""), 503, "unavailable"},
		{rule("payload_too_large", ""), 413, "payload_too_large"},
		{rule("bad_request", ""), 400, "bad_request"},
		{rule("bad_json", ""), 400, "bad_json"},
		{rule("bad_address", ""), 400, "bad_address"},
		{rule("bad_hash", ""), 400, "bad_hash"},
		{rule("nonce_gap", ""), 422, "nonce_gap"},
		{chain.ErrInsufficientFunds, 422, "insufficient_funds"},
		{fmt.Errorf("wrapped: %w", chain.ErrBadNonce), 422, "bad_nonce"},
		{ErrNotFound, 404, "not_found"},
		{fmt.Errorf("block 9: %w", ErrNotFound), 404, "not_found"},
		{&http.MaxBytesError{Limit: 1}, 413, "payload_too_large"},
		{errors.New("boom"), 500, "internal"},
		{rule("not_supported", ""), 501, "not_supported"},
	} {
		if status, code := statusOf(tc.err); status != tc.status || code != tc.code {
			t.Errorf("statusOf(%v) = %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}

func TestNoTokenRefusesAdmin(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Options{Backend: newFake()}))
	defer srv.Close()
	for _, tok := range []string{"", "Bearer ", "Bearer  "} {
		if r := do(t, srv.URL, "GET", "/v1/config", "", tok); r.status != 401 {
			t.Errorf("token %q: %d", tok, r.status)
		}
	}
}

// sseReader reads events from a /v1/events response.
func readEvent(t *testing.T, br *bufio.Reader) (comment, event, data string) {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			return
		case strings.HasPrefix(line, ":"):
			comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEvents runs /v1/events behind NewServer with short read and write
// timeouts: the stream must outlive both.
func TestEvents(t *testing.T) {
	f := newFake()
	h := newTestHandler(f)
	h.heartbeat = 50 * time.Millisecond
	srv := NewServer("127.0.0.1:0", h)
	srv.ReadTimeout = 300 * time.Millisecond
	srv.WriteTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	if c, _, _ := readEvent(t, br); c == "" {
		t.Fatal("no opening comment")
	}
	if c, _, _ := readEvent(t, br); c != "heartbeat" {
		t.Fatalf("got %q, want a heartbeat", c)
	}
	time.Sleep(time.Second) // past ReadTimeout and WriteTimeout
	for i, b := range f.blocks[5:7] {
		f.publish(b)
		for {
			c, ev, data := readEvent(t, br)
			if c == "heartbeat" {
				continue
			}
			if ev != "block" {
				t.Fatalf("event %q, want block", ev)
			}
			var got chain.Block
			if err := json.Unmarshal([]byte(data), &got); err != nil {
				t.Fatal(err)
			}
			if got.Height != uint64(5+i) || got.Hash() != b.Hash() {
				t.Fatalf("block %d, want %d", got.Height, 5+i)
			}
			break
		}
	}
	cancel()
	waitFor(t, "the subscription to end", func() bool { return f.subscribers() == 0 })
}

// TestEventsShutdown: Shutdown ends open event streams.
func TestEventsShutdown(t *testing.T) {
	f := newFake()
	srv := NewServer("127.0.0.1:0", newTestHandler(f))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the subscription", func() bool { return f.subscribers() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if f.subscribers() != 0 {
		t.Error("subscription still open")
	}
}

// TestBlockchainSlowBackend: /blockchain outlives WriteTimeout when pages
// are slow.
func TestBlockchainSlowBackend(t *testing.T) {
	f := newFake()
	f.blocksDelay = 2 * time.Millisecond // 301 chunks of 4 blocks: over 600ms
	srv := NewServer("127.0.0.1:0", newTestHandler(f))
	srv.ReadTimeout = 200 * time.Millisecond
	srv.WriteTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	r := do(t, "http://"+ln.Addr().String(), "GET", "/blockchain", "", "")
	var v struct{ Blocks []chain.Block }
	if err := json.Unmarshal(r.body, &v); err != nil || len(v.Blocks) != testHeight+1 {
		t.Fatalf("status %d, %d blocks, err %v", r.status, len(v.Blocks), err)
	}
}

func TestNewServerTimeouts(t *testing.T) {
	s := NewServer(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 30*time.Second || s.WriteTimeout != 60*time.Second ||
		s.IdleTimeout != 120*time.Second || s.MaxHeaderBytes != 64<<10 {
		t.Errorf("server %+v", s)
	}
}

func TestDefaultBatchFromGenesis(t *testing.T) {
	f := newFake()
	f.gen.MaxBlockTxs = 2
	h := NewHandler(Options{Backend: f})
	body := mustJSON(t, []chain.Transaction{pooledTx, pooledTx, pooledTx})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/txs", strings.NewReader(body)))
	if rec.Code != 413 {
		t.Errorf("status %d, want 413", rec.Code)
	}
}

func FuzzPostTxs(f *testing.F) {
	tx := testkit.Transfer(testkit.Alice, bob, 7, 0, 3)
	for _, seed := range []string{
		mustJSON(f, tx),
		mustJSON(f, []chain.Transaction{tx, pooledTx}),
		`{"transaction":` + mustJSON(f, tx) + `}`,
		`{"amount":"5"}`, `{"amount":-1}`, `{"amount":1e99}`, `[`, `]`, `[]`, `[null]`, `null`, `{}`, `""`, `5`,
		`{"type":"TRANSFER"} x`, `{"transaction":null}`, `{"transaction":[{}]}`, "\xff\xfe", `[[[[[[[[]]]]]]]]`,
		`[{},{},{},{},{},{},{}]`, `{"chain_id":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	h := NewHandler(Options{Backend: newFake(), Token: testToken, MaxBatch: 5, MaxBodyBytes: 64 << 10})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/txs", "/transaction"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
			if rec.Code >= 500 {
				t.Fatalf("%s %q: status %d %s", path, body, rec.Code, rec.Body)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %q: invalid JSON answer %q", path, body, rec.Body)
			}
		}
	})
}

// syncBuffer is shared with the other packages' tests.
type syncBuffer = testutil.SyncBuffer

func stakeID(amount uint64) chain.Hash {
	tx := testkit.Stake(nodeKey, amount, 0, 1)
	return tx.ID()
}

// TestHugeChunkedBody: a body without Content-Length is cut by the reader.
func TestHugeChunkedBody(t *testing.T) {
	h := NewHandler(Options{Backend: newFake(), MaxBodyBytes: 1 << 10})
	body := io.MultiReader(strings.NewReader(`{"chain_id":"`), strings.NewReader(strings.Repeat("x", 4<<10)), strings.NewReader(`"}`))
	req := httptest.NewRequest("POST", "/v1/txs", body)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	e := decode[rpc.ErrorBody](t, rec.Body.Bytes())
	if rec.Code != 413 || e.Error.Code != "payload_too_large" {
		t.Errorf("status %d %s, want 413 payload_too_large", rec.Code, rec.Body)
	}
}
