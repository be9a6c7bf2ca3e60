package mempool

import (
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// benchSetup (benchmarks and tests alike) signs senders×per transfers (nonces 1..per each) on a genesis
// that funds every sender, returning them interleaved by nonce.
func benchSetup(tb testing.TB, senders, per int) (*chain.Genesis, *chain.State, []chain.Transaction) {
	tb.Helper()
	g := testGenesis()
	g.Allocations = nil
	keys := make([]testkit.Key, senders)
	for i := range keys {
		keys[i] = testkit.KeyN(1000 + i)
		g.Allocations = append(g.Allocations, testkit.Fund(keys[i], 1<<40, 1))
	}
	txs := make([]chain.Transaction, 0, senders*per)
	for n := 1; n <= per; n++ {
		for _, k := range keys {
			txs = append(txs, testkit.Transfer(k, keys[0].Addr, 10, 1, uint64(n)))
		}
	}
	return g, g.State(), txs
}

// BenchmarkAddBatch1000 admits 1000 fresh transactions (250 senders × 4
// nonces) into an empty pool, signatures verified in parallel.
func BenchmarkAddBatch1000(b *testing.B) {
	g, st, txs := benchSetup(b, 250, 4)
	n := 0
	for b.Loop() {
		p := New(g, Config{}) // empty signature cache: every signature is verified
		for _, err := range p.AddBatch(txs, st) {
			if err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	b.ReportMetric(float64(n*len(txs))/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkPending10k selects a full block from a pool of 10,000 executable
// transactions (2,000 senders × 5 nonces).
func BenchmarkPending10k(b *testing.B) {
	g, st, txs := benchSetup(b, 2000, 5)
	p := New(g, Config{})
	for _, err := range p.AddBatch(txs, st) {
		if err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for b.Loop() {
		if got := p.Pending(10000, st); len(got) != len(txs) {
			b.Fatalf("Pending = %d, want %d", len(got), len(txs))
		}
		n++
	}
	b.ReportMetric(float64(n*len(txs))/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkScreenUnfunded4096 admits a gossip-sized batch of 4,096
// transfers from unfunded keys (the A7 flood): the state screen refuses
// them before any signature check.
func BenchmarkScreenUnfunded4096(b *testing.B) {
	g, _, txs := benchSetup(b, 64, 64) // funded in g, but screened against an empty state
	st := chain.NewState()
	p := New(g, Config{})
	n := 0
	for b.Loop() {
		for _, err := range p.AddBatch(txs, st) {
			if err == nil {
				b.Fatal("an unfunded transaction was admitted")
			}
		}
		n++
	}
	b.ReportMetric(float64(n*len(txs))/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkAddGappedFullQueue offers 4,096 gapped transactions to a pool
// whose queue is full: each is verified, then refused (queue_full).
func BenchmarkAddGappedFullQueue(b *testing.B) {
	g, st, txs := benchSetup(b, 64, 70)
	p := New(g, Config{Limit: 400, GlobalQueue: 100})
	var gapped []chain.Transaction
	for _, tx := range txs {
		if tx.Nonce >= 3 {
			gapped = append(gapped, tx)
		}
	}
	gapped = gapped[:4096]
	p.AddBatch(gapped, st)
	n := 0
	for b.Loop() {
		p.AddBatch(gapped, st)
		n++
	}
	b.ReportMetric(float64(n*len(gapped))/b.Elapsed().Seconds(), "tx/s")
}

// trustAll is a SigVerifier that finds every signature good: benchmarks of
// the pool's own bookkeeping.
type trustAll struct{}

func (trustAll) VerifyTxs([]chain.Transaction, []error) {}

// BenchmarkAddBatchDeepSenders admits a batch of 500 (25 senders × 20
// nonces) into a pool already holding each sender's 1,000 earlier nonces,
// as a loaded devnet's pools do; signatures are not checked, so this is
// the pool's bookkeeping alone.
func BenchmarkAddBatchDeepSenders(b *testing.B) {
	const senders, deep, more = 25, 1000, 20
	g, st, txs := benchSetup(b, senders, deep+more)
	before, batch := txs[:senders*deep], txs[senders*deep:]
	p := New(g, Config{Sigs: trustAll{}})
	for _, err := range p.AddBatch(before, st) {
		if err != nil {
			b.Fatal(err)
		}
	}
	ids := make([]chain.Hash, len(batch))
	for i := range batch {
		ids[i] = batch[i].ID()
	}
	n := 0
	for b.Loop() {
		for _, err := range p.AddBatch(batch, st) {
			if err != nil {
				b.Fatal(err)
			}
		}
		p.Remove(ids...) // the senders' newest nonces: the pool is as before
		n++
	}
	b.ReportMetric(float64(n*len(batch))/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkAddBatchKnown1000 admits a batch of 1000 transactions the pool
// already holds: what gossip's copies of a transaction cost a node.
func BenchmarkAddBatchKnown1000(b *testing.B) {
	g, st, txs := benchSetup(b, 250, 4)
	p := New(g, Config{})
	for _, err := range p.AddBatch(txs, st) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		for _, err := range p.AddBatch(txs, st) {
			if chain.CodeOf(err) != ErrAlreadyKnown.Code {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(txs))/b.Elapsed().Seconds(), "tx/s")
}
