package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/keystore"

	"github.com/poslab/posd/internal/testkit"
	"github.com/poslab/posd/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testChainID = "posd-test"

// t0 is the genesis time of the fixture chain; the test clock reads t0+60s.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func testNow() time.Time { return t0.Add(60 * time.Second) }

// The fixture's keys, the test kit's cast: alice and bob are wallet keys,
// carol is the node.
var (
	alicePriv = testkit.Alice.Priv
	bobPriv   = testkit.Bob.Priv
	carolPriv = testkit.Carol.Priv
	alice     = testkit.Alice.Addr
	bob       = testkit.Bob.Addr
	carol     = testkit.Carol.Addr
)

func ptr[T any](v T) *T { return &v }

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
		testkit.Tx(testkit.Alice, chain.TxExchange, "", 200, 0, 1),
		testkit.Tx(testkit.Alice, chain.TxStake, "", 50, 0, 2),
	})
	add(carolPriv, 0, []chain.Transaction{testkit.Tx(testkit.Carol, chain.TxTransfer, bob, 10, 1, 1)})
	return blocks
}

// fakeNode is the node's real HTTP API (api.NewHandler) on 127.0.0.1 over
// an in-memory backend the tests script: fixed blocks, accounts and pool,
// submissions checked as a node would and recorded.
type fakeNode struct {
	*httptest.Server
	t       *testing.T
	handler atomic.Pointer[http.Handler]

	mu        sync.Mutex
	blocks    []chain.Block
	accounts  map[chain.Address]rpc.Account
	pool      []chain.Transaction
	submitted []chain.Transaction
	txPolls   map[chain.Hash]int
	// pendingPolls is how many times a submitted tx reads as pending
	// before it reads as committed.
	pendingPolls int
	// refuse, when set, is the error SubmitTx refuses with.
	refuse *rpc.Error
	// statusHeight, when set, overrides the head height of /v1/status.
	statusHeight func(call int) uint64
	statusCalls  int
	// clockBehindMs is /v1/status's clock_behind_ms.
	clockBehindMs int64
	// noEvents hides /v1/events as a node without the route would: the
	// request goes to the handler as GET /v1/no-events, its real 404.
	noEvents bool
	// noPeers hides /v1/peers the same way.
	noPeers bool
	token   string
	config  rpc.Config
	// exchange is the genesis exchange policy.
	exchange chain.ExchangePolicy
	// noHeartbeat turns the genesis heartbeat off.
	noHeartbeat bool
	// evidence is what GET /v1/evidence lists.
	evidence []rpc.Evidence
	// finality, when set, is what GET /v1/finality answers, and /v1/status
	// and tx infos report finality from it; nil: a node before finality
	// (501 not_supported, no finality fields).
	finality *rpc.Finality
	// finalPolls is how many polls a submitted tx reads as committed but
	// not final (with finality set).
	finalPolls int
	// blockPages counts GET /v1/blocks requests.
	blockPages int
	subs       map[int]chan *chain.Block
	nextSub    int
}

// The backend is the whole of what the node gives its API.
var (
	_ api.Backend         = (*fakeNode)(nil)
	_ api.PrefixSearcher  = (*fakeNode)(nil)
	_ api.EvidenceBackend = (*fakeNode)(nil)
	_ api.FinalityBackend = (*fakeNode)(nil)
)

// Finality is the scripted record, or not supported.
func (n *fakeNode) Finality() (rpc.Finality, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.finality == nil {
		return rpc.Finality{}, api.ErrNotSupported
	}
	return *n.finality, nil
}

// isFinal says whether height is final on the scripted record.
func (n *fakeNode) isFinal(height uint64) bool {
	return n.finality != nil && height <= n.finality.Finalized.Height
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
		subs:     map[int]chan *chain.Block{},
	}
	n.pool = []chain.Transaction{testkit.Tx(testkit.Alice, chain.TxTransfer, bob, 5, 1, 3)}
	n.setLimits(api.Limits{})
	// The wrapper only counts and hides routes; the real handler answers.
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		if r.Method == http.MethodGet && r.URL.Path == "/v1/blocks" {
			n.blockPages++
		}
		if n.noEvents && r.URL.Path == "/v1/events" {
			r.URL.Path = "/v1/no-events"
		}
		if n.noPeers && r.URL.Path == "/v1/peers" {
			r.URL.Path = "/v1/no-peers"
		}
		n.mu.Unlock()
		(*n.handler.Load()).ServeHTTP(w, r)
	})) // listens on 127.0.0.1
	t.Cleanup(n.Close)
	return n
}

// setLimits serves the API with l from the next request on.
func (n *fakeNode) setLimits(l api.Limits) {
	h := api.NewHandler(api.Options{Backend: n, Token: n.token, Limits: l})
	n.handler.Store(&h)
}

// cutPagesAt makes the API cut list pages at the bytes of blocks 1 to k,
// so a page of blocks holds about k of them.
func (n *fakeNode) cutPagesAt(k int) {
	n.mu.Lock()
	size := 2
	for _, b := range n.blocks[1 : k+1] {
		data, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		size += len(data) + 1
	}
	n.mu.Unlock()
	n.setLimits(api.Limits{MaxPageBytes: size})
}

// publish sends b to the event streams open now.
func (n *fakeNode) publish(b *chain.Block) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range n.subs {
		ch <- b
	}
}

// subscribers is how many event streams are open.
func (n *fakeNode) subscribers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs)
}

func (n *fakeNode) head() *chain.Block { return &n.blocks[len(n.blocks)-1] }

func (n *fakeNode) Status() rpc.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.statusCalls++
	head := n.head()
	height := head.Height
	if n.statusHeight != nil {
		height = n.statusHeight(n.statusCalls)
		head = &n.blocks[min(height, uint64(len(n.blocks)-1))]
	}
	st := rpc.Status{
		ChainID: testChainID, GenesisHash: n.blocks[0].PrevHash, Height: height, HeadHash: head.Hash(),
		HeadTimestamp: head.Timestamp, Address: string(carol), Election: "lottery", Peers: len(n.Peers()),
		BlockSize: n.config.BlockSize, BlockIntervalMs: n.config.BlockIntervalMs, Pending: len(n.pool),
		PeerID: "12D3KooWNodeCarol", P2PAddrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Version: "0.1.0",
		ClockBehindMs: n.clockBehindMs,
	}
	if f := n.finality; f != nil {
		st.JustifiedHeight, st.JustifiedHash = ptr(f.Justified.Height), ptr(f.Justified.Hash)
		st.FinalizedHeight, st.FinalizedHash = ptr(f.Finalized.Height), ptr(f.Finalized.Hash)
		st.FinalityStalled = f.Stalled
	}
	return st
}

func (n *fakeNode) Genesis() *chain.Genesis {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := chain.DefaultGenesis()
	g.ChainID, g.Timestamp, g.Exchange = testChainID, t0.UnixMilli(), n.exchange
	g.Heartbeat = !n.noHeartbeat
	g.Allocations = []chain.Allocation{{Address: carol, Balance: 500, Stake: 150}}
	return g
}

func (n *fakeNode) Accounts() []rpc.Account {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Collect(maps.Values(n.accounts))
	slices.SortFunc(out, func(a, b rpc.Account) int { return strings.Compare(string(a.Address), string(b.Address)) })
	return out
}

func (n *fakeNode) Account(a chain.Address) rpc.Account {
	n.mu.Lock()
	defer n.mu.Unlock()
	if acc, ok := n.accounts[a]; ok {
		return acc
	}
	return rpc.Account{Address: a, PendingNonce: ptr(uint64(0))}
}

func (n *fakeNode) Stakes() []rpc.Stake {
	return []rpc.Stake{{Address: carol, Stake: 150, Share: 0.75}, {Address: alice, Stake: 50, Share: 0.25}}
}

func (n *fakeNode) BlockByHeight(h uint64) (*chain.Block, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h >= uint64(len(n.blocks)) {
		return nil, api.ErrNotFound
	}
	b := n.blocks[h]
	return &b, nil
}

func (n *fakeNode) BlockByHash(h chain.Hash) (*chain.Block, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, b := range n.blocks {
		if b.Hash() == h {
			return &b, nil
		}
	}
	return nil, api.ErrNotFound
}

func (n *fakeNode) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*chain.Block
	for h := from; h < uint64(len(n.blocks)) && len(out) < limit; h++ {
		b := n.blocks[h]
		out = append(out, &b)
	}
	return out, nil
}

func (n *fakeNode) Height() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.head().Height
}

func (n *fakeNode) PendingTxs() []chain.Transaction {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.pool)
}

// TxInfo finds id in the blocks and the pool; a submitted transaction
// reads as pending for pendingPolls polls, then as committed in block 4.
func (n *fakeNode) TxInfo(id chain.Hash) (rpc.TxInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, b := range n.blocks {
		for i, tx := range b.Transactions {
			if tx.ID() == id {
				return rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(b.Height), BlockHash: ptr(b.Hash()), Index: ptr(i), Final: n.isFinal(b.Height), Transaction: &tx}, nil
			}
		}
	}
	for _, tx := range n.pool {
		if tx.ID() == id {
			return rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx}, nil
		}
	}
	for _, tx := range n.submitted {
		if tx.ID() != id {
			continue
		}
		n.txPolls[id]++
		if n.txPolls[id] <= n.pendingPolls {
			return rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx}, nil
		}
		h := chain.Hash{0xbb}
		final := n.finality != nil && n.txPolls[id] > n.pendingPolls+n.finalPolls
		return rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(uint64(4)), BlockHash: &h, Index: ptr(0), Final: final, Transaction: &tx}, nil
	}
	return rpc.TxInfo{}, api.ErrNotFound
}

func ruleErr(code, format string, args ...any) error {
	return &chain.RuleError{Code: chain.ErrorCode(code), Message: fmt.Sprintf(format, args...)}
}

// SubmitTx checks what a node would: the transaction validates for this
// chain (signature included) and has the next nonce; then refuse, if set.
func (n *fakeNode) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := tx.Validate(testChainID); err != nil {
		return chain.Hash{}, err
	}
	acc := n.accounts[tx.From]
	want := acc.Nonce + 1
	if acc.PendingNonce != nil {
		want = *acc.PendingNonce + 1
	}
	if tx.Nonce != want {
		return chain.Hash{}, ruleErr("bad_nonce", "nonce %d, account %s expects %d", tx.Nonce, tx.From, want)
	}
	if n.refuse != nil {
		return chain.Hash{}, ruleErr(n.refuse.Code, "%s", n.refuse.Message)
	}
	n.submitted = append(n.submitted, tx)
	return tx.ID(), nil
}

func (n *fakeNode) SubmitTxs(txs []chain.Transaction) ([]chain.Hash, []error) {
	ids, errs := make([]chain.Hash, len(txs)), make([]error, len(txs))
	for i, tx := range txs {
		ids[i], errs[i] = n.SubmitTx(tx)
	}
	return ids, errs
}

func (n *fakeNode) Config() rpc.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.config
}

func (n *fakeNode) SetConfig(p rpc.ConfigPatch) (rpc.Config, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.BlockSize != nil {
		n.config.BlockSize = *p.BlockSize
	}
	if p.BlockIntervalMs != nil {
		n.config.BlockIntervalMs = *p.BlockIntervalMs
	}
	if p.PoolLimit != nil {
		n.config.PoolLimit = *p.PoolLimit
	}
	return n.config, nil
}

// StakeFromNode signs carol's next STAKE; a zero amount is refused as the
// node's pool refuses it.
func (n *fakeNode) StakeFromNode(amount uint64) (chain.Hash, error) {
	tx := testkit.Tx(testkit.Carol, chain.TxStake, "", amount, 0, 2)
	if err := tx.Validate(testChainID); err != nil {
		return chain.Hash{}, err
	}
	return tx.ID(), nil
}

func (n *fakeNode) NodeKey() rpc.NodeKey {
	return rpc.NodeKey{PublicKey: fmt.Sprintf("%x", carolPriv.Public()), Address: carol}
}

// Peers are in peer id order, as a node answers them: one far, one not
// measured yet, one near (the tables list them nearest first).
func (n *fakeNode) Peers() []rpc.Peer {
	return []rpc.Peer{
		{ID: "12D3KooWPeerOne", Addrs: []string{"/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"}, RTTMs: 165.42, RTTLastMs: 171.9},
		{ID: "12D3KooWPeerThree", Addrs: []string{"/ip4/10.2.0.4/tcp/4001"}},
		{ID: "12D3KooWPeerTwo", Addrs: []string{"/ip4/10.1.0.3/tcp/4001"}, RTTMs: 0.183, RTTLastMs: 3.31},
	}
}

func (n *fakeNode) SubscribeBlocks() (<-chan *chain.Block, func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := make(chan *chain.Block, 8)
	id := n.nextSub
	n.nextSub++
	n.subs[id] = ch
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.subs, id)
	}
}

func (n *fakeNode) Evidence() []rpc.Evidence {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.evidence)
}

// SubscribeEvidence: no evidence events (a nil channel is never ready).
func (n *fakeNode) SubscribeEvidence() (<-chan rpc.EvidenceEvent, func()) { return nil, func() {} }

// SearchPrefix is the node's search over the fixture's blocks,
// transactions (chain and pool) and accounts.
func (n *fakeNode) SearchPrefix(p string, max int) (api.SearchResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var res api.SearchResult
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
	slices.Sort(res.Accounts)
	res.Blocks, res.Txs, res.Accounts = res.Blocks[:min(len(res.Blocks), max)], res.Txs[:min(len(res.Txs), max)], res.Accounts[:min(len(res.Accounts), max)]
	return res, nil
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
