package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// memNode is a Node in memory (no transport at all): one chain that pools
// what it is sent, checking nonces and funds, and forges every executable
// pooled transaction into a block each time its blocks are read. The
// command's tests run the engine over HTTP against a fake and a real node.
type memNode struct {
	mu       sync.Mutex
	g        *chain.Genesis
	blocks   []chain.Block
	accounts map[chain.Address]chain.Account
	pool     map[chain.Address]map[uint64]chain.Transaction
	// refuseBatch, when set, refuses whole batches with this code while
	// it returns true.
	refuseBatch func() bool
	batches     int
	// busyBatch, when set, may refuse a whole batch; pushBack one
	// transaction, with a code, before the pool looks at it.
	busyBatch func(txs []chain.Transaction) error
	pushBack  func(tx *chain.Transaction) string
	// sends counts how many times each transaction was sent.
	sends map[chain.Hash]int
	// strict makes the pool check nonces as posd's does with no room for
	// gapped transactions: a used nonce is bad_nonce, a pooled one
	// already_known (nonce_in_use for another transaction), and one that
	// does not follow the pooled run nonce_gap.
	strict bool
	// evict, when set, may drop a transaction just pooled (a full pool
	// making room) once its batch is admitted.
	evict func(tx *chain.Transaction) bool
	// answered counts the refusals by code.
	answered map[string]int
}

func newMemNode() *memNode {
	g := chain.DefaultGenesis()
	g.ChainID, g.Timestamp, g.MaxBlockTxs = "posd-lab", 1_700_000_000_000, 500
	return &memNode{g: g, blocks: []chain.Block{*g.Block()}, accounts: map[chain.Address]chain.Account{}, pool: map[chain.Address]map[uint64]chain.Transaction{}}
}

func (n *memNode) URL() string { return "mem://node" }

func (n *memNode) Status(context.Context) (rpc.Status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	head := n.blocks[len(n.blocks)-1]
	return rpc.Status{ChainID: n.g.ChainID, GenesisHash: n.g.Hash(), Height: head.Height, HeadHash: head.Hash()}, nil
}

func (n *memNode) Genesis(context.Context) (*chain.Genesis, error) { return n.g, nil }

func (n *memNode) Account(_ context.Context, a chain.Address) (rpc.Account, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	acc := n.accounts[a]
	top := n.top(a)
	return rpc.Account{Address: a, Balance: acc.Balance, Nonce: acc.Nonce, PendingNonce: &top}, nil
}

// top is the end of a's run of pooled nonces from its account nonce + 1.
// n.mu is held.
func (n *memNode) top(a chain.Address) uint64 {
	top := n.accounts[a].Nonce
	for {
		if _, ok := n.pool[a][top+1]; !ok {
			return top
		}
		top++
	}
}

// checkNonce is the strict pool's nonce rule. n.mu is held.
func (n *memNode) checkNonce(tx *chain.Transaction, id chain.Hash) string {
	if tx.Nonce <= n.accounts[tx.From].Nonce {
		return "bad_nonce"
	}
	if p, ok := n.pool[tx.From][tx.Nonce]; ok {
		if p.ID() == id {
			return "already_known"
		}
		return "nonce_in_use"
	}
	if tx.Nonce != n.top(tx.From)+1 {
		return "nonce_gap"
	}
	return ""
}

func (n *memNode) SubmitTxs(_ context.Context, txs []chain.Transaction) ([]rpc.SubmitResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.batches++
	if n.refuseBatch != nil && n.refuseBatch() {
		return nil, &RefusedError{Code: "unavailable", Message: "pool closing"}
	}
	if n.busyBatch != nil {
		if err := n.busyBatch(txs); err != nil {
			return nil, err
		}
	}
	out := make([]rpc.SubmitResult, len(txs))
	for i := range txs {
		tx := txs[i]
		id := tx.ID()
		out[i].ID = &id
		if n.sends == nil {
			n.sends = map[chain.Hash]int{}
		}
		n.sends[id]++
		if n.pushBack != nil {
			if code := n.pushBack(&tx); code != "" {
				out[i].Error = &rpc.Error{Code: code, Message: "pushed back"}
				continue
			}
		}
		if err := tx.Validate(n.g.ChainID); err != nil {
			out[i].Error = &rpc.Error{Code: string(chain.CodeOf(err)), Message: err.Error()}
			continue
		}
		if n.strict {
			if code := n.checkNonce(&tx, id); code != "" {
				if n.answered == nil {
					n.answered = map[string]int{}
				}
				n.answered[code]++
				out[i].Error = &rpc.Error{Code: code, Message: "refused by the strict pool"}
				continue
			}
		}
		if n.pool[tx.From] == nil {
			n.pool[tx.From] = map[uint64]chain.Transaction{}
		}
		n.pool[tx.From][tx.Nonce] = tx
		out[i].Status = rpc.TxPending
	}
	if n.evict != nil {
		for i := range txs {
			if out[i].Error == nil && n.evict(&txs[i]) {
				delete(n.pool[txs[i].From], txs[i].Nonce)
			}
		}
	}
	return out, nil
}

func (n *memNode) BlockTxIDs(ctx context.Context, from *uint64, limit int) ([]rpc.BlockTxIDs, error) {
	blocks, err := n.Blocks(ctx, from, limit)
	out := make([]rpc.BlockTxIDs, len(blocks))
	for i, b := range blocks {
		out[i] = rpc.BlockTxIDs{Height: b.Height, Hash: b.Hash(), PrevHash: b.PrevHash}
		for j := range b.Transactions {
			out[i].TxIDs = append(out[i].TxIDs, b.Transactions[j].ID())
		}
	}
	return out, err
}

func (n *memNode) Blocks(_ context.Context, from *uint64, limit int) ([]chain.Block, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var txs []chain.Transaction
	for _, a := range slices.Sorted(maps.Keys(n.pool)) {
		for nonce := n.accounts[a].Nonce + 1; ; nonce++ {
			tx, ok := n.pool[a][nonce]
			if !ok {
				break
			}
			delete(n.pool[a], nonce)
			txs = append(txs, tx)
			f := n.accounts[tx.From]
			f.Nonce = tx.Nonce
			if tx.Type == chain.TxTransfer {
				f.Balance -= tx.Amount
			}
			n.accounts[tx.From] = f
			to := n.accounts[tx.To]
			to.Balance += tx.Amount
			n.accounts[tx.To] = to
		}
	}
	if len(txs) > 0 {
		head := &n.blocks[len(n.blocks)-1].Header
		n.blocks = append(n.blocks, *chain.NewBlock(n.g, head, 0, head.Timestamp+1000, txs))
	}
	var out []chain.Block
	for h := int(*from); h < len(n.blocks) && len(out) < limit; h++ {
		out = append(out, n.blocks[h])
	}
	return out, nil
}

func TestRunOnMemNode(t *testing.T) {
	n := newMemNode()
	var mu sync.Mutex
	var phases []Phase
	last := map[Phase]Progress{}
	refusals := 2
	n.refuseBatch = func() bool { // the first two transfer batches are refused whole
		if n.batches > 1 && refusals > 0 {
			refusals--
			return true
		}
		return false
	}
	r, err := Run(context.Background(), Config{
		Nodes: []Node{n}, Senders: 3, Txs: 90, Concurrency: 2, Batch: 20, TimeoutCommit: 20 * time.Second,
		Poll: time.Millisecond, ProgressEvery: time.Millisecond,
		Progress: func(p Progress) {
			mu.Lock()
			defer mu.Unlock()
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
			last[p.Phase] = p
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %+v", r)
	if r.Committed != r.Submitted || r.Missing() != 0 || r.Rejected["unavailable"] == 0 || r.Submitted+r.Rejected["unavailable"] != 90 {
		t.Errorf("report %+v", r)
	}
	if r.Blocks == 0 || r.FirstHeight == 0 || r.LastHeight < r.FirstHeight || r.LatencyMs.Max < r.LatencyMs.P50 {
		t.Errorf("blocks and latency: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []Phase{PhaseFunding, PhaseSigning, PhaseSending, PhaseCommitting}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if p := last[PhaseFunding]; p.Done != 3 || p.Total != 3 {
		t.Errorf("last funding progress %+v", p)
	}
	if p := last[PhaseSending]; p.Done != 90 || p.Total != 90 || p.Refused != r.Rejected["unavailable"] {
		t.Errorf("last sending progress %+v", p)
	}
	if p := last[PhaseCommitting]; p.Done != r.Committed {
		t.Errorf("last committing progress %+v", p)
	}
}

// TestWatcherFollowsReorgs: a block that does not follow the last one read
// makes the watcher forget that block and read again from its height.
func TestWatcherFollowsReorgs(t *testing.T) {
	g := newMemNode().g
	gen := g.Block()
	from := chain.Address(strings.Repeat("a", 40))
	tx := func(nonce uint64) chain.Transaction {
		return chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, From: from, To: from, Amount: 1, Nonce: nonce}
	}
	b1 := chain.NewBlock(g, &gen.Header, 0, gen.Timestamp+1, []chain.Transaction{tx(1)})
	b2 := chain.NewBlock(g, &b1.Header, 0, b1.Timestamp+1, []chain.Transaction{tx(2)})
	b1x := chain.NewBlock(g, &gen.Header, 1, gen.Timestamp+2000, nil) // another branch at height 1
	b2x := chain.NewBlock(g, &b1x.Header, 0, b1x.Timestamp+1, []chain.Transaction{tx(1)})
	w := newCommitWatcher(nil, 0, gen.Hash(), time.Millisecond)
	t1, t2 := tx(1), tx(2)
	w.watch([]chain.Hash{t1.ID(), t2.ID()}, true)
	ids := func(blocks ...*chain.Block) []rpc.BlockTxIDs {
		var out []rpc.BlockTxIDs
		for _, b := range blocks {
			e := rpc.BlockTxIDs{Height: b.Height, Hash: b.Hash(), PrevHash: b.PrevHash}
			for j := range b.Transactions {
				e.TxIDs = append(e.TxIDs, b.Transactions[j].ID())
			}
			out = append(out, e)
		}
		return out
	}
	now := time.Now()
	w.add(ids(b1, b2), now)
	if w.transfersSeen() != 2 || w.next != 3 {
		t.Fatalf("after b1 b2: %d transfers, next %d", w.transfersSeen(), w.next)
	}
	// The node switched to the x branch: height 3 reads fail to follow,
	// so the watcher steps back block by block until they do.
	b3x := chain.NewBlock(g, &b2x.Header, 0, b2x.Timestamp+1, nil)
	w.add(ids(b3x), now) // b3x's parent is b2x, not b2: forget b2
	if w.next != 2 || w.transfersSeen() != 1 {
		t.Fatalf("after the mismatch: next %d, %d transfers", w.next, w.transfersSeen())
	}
	w.add(ids(b2x), now) // b2x's parent is b1x, not b1: forget b1
	if w.next != 1 || w.transfersSeen() != 0 {
		t.Fatalf("after the second mismatch: next %d, %d transfers", w.next, w.transfersSeen())
	}
	w.add(ids(b1x, b2x, b3x), now)
	seen, transfers, blocks, first, last, _ := w.summary()
	if transfers != 1 || blocks != 1 || first != 2 || last != 2 || len(seen) != 1 {
		t.Errorf("after the reorg: %d transfers in %d blocks (%d..%d), seen %d", transfers, blocks, first, last, len(seen))
	}
}

// TestPacedLoad: with Rate, the last batch cannot leave before its turn:
// (Txs − Batch) / Rate after the first; the report says the rate.
func TestPacedLoad(t *testing.T) {
	n := newMemNode()
	const txs, batch, rate = 90, 10, 300.0
	r, err := Run(context.Background(), Config{
		Nodes: []Node{n}, Senders: 3, Txs: txs, Concurrency: 3, Batch: batch, Rate: rate,
		TimeoutCommit: 20 * time.Second, Poll: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Committed != txs || r.Rate != rate {
		t.Fatalf("report %+v", r)
	}
	if least := float64(txs-batch) / rate; r.SubmitDurationS < least {
		t.Fatalf("sent in %.3fs, faster than the pace allows (%.3fs)", r.SubmitDurationS, least)
	}
}

func TestConfigErrors(t *testing.T) {
	n := newMemNode()
	ok := Config{Nodes: []Node{n}, Senders: 1, Txs: 1, Concurrency: 1, Batch: 1, TimeoutCommit: time.Second}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Nodes = nil }, "load: no nodes"},
		{func(c *Config) { c.Senders = 0 }, "load: senders must be at least 1, got 0"},
		{func(c *Config) { c.Senders, c.Txs = 3, 2 }, "load: 3 senders but 2 transfers: every sender sends at least one"},
		{func(c *Config) { c.Concurrency = 0 }, "load: concurrency must be at least 1, got 0"},
		{func(c *Config) { c.Batch = 0 }, "load: batch must be at least 1, got 0"},
		{func(c *Config) { c.TimeoutCommit = 0 }, "load: the commit timeout must be positive, got 0s"},
		{func(c *Config) { c.Rate = -1 }, "load: rate must be 0 (no pacing) or 0.01 to 1e+09 transfers per second, got -1"},
		{func(c *Config) { c.Rate = 1e-12 }, "load: rate must be 0 (no pacing) or 0.01 to 1e+09 transfers per second, got 1e-12"},
		{func(c *Config) { c.Rate = math.Inf(1) }, "load: rate must be 0 (no pacing) or 0.01 to 1e+09 transfers per second, got +Inf"},
		{func(c *Config) { c.Rate = math.NaN() }, "load: rate must be 0 (no pacing) or 0.01 to 1e+09 transfers per second, got NaN"},
		{func(c *Config) { c.Batch = 501 }, "batch 501 is more than network posd-lab takes in one request (max_block_txs 500)"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := Run(context.Background(), cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	closed := newMemNode()
	closed.g.Exchange = chain.ExchangePolicy{Authorities: []chain.Address{chain.Address(strings.Repeat("b", 40))}}
	cfg := ok
	cfg.Nodes = []Node{closed}
	var ce *ClosedExchangeError
	if _, err := Run(context.Background(), cfg); !errors.As(err, &ce) || ce.Authorities != 1 {
		t.Errorf("closed exchange: %v", err)
	}
	other := newMemNode()
	other.g.ChainID = "posd-other"
	cfg.Nodes = []Node{n, other}
	var me *MixedNetworkError
	if _, err := Run(context.Background(), cfg); !errors.As(err, &me) || me.OtherChainID != "posd-other" {
		t.Errorf("mixed networks: %v", err)
	}
	if got := fmt.Sprint(ShortHash(n.g.Hash())); len([]rune(got)) != 11 || !strings.HasSuffix(got, "…") {
		t.Errorf("ShortHash %q", got)
	}
}
