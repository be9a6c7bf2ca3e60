package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testutil"
)

// fakeChain is a Handler holding a list of linked blocks; it checks links
// only (real validation is the node's job).
type fakeChain struct {
	mu       sync.Mutex
	genesis  chain.Hash
	blocks   []*chain.Block // blocks[i].Height == i
	txs      []chain.Transaction
	txSeen   map[chain.Hash]bool
	rejectTx func(*chain.Transaction) bool
	blockErr func(*chain.Block) error // when set and non-nil, HandleBlock's answer
	acceptAt map[uint64]time.Time     // when each height was imported
	notify   chan struct{}            // signalled on every change
	maxRead  int                      // the most blocks one Blocks call asked for
}

func newFakeChain(genesis string) *fakeChain {
	g := chain.Hash(sha256.Sum256([]byte(genesis)))
	return &fakeChain{
		genesis:  g,
		blocks:   []*chain.Block{{Header: chain.Header{Height: 0, PrevHash: g}}},
		txSeen:   map[chain.Hash]bool{},
		acceptAt: map[uint64]time.Time{},
		notify:   make(chan struct{}, 1),
	}
}

// extend appends n blocks; salt makes forks differ.
func (f *fakeChain) extend(n int, salt int64) []*chain.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*chain.Block
	for range n {
		parent := f.blocks[len(f.blocks)-1]
		b := &chain.Block{Header: chain.Header{
			Height:    parent.Height + 1,
			PrevHash:  parent.Hash(),
			Timestamp: int64(parent.Height+1)*1000 + salt,
			Forger:    "f0rger",
		}}
		f.blocks = append(f.blocks, b)
		out = append(out, b)
	}
	return out
}

func (f *fakeChain) signal() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeChain) GenesisHash() chain.Hash { return f.genesis }

func (f *fakeChain) Head() (uint64, chain.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.blocks[len(f.blocks)-1]
	return b.Height, b.Hash()
}

func (f *fakeChain) height() uint64 { h, _ := f.Head(); return h }

// HandleTxs pools new transactions and relays them; one that rejectTx
// refuses rejects the whole message.
func (f *fakeChain) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var relay []chain.Transaction
	for i := range txs {
		tx := &txs[i]
		if f.rejectTx != nil && f.rejectTx(tx) {
			return nil, Reject(errors.New("bad tx"))
		}
		id := tx.ID()
		if f.txSeen[id] {
			continue
		}
		f.txSeen[id] = true
		f.txs = append(f.txs, *tx)
		relay = append(relay, *tx)
	}
	if len(relay) > 0 {
		f.signal()
	}
	return relay, nil
}

func (f *fakeChain) hasTx(amount uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tx := range f.txs {
		if tx.Amount == amount {
			return true
		}
	}
	return false
}

// HandleBlock imports a block whose parent is known, switching to its
// branch (dropping blocks above the parent): good enough for tests.
func (f *fakeChain) HandleBlock(b *chain.Block) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blockErr != nil {
		if err := f.blockErr(b); err != nil {
			return err
		}
	}
	if b.Height == 0 {
		return ErrIgnore
	}
	if b.Height < uint64(len(f.blocks)) && f.blocks[b.Height].Hash() == b.Hash() {
		return ErrIgnore
	}
	if b.Height > uint64(len(f.blocks)) || f.blocks[b.Height-1].Hash() != b.PrevHash {
		return ErrUnknownParent
	}
	f.blocks = append(f.blocks[:b.Height], b)
	f.acceptAt[b.Height] = time.Now()
	f.signal()
	return nil
}

// HasBlock reports whether h is a block of the chain (BlockKnower).
func (f *fakeChain) HasBlock(h chain.Hash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.blocks {
		if b.Hash() == h {
			return true
		}
	}
	return false
}

func (f *fakeChain) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxRead = max(f.maxRead, limit)
	if from >= uint64(len(f.blocks)) {
		return nil, nil
	}
	end := min(from+uint64(limit), uint64(len(f.blocks)))
	return append([]*chain.Block(nil), f.blocks[from:end]...), nil
}

func (f *fakeChain) hashes() []chain.Hash {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]chain.Hash, len(f.blocks))
	for i, b := range f.blocks {
		out[i] = b.Hash()
	}
	return out
}

// syncBuffer is shared with the other packages' tests.
type syncBuffer = testutil.SyncBuffer

func startNode(tb testing.TB, h Handler, logs *syncBuffer, peers ...*Node) *Node {
	tb.Helper()
	cfg := Config{ListenHost: "127.0.0.1", ChainID: "test"}
	var w io.Writer = logs
	if logs == nil {
		w = io.Discard
	}
	if os.Getenv("P2P_DEBUG") != "" {
		w = io.MultiWriter(w, os.Stderr)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, p := range peers {
		cfg.Peers = append(cfg.Peers, p.Addrs()...)
	}
	n, err := New(context.Background(), cfg, h)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	testutil.WaitFor(tb, timeout, what, cond)
}

func hasPeer(n *Node, id string) bool {
	for _, p := range n.Peers() {
		if p.ID == id {
			return true
		}
	}
	return false
}

func tx(amount uint64) chain.Transaction {
	t := chain.Transaction{
		Type: chain.TxTransfer, ChainID: "test", From: "a", To: "b",
		Amount: amount, Fee: 1, Nonce: amount, PublicKey: chain.PublicKey{1}, Signature: chain.Signature{2},
	}
	t.CacheID() // as a decoded one has it, so round trips compare equal
	return t
}

// validateTxMessage runs a tx message through the tx router's two
// validators as gossipsub does: admitTxMessage inline (a rejection ends
// it), then validateTxs; an Ignore from either is the result.
func (n *Node) validateTxMessage(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	first := n.admitTxMessage(ctx, from, msg)
	if first == pubsub.ValidationReject {
		return first
	}
	if r := n.validateTxs(ctx, from, msg); r != pubsub.ValidationAccept {
		return r
	}
	return first
}
