package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// startTestNode runs a genesis node without the p2p network on a random
// API port; its key holds stake 1 and balance 1000, as on `start --genesis`.
func startTestNode(t testing.TB, mutate ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{Home: t.TempDir(), NewNetwork: true, NoNetwork: true, Genesis: DefaultGenesisParams(), BlockInterval: 50 * time.Millisecond}
	cfg.Genesis.ChainID = "posd-test"
	cfg.Genesis.Heartbeat = false // tests that want it turn it on: these count blocks
	for _, m := range mutate {
		m(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// apiCall sends a request to the node's API and decodes a JSON answer into out.
func apiCall(t testing.TB, n *Node, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, n.APIURL()+path, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// send signs tx with k at the next pending nonce, submits it and waits
// until it is committed.
func send(t testing.TB, n *Node, k *keystore.Key, tx chain.Transaction) rpc.TxInfo {
	t.Helper()
	var acc rpc.Account
	apiCall(t, n, "GET", "/v1/accounts/"+string(k.Address()), nil, &acc)
	tx.ChainID = n.API().Genesis().ChainID
	tx.Nonce = *acc.PendingNonce + 1
	k.SignTx(&tx)
	var res rpc.SubmitResult
	if code := apiCall(t, n, "POST", "/v1/txs", tx, &res); code != http.StatusAccepted {
		t.Fatalf("submit %s: status %d, %+v", tx.Type, code, res.Error)
	}
	return waitCommitted(t, n, tx.ID())
}

func waitCommitted(t testing.TB, n *Node, id chain.Hash) rpc.TxInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var info rpc.TxInfo
		if apiCall(t, n, "GET", "/v1/txs/"+id.String(), nil, &info) == http.StatusOK && info.Status == rpc.TxCommitted {
			return info
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("tx %s not committed within 10s", id)
	return rpc.TxInfo{}
}

func account(t testing.TB, n *Node, a chain.Address) rpc.Account {
	var acc rpc.Account
	apiCall(t, n, "GET", "/v1/accounts/"+string(a), nil, &acc)
	return acc
}

func TestNodeLifecycleOfEveryTxType(t *testing.T) {
	n := startTestNode(t)
	nodeKey := n.key
	alice, _ := keystore.Generate()
	bob, _ := keystore.Generate()

	send(t, n, alice, chain.Transaction{Type: chain.TxExchange, To: alice.Address(), Amount: 500})
	send(t, n, alice, chain.Transaction{Type: chain.TxTransfer, To: bob.Address(), Amount: 120, Fee: 2})
	info := send(t, n, alice, chain.Transaction{Type: chain.TxStake, To: alice.Address(), Amount: 100})
	send(t, n, alice, chain.Transaction{Type: chain.TxUnstake, To: alice.Address(), Amount: 40})

	if info.Height == nil || *info.Height != 3 || info.BlockHash == nil {
		t.Fatalf("stake tx info %+v, want height 3", info)
	}
	// The 40 unstaked at height 4 unbond until 4 + unbonding_blocks.
	want := map[chain.Address]rpc.Account{
		alice.Address():   {Balance: 500 - 122 - 100, Stake: 60, Nonce: 4, Unbonding: 40, ReleaseHeight: 4 + chain.DefaultUnbondingBlocks},
		bob.Address():     {Balance: 120},
		nodeKey.Address(): {Balance: 1000 + 2, Stake: 1},
	}
	for a, w := range want {
		got := account(t, n, a)
		if got.Balance != w.Balance || got.Stake != w.Stake || got.Nonce != w.Nonce || got.Unbonding != w.Unbonding || got.ReleaseHeight != w.ReleaseHeight {
			t.Errorf("%s: got %+v, want %+v", a.Short(), got, w)
		}
	}
	// The original's routes tell the same story.
	var balances map[string]uint64
	apiCall(t, n, "GET", "/accounts", nil, &balances)
	if balances[string(bob.Address())] != 120 {
		t.Errorf("/accounts: %v", balances)
	}
	var stakes map[string]uint64
	apiCall(t, n, "GET", "/stakes", nil, &stakes)
	if stakes[string(alice.Address())] != 60 || stakes[string(nodeKey.Address())] != 1 {
		t.Errorf("/stakes: %v", stakes)
	}
	var bc struct {
		Blocks []chain.Block `json:"blocks"`
	}
	apiCall(t, n, "GET", "/blockchain", nil, &bc)
	if len(bc.Blocks) != 5 {
		t.Fatalf("/blockchain has %d blocks, want 5 (genesis + 4)", len(bc.Blocks))
	}
	for i, b := range bc.Blocks[1:] {
		if len(b.Transactions) != 1 || b.Forger != nodeKey.Address() {
			t.Errorf("block %d: %d txs, forger %s", i+1, len(b.Transactions), b.Forger.Short())
		}
	}
}

func TestRestartKeepsChainAndDoesNotMintAgain(t *testing.T) {
	home := t.TempDir()
	mk := func() *Node {
		return startTestNode(t, func(c *Config) { c.Home = home; c.Fund = 50 })
	}
	n := mk()
	addr := n.Address()
	deadline := time.Now().Add(10 * time.Second)
	for account(t, n, addr).Balance != 1050 {
		if time.Now().After(deadline) {
			t.Fatalf("funding not committed: %+v", account(t, n, addr))
		}
		time.Sleep(10 * time.Millisecond)
	}
	height := n.API().Height()
	n.Close()

	n2 := mk()
	if n2.Address() != addr {
		t.Fatal("the node key changed across restarts")
	}
	time.Sleep(200 * time.Millisecond)
	if got := n2.API().Height(); got != height {
		t.Fatalf("height after restart %d, want %d", got, height)
	}
	if got := account(t, n2, addr).Balance; got != 1050 {
		t.Fatalf("balance after restart %d, want 1050 (funded once)", got)
	}
}

func TestForgingPolicy(t *testing.T) {
	n := startTestNode(t, func(c *Config) { c.BlockSize = 3; c.BlockInterval = time.Hour })
	k, _ := keystore.Generate()
	var ids []chain.Hash
	for i := uint64(1); i <= 3; i++ {
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: "posd-test", To: k.Address(), Amount: 10, Nonce: i}
		k.SignTx(&tx)
		if _, err := n.API().SubmitTx(tx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tx.ID())
		if i < 3 {
			time.Sleep(100 * time.Millisecond)
			if n.API().Height() != 0 {
				t.Fatalf("forged with %d of block_size 3 pending", i)
			}
		}
	}
	info := waitCommitted(t, n, ids[2])
	if *info.Height != 1 {
		t.Fatalf("three txs landed at height %d, want all in block 1", *info.Height)
	}
	b, _ := n.API().BlockByHeight(1)
	if len(b.Transactions) != 3 {
		t.Fatalf("block 1 holds %d txs, want 3", len(b.Transactions))
	}

	// Runtime change through the admin API: block_size 1 forges at once.
	one := 1
	var cfg rpc.Config
	req, _ := http.NewRequest("PUT", n.APIURL()+"/v1/config", bytes.NewReader([]byte(`{"block_size":1}`)))
	req.Header.Set("Authorization", "Bearer "+n.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if resp.StatusCode != 200 || cfg.BlockSize != one {
		t.Fatalf("PUT /v1/config: %d %+v", resp.StatusCode, cfg)
	}
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: "posd-test", To: k.Address(), Amount: 10, Nonce: 4}
	k.SignTx(&tx)
	n.API().SubmitTx(tx)
	waitCommitted(t, n, tx.ID())
}

// TestInvalidTransactionIsEvictedNotStalling: a transaction admitted
// against a stale view of the chain (the pool reads snapshots, and a block
// may land between the read and the admission) is a replay by the time a
// block is due: it must be evicted, and the others forged.
func TestInvalidTransactionIsEvictedNotStalling(t *testing.T) {
	n := startTestNode(t, func(c *Config) { c.BlockSize = 1000; c.BlockInterval = time.Hour })
	k, _ := keystore.Generate()
	if _, err := n.API().SetConfig(rpc.ConfigPatch{BlockSize: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	send(t, n, k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 10})
	if _, err := n.API().SetConfig(rpc.ConfigPatch{BlockSize: ptr(1000)}); err != nil {
		t.Fatal(err)
	}
	replay := chain.Transaction{Type: chain.TxExchange, ChainID: "posd-test", To: k.Address(), Amount: 11, Nonce: 1}
	k.SignTx(&replay)
	if _, err := n.pool.Add(replay, staleView{}); err != nil {
		t.Fatal(err)
	}
	other, _ := keystore.Generate()
	good := chain.Transaction{Type: chain.TxExchange, ChainID: "posd-test", To: other.Address(), Amount: 3, Nonce: 1}
	other.SignTx(&good)
	if _, err := n.API().SubmitTx(good); err != nil {
		t.Fatal(err)
	}
	if _, err := n.API().SetConfig(rpc.ConfigPatch{BlockSize: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, n, good.ID())
	waitUntil(t, 10*time.Second, "the replay evicted", func() bool {
		_, ok := n.pool.Get(replay.ID())
		return !ok
	})
}

// staleView is the chain before anything happened.
type staleView struct{}

func (staleView) Account(chain.Address) chain.Account { return chain.Account{} }

func ptr[T any](v T) *T { return &v }

func TestTokenIsPrivate(t *testing.T) {
	n := startTestNode(t)
	if n.Token() == "" || len(n.Token()) != 64 {
		t.Fatalf("token %q", n.Token())
	}
	status := apiCall(t, n, "GET", "/v1/config", nil, nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/config without token: %d", status)
	}
}

// TestImportBlocksStopsAtTheFirstBadBlock: a synced range whose third block
// is invalid commits the first two, refuses the third with its rule code,
// and leaves the state of height 2 on disk and in memory.
func TestImportBlocksStopsAtTheFirstBadBlock(t *testing.T) {
	n := startTestNode(t)
	k, _ := keystore.Generate()
	parent := n.API().Head().Header
	var blocks []*chain.Block
	for i := 1; i <= 5; i++ {
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: "posd-test", To: k.Address(), Amount: 10, Nonce: uint64(i)}
		k.SignTx(&tx)
		if i == 3 {
			tx.Amount = 11 // breaks the signature
		}
		b := chain.NewBlock(n.g, &parent, 0, parent.Timestamp+1, []chain.Transaction{tx})
		n.key.SignHeader(&b.Header)
		blocks = append(blocks, b)
		parent = b.Header
	}
	accepted, err := n.chain.ProcessBlocks(blocks)
	if accepted != 2 || chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Fatalf("accepted %d, err %v; want 2 and bad_signature", accepted, err)
	}
	if n.API().Height() != 2 || account(t, n, k.Address()).Balance != 20 {
		t.Fatalf("height %d, balance %d", n.API().Height(), account(t, n, k.Address()).Balance)
	}
	if err := n.chain.CheckDisk(); err != nil {
		t.Fatal(err)
	}
	// The good prefix again: known blocks are skipped, nothing changes.
	if accepted, err := n.chain.ProcessBlocks(blocks[:2]); accepted != 2 || err != nil {
		t.Fatalf("re-import: %d %v", accepted, err)
	}
}

// TestReorgDeeperThan64IsRefused: a branch forking more than MaxReorgDepth
// blocks below the head is refused with reorg_too_deep, whatever its length.
func TestReorgDeeperThan64IsRefused(t *testing.T) {
	n := startTestNode(t)
	build := func(parent chain.Header, count int, dt int64) []*chain.Block {
		var out []*chain.Block
		for i := 0; i < count; i++ {
			b := chain.NewBlock(n.g, &parent, 0, parent.Timestamp+dt, nil)
			n.key.SignHeader(&b.Header)
			out = append(out, b)
			parent = b.Header
		}
		return out
	}
	genesis := n.API().Head().Header
	main := build(genesis, MaxReorgDepth+2, 1)
	if accepted, err := n.chain.ProcessBlocks(main); err != nil || accepted != len(main) {
		t.Fatalf("main chain: %d %v", accepted, err)
	}
	// Another branch from block 1: different timestamps, different hashes.
	branch := build(main[0].Header, MaxReorgDepth+5, 2)
	err := n.chain.ProcessBlock(branch[0])
	if chain.CodeOf(err) != ErrReorgTooDeep.Code {
		t.Fatalf("got %v, want reorg_too_deep", err)
	}
	if n.API().Head().Hash() != main[len(main)-1].Hash() {
		t.Fatal("the head moved")
	}
	// A branch forking within the limit and longer than the main chain wins.
	near := build(main[len(main)-3].Header, 3, 2)
	if _, err := n.chain.ProcessBlocks(near); err != nil {
		t.Fatal(err)
	}
	if n.API().Head().Hash() != near[2].Hash() {
		t.Fatal("a longer branch within the reorg limit did not win")
	}
}

// TestSideBlockCheckedBeforeStored: a copy of a competing block with one
// transaction signature garbled has the same hash (ids leave signatures
// out), so it must be refused before it is stored, or the real block would
// later be taken for known.
func TestSideBlockCheckedBeforeStored(t *testing.T) {
	n := startTestNode(t)
	genesis := n.API().Head().Header
	a1 := chain.NewBlock(n.g, &genesis, 0, genesis.Timestamp+1, nil)
	n.key.SignHeader(&a1.Header)
	if err := n.chain.ProcessBlock(a1); err != nil {
		t.Fatal(err)
	}
	k, _ := keystore.Generate()
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: "posd-test", To: k.Address(), Amount: 1, Nonce: 1}
	k.SignTx(&tx)
	b1 := chain.NewBlock(n.g, &genesis, 0, genesis.Timestamp+2, []chain.Transaction{tx})
	n.key.SignHeader(&b1.Header)
	garbled := *b1
	garbled.Transactions = []chain.Transaction{tx}
	garbled.Transactions[0].Signature = chain.Signature(bytes.Repeat([]byte{0xab}, 64))
	if garbled.Hash() != b1.Hash() {
		t.Fatal("the copy should share the block hash")
	}
	if err := n.chain.ProcessBlock(&garbled); chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Fatalf("garbled copy: %v, want bad_signature", err)
	}
	if _, err := n.API().BlockByHash(b1.Hash()); err == nil {
		t.Fatal("the garbled copy was stored")
	}
	if err := n.chain.ProcessBlock(b1); err != nil && !errors.Is(err, ErrSideBlock) {
		t.Fatalf("the real block: %v", err)
	}
	if _, err := n.API().BlockByHash(b1.Hash()); err != nil {
		t.Fatal("the real block was not kept")
	}
	// A side block from a forger who was not elected is refused too.
	stranger, _ := keystore.Generate()
	c1 := chain.NewBlock(n.g, &genesis, 0, genesis.Timestamp+3, nil)
	stranger.SignHeader(&c1.Header)
	if err := n.chain.ProcessBlock(c1); chain.CodeOf(err) != chain.ErrWrongForger.Code {
		t.Fatalf("stranger's side block: %v, want wrong_forger", err)
	}
}

// TestHaltedNodeImportsNothing: once halted, blocks are refused with the reason.
func TestHaltedNodeImportsNothing(t *testing.T) {
	n := startTestNode(t)
	parent := n.API().Head().Header
	b := chain.NewBlock(n.g, &parent, 0, parent.Timestamp+1, nil)
	n.key.SignHeader(&b.Header)
	cause := errors.New("disk gone")
	haltNode(n, cause)
	if err := n.chain.ProcessBlock(b); !errors.Is(err, cause) {
		t.Fatalf("ImportBlock after halt: %v", err)
	}
	if _, err := n.chain.ProcessBlocks([]*chain.Block{b}); err == nil {
		t.Fatal("ImportBlocks after halt succeeded")
	}
	if n.API().Height() != 0 {
		t.Fatal("the halted node moved")
	}
}

// haltNode stops n from forging and importing as an unrecoverable error
// does (the chain manager halts; the node's loops end), the API answering on.
func haltNode(n *Node, err error) {
	n.chain.Halt(err)
	if n.cancel != nil {
		n.cancel()
	}
}
