package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/keystore"

	"github.com/poslab/posd/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testChainID = "posd-test"

// t0 is the genesis time of the fixture chain; the test clock reads t0+60s.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func testNow() time.Time { return t0.Add(60 * time.Second) }

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, ed25519.SeedSize) }

// The fixture's keys: alice and bob are wallet keys, carol is the node.
var (
	alicePriv = ed25519.NewKeyFromSeed(seed(1))
	bobPriv   = ed25519.NewKeyFromSeed(seed(2))
	carolPriv = ed25519.NewKeyFromSeed(seed(3))
	alice     = addrOf(alicePriv)
	bob       = addrOf(bobPriv)
	carol     = addrOf(carolPriv)
)

func addrOf(p ed25519.PrivateKey) chain.Address {
	return chain.AddressOf(p.Public().(ed25519.PublicKey))
}

func ptr[T any](v T) *T { return &v }

func mkTx(priv ed25519.PrivateKey, typ chain.TxType, to chain.Address, amount, fee, nonce uint64) chain.Transaction {
	tx := chain.Transaction{Type: typ, ChainID: testChainID, To: to, Amount: amount, Fee: fee, Nonce: nonce}
	if to == "" {
		tx.To = addrOf(priv)
	}
	tx.Sign(priv)
	return tx
}

// fixtureBlocks is a small signed chain: genesis and three blocks.
func fixtureBlocks() []chain.Block {
	g := chain.Block{Header: chain.Header{Height: 0, PrevHash: chain.Hash{0xaa}, Timestamp: t0.UnixMilli(), TxRoot: chain.MerkleRoot(nil)}}
	blocks := []chain.Block{g}
	add := func(priv ed25519.PrivateKey, rank uint32, txs []chain.Transaction) {
		parent := &blocks[len(blocks)-1].Header
		b := chain.NewBlock(chain.DefaultGenesis(), parent, rank, parent.Timestamp+2000, txs)
		b.Header.Sign(priv)
		blocks = append(blocks, *b)
	}
	add(carolPriv, 0, nil)
	add(alicePriv, 1, []chain.Transaction{
		mkTx(alicePriv, chain.TxExchange, "", 200, 0, 1),
		mkTx(alicePriv, chain.TxStake, "", 50, 0, 2),
	})
	add(carolPriv, 0, []chain.Transaction{mkTx(carolPriv, chain.TxTransfer, bob, 10, 1, 1)})
	return blocks
}

// fakeNode serves docs/API.md from fixed state, checks what it is sent, and
// records submitted transactions.
type fakeNode struct {
	*httptest.Server
	t *testing.T

	mu        sync.Mutex
	blocks    []chain.Block
	accounts  map[chain.Address]rpc.Account
	pool      []chain.Transaction
	submitted []chain.Transaction
	txPolls   map[chain.Hash]int
	// pendingPolls is how many times a submitted tx reads as pending
	// before it reads as committed.
	pendingPolls int
	// refuse, when set, is the error body POST /v1/txs answers with 422.
	refuse *rpc.Error
	// statusHeight, when set, overrides the head height of /v1/status.
	statusHeight func(call int) uint64
	statusCalls  int
	// clockBehindMs is /v1/status's clock_behind_ms.
	clockBehindMs int64
	// events, when set, serves /v1/events; nil answers 404.
	events http.HandlerFunc
	token  string
	config rpc.Config
	// exchange is the genesis exchange policy.
	exchange chain.ExchangePolicy
	// noHeartbeat turns the genesis heartbeat off.
	noHeartbeat bool
	// pageBlocks, when set, cuts GET /v1/blocks pages at that many blocks
	// with X-Next-From, as a node does at its page's byte bound.
	pageBlocks int
	// blockPages counts GET /v1/blocks requests.
	blockPages int
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{
		t:       t,
		blocks:  fixtureBlocks(),
		txPolls: map[chain.Hash]int{},
		accounts: map[chain.Address]rpc.Account{
			alice: {Address: alice, Balance: 100, Stake: 50, Nonce: 2, PendingNonce: ptr(uint64(3))},
			bob:   {Address: bob, Balance: 10, Stake: 0, Nonce: 0, PendingNonce: ptr(uint64(0))},
			carol: {Address: carol, Balance: 500, Stake: 150, Nonce: 1, PendingNonce: ptr(uint64(1))},
		},
		token:    "s3cret",
		exchange: chain.ExchangePolicy{Open: true},
		config:   rpc.Config{BlockSize: 100, BlockIntervalMs: 2000, PoolLimit: 5000},
	}
	n.pool = []chain.Transaction{mkTx(alicePriv, chain.TxTransfer, bob, 5, 1, 3)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", n.status)
	mux.HandleFunc("GET /v1/accounts", n.listAccounts)
	mux.HandleFunc("GET /v1/accounts/{addr}", n.account)
	mux.HandleFunc("GET /v1/stakes", n.stakes)
	mux.HandleFunc("GET /v1/blocks", n.listBlocks)
	mux.HandleFunc("GET /v1/blocks/{ref}", n.block)
	mux.HandleFunc("GET /v1/txs/pending", func(w http.ResponseWriter, r *http.Request) { n.reply(w, 200, n.pool) })
	mux.HandleFunc("GET /v1/txs/{id}", n.tx)
	mux.HandleFunc("POST /v1/txs", n.submit)
	mux.HandleFunc("GET /v1/config", n.admin(func(w http.ResponseWriter, r *http.Request) { n.reply(w, 200, n.config) }))
	mux.HandleFunc("PUT /v1/config", n.admin(n.setConfig))
	mux.HandleFunc("POST /v1/stake", n.admin(n.stake))
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		n.reply(w, 200, []rpc.Peer{{ID: "12D3KooWPeerOne", Addrs: []string{"/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"}}})
	})
	mux.HandleFunc("GET /v1/genesis", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		g := chain.DefaultGenesis()
		g.ChainID, g.Timestamp, g.Exchange = testChainID, t0.UnixMilli(), n.exchange
		g.Heartbeat = !n.noHeartbeat
		g.Allocations = []chain.Allocation{{Address: carol, Balance: 500, Stake: 150}}
		n.reply(w, 200, g)
	})
	mux.HandleFunc("GET /v1/search", n.search)
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		h := n.events
		n.mu.Unlock()
		if h == nil {
			n.fail(w, 404, "not_found", "no route")
			return
		}
		h(w, r)
	})
	n.Server = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(n.Close)
	return n
}

func (n *fakeNode) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (n *fakeNode) fail(w http.ResponseWriter, status int, code, msg string) {
	n.reply(w, status, rpc.ErrorBody{Error: &rpc.Error{Code: code, Message: msg}})
}

func (n *fakeNode) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+n.token {
			n.fail(w, 401, "unauthorized", "missing or wrong bearer token")
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		h(w, r)
	}
}

// search is GET /v1/search over the fixture's blocks, transactions (chain
// and pool) and accounts, as the node answers it.
func (n *fakeNode) search(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := r.URL.Query().Get("prefix")
	if len(p) < 4 {
		n.fail(w, 400, "bad_request", "prefix too short")
		return
	}
	res := client.SearchResult{Prefix: p, Blocks: []chain.Hash{}, Txs: []chain.Hash{}, Accounts: []chain.Address{}}
	for _, b := range n.blocks {
		if strings.HasPrefix(b.Hash().String(), p) {
			res.Blocks = append(res.Blocks, b.Hash())
		}
		for _, tx := range b.Transactions {
			if strings.HasPrefix(tx.ID().String(), p) {
				res.Txs = append(res.Txs, tx.ID())
			}
		}
	}
	for _, tx := range n.pool {
		if strings.HasPrefix(tx.ID().String(), p) {
			res.Txs = append(res.Txs, tx.ID())
		}
	}
	for a := range n.accounts {
		if strings.HasPrefix(string(a), p) {
			res.Accounts = append(res.Accounts, a)
		}
	}
	// In address order and at most 8, as the node answers.
	slices.Sort(res.Accounts)
	res.Accounts = res.Accounts[:min(len(res.Accounts), maxSearchMatches)]
	n.reply(w, 200, res)
}

func (n *fakeNode) head() *chain.Block { return &n.blocks[len(n.blocks)-1] }

func (n *fakeNode) status(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.statusCalls++
	head := n.head()
	height := head.Height
	if n.statusHeight != nil {
		height = n.statusHeight(n.statusCalls)
		head = &n.blocks[min(height, uint64(len(n.blocks)-1))]
	}
	n.reply(w, 200, rpc.Status{
		ChainID: testChainID, GenesisHash: n.blocks[0].PrevHash, Height: height, HeadHash: head.Hash(),
		HeadTimestamp: head.Timestamp, Address: string(carol), Election: "lottery", Peers: 1,
		BlockSize: n.config.BlockSize, BlockIntervalMs: n.config.BlockIntervalMs, Pending: len(n.pool),
		PeerID: "12D3KooWNodeCarol", P2PAddrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Version: "0.1.0",
		ClockBehindMs: n.clockBehindMs,
	})
}

func (n *fakeNode) listAccounts(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []rpc.Account
	for _, a := range []chain.Address{alice, bob, carol} {
		acc := n.accounts[a]
		acc.PendingNonce = nil
		out = append(out, acc)
	}
	// Address order, as the node sends it.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Address < out[i].Address {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	n.reply(w, 200, out)
}

func (n *fakeNode) account(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := chain.Address(r.PathValue("addr"))
	if !a.Valid() {
		n.fail(w, 400, "bad_address", fmt.Sprintf("%q is not an address", a))
		return
	}
	acc, ok := n.accounts[a]
	if !ok {
		acc = rpc.Account{Address: a, PendingNonce: ptr(uint64(0))}
	}
	n.reply(w, 200, acc)
}

func (n *fakeNode) stakes(w http.ResponseWriter, r *http.Request) {
	n.reply(w, 200, []rpc.Stake{{Address: carol, Stake: 150, Share: 0.75}, {Address: alice, Stake: 50, Share: 0.25}})
}

func (n *fakeNode) listBlocks(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	limit := 20
	if s := r.URL.Query().Get("limit"); s != "" {
		limit, _ = strconv.Atoi(s)
	}
	from := 0
	if s := r.URL.Query().Get("from"); s != "" {
		from, _ = strconv.Atoi(s)
	} else {
		from = max(0, len(n.blocks)-limit)
	}
	n.blockPages++
	out := []chain.Block{}
	for i := from; i < len(n.blocks) && len(out) < limit; i++ {
		if n.pageBlocks > 0 && len(out) == n.pageBlocks {
			w.Header().Set("X-Next-From", strconv.Itoa(i))
			break
		}
		out = append(out, n.blocks[i])
	}
	n.reply(w, 200, out)
}

func (n *fakeNode) block(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ref := r.PathValue("ref")
	for i := range n.blocks {
		if strconv.FormatUint(n.blocks[i].Height, 10) == ref || n.blocks[i].Hash().String() == ref {
			n.reply(w, 200, n.blocks[i])
			return
		}
	}
	n.fail(w, 404, "not_found", "no block "+ref)
}

func (n *fakeNode) tx(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, err := chain.ParseHash(r.PathValue("id"))
	if err != nil {
		n.fail(w, 400, "bad_hash", err.Error())
		return
	}
	for _, b := range n.blocks {
		for i, tx := range b.Transactions {
			if tx.ID() == id {
				n.reply(w, 200, rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(b.Height), BlockHash: ptr(b.Hash()), Index: ptr(i), Transaction: &tx})
				return
			}
		}
	}
	for _, tx := range n.pool {
		if tx.ID() == id {
			n.reply(w, 200, rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx})
			return
		}
	}
	for _, tx := range n.submitted {
		if tx.ID() != id {
			continue
		}
		n.txPolls[id]++
		if n.txPolls[id] <= n.pendingPolls {
			n.reply(w, 200, rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx})
			return
		}
		h := chain.Hash{0xbb}
		n.reply(w, 200, rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(uint64(4)), BlockHash: &h, Index: ptr(0), Transaction: &tx})
		return
	}
	n.fail(w, 404, "not_found", "no transaction "+id.String())
}

// submit checks what a real node would: the transaction decodes, validates
// for this chain (signature included) and has the next nonce.
func (n *fakeNode) submit(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var tx chain.Transaction
	if err := json.NewDecoder(r.Body).Decode(&tx); err != nil {
		n.fail(w, 400, "bad_json", err.Error())
		return
	}
	if err := tx.Validate(testChainID); err != nil {
		n.fail(w, 422, string(chain.CodeOf(err)), err.Error())
		return
	}
	acc := n.accounts[tx.From]
	want := acc.Nonce + 1
	if acc.PendingNonce != nil {
		want = *acc.PendingNonce + 1
	}
	if tx.Nonce != want {
		n.fail(w, 422, "bad_nonce", fmt.Sprintf("nonce %d, account %s expects %d", tx.Nonce, tx.From, want))
		return
	}
	if n.refuse != nil {
		n.reply(w, 422, rpc.ErrorBody{Error: n.refuse})
		return
	}
	n.submitted = append(n.submitted, tx)
	n.reply(w, 202, rpc.SubmitResult{ID: ptr(tx.ID()), Status: rpc.TxPending})
}

func (n *fakeNode) setConfig(w http.ResponseWriter, r *http.Request) {
	var p rpc.ConfigPatch
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		n.fail(w, 400, "bad_json", err.Error())
		return
	}
	if p.BlockSize != nil {
		n.config.BlockSize = *p.BlockSize
	}
	if p.BlockIntervalMs != nil {
		n.config.BlockIntervalMs = *p.BlockIntervalMs
	}
	if p.PoolLimit != nil {
		n.config.PoolLimit = *p.PoolLimit
	}
	n.reply(w, 200, n.config)
}

func (n *fakeNode) stake(w http.ResponseWriter, r *http.Request) {
	var req rpc.StakeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Amount == 0 {
		n.fail(w, 400, "bad_request", "amount must be positive")
		return
	}
	tx := mkTx(carolPriv, chain.TxStake, "", req.Amount, 0, 2)
	n.reply(w, 202, rpc.SubmitResult{ID: ptr(tx.ID()), Status: rpc.TxPending})
}

func (n *fakeNode) submittedTxs() []chain.Transaction {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]chain.Transaction(nil), n.submitted...)
}

// polledTxs is how many status polls the submitted transactions got.
func (n *fakeNode) polledTxs() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, c := range n.txPolls {
		total += c
	}
	return total
}

// syncBuffer is shared with the other packages' tests.
type syncBuffer = testutil.SyncBuffer

// testEnv is a Factory on buffers, a temporary home and the fixed clock.
type testEnv struct {
	f      *Factory
	out    *syncBuffer
	errOut *syncBuffer
	in     *bytes.Buffer
	env    map[string]string
	home   string
	node   string
}

func newTestEnv(t *testing.T, nodeURL string) *testEnv {
	t.Helper()
	e := &testEnv{out: &syncBuffer{}, errOut: &syncBuffer{}, in: &bytes.Buffer{}, env: map[string]string{}, home: t.TempDir(), node: nodeURL}
	ios := &IOStreams{In: e.in, Out: e.out, ErrOut: e.errOut}
	e.f = NewFactory(ios, func(k string) string { return e.env[k] })
	e.f.Globals.Node = nodeURL
	e.f.Globals.Home = e.home
	e.f.Now = testNow
	e.f.PollInterval = 5 * time.Millisecond
	e.f.Version = "v0.0.0-test"
	return e
}

// addKey saves priv as key name in the test home, unencrypted unless pass.
func (e *testEnv) addKey(t *testing.T, name string, priv ed25519.PrivateKey, pass string) string {
	t.Helper()
	path := filepath.Join(e.f.Globals.KeysDir(), name+".pem")
	var pw []byte
	if pass != "" {
		pw = []byte(pass)
	}
	if err := keystore.Save(path, keystore.FromPrivateKey(priv), pw); err != nil {
		t.Fatal(err)
	}
	if pass != "" { // the .pub file lets List and Info know the address
		data, _ := keystore.PublicKeyPEM(priv.Public().(ed25519.PublicKey))
		os.WriteFile(filepath.Join(e.f.Globals.KeysDir(), name+".pub"), data, 0o644)
	}
	return path
}

// run executes a command built by a NewCmdX constructor with args.
func (e *testEnv) run(cmd *cobra.Command, args ...string) error {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	cmd.SetArgs(args)
	cmd.SetIn(e.in)
	cmd.SetOut(e.out)
	cmd.SetErr(e.errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(context.Background())
}

// main runs the whole CLI as the process would and returns the exit code.
func (e *testEnv) main(args ...string) int {
	return Main(context.Background(), args, e.f)
}

// normalize replaces the temporary home and the node's URL (random port)
// in output by <home> and <node>.
func (e *testEnv) normalize(s string) string {
	s = strings.ReplaceAll(s, e.home, "<home>")
	if e.node != "" {
		s = strings.ReplaceAll(s, e.node, "<node>")
	}
	return s
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", name, got, want)
	}
}
