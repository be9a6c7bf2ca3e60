package store

import (
	"testing"

	"github.com/poslab/posd/chain"
)

// transferBlocks builds n chained blocks of perBlock transfers from distinct
// senders to distinct recipients, applied in memory; states[i] is the state
// after blocks[i].
func transferBlocks(tb testing.TB, f *fixture, n, perBlock int) (blocks []*chain.Block, undos []*chain.Undo, states []*chain.State) {
	tb.Helper()
	st := f.g.State()
	parent := &f.g.Block().Header
	for i := range n {
		txs := make([]chain.Transaction, perBlock)
		for j := range txs {
			to := addrOf(key(10_000 + j))
			txs[j] = f.tx(chain.TxTransfer, f.users[j], to, 1+uint64(i), 1, uint64(i)+1)
		}
		b, u := f.next(tb, parent, st, 2000, txs...)
		blocks, undos, states = append(blocks, b), append(undos, u), append(states, st.Clone())
		parent = &b.Header
	}
	return blocks, undos, states
}

// BenchmarkCommit1000Transfers commits blocks of 1000 transfers (about 2000
// touched accounts and 1000 index entries each), fsync included.
func BenchmarkCommit1000Transfers(b *testing.B) {
	const perBlock = 1000
	f := newFixture(perBlock)
	s, _ := openTemp(b)
	mustInit(b, s, f.g)
	blocks, undos, states := transferBlocks(b, f, b.N, perBlock)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Commit(blocks[i], undos[i], states[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// BenchmarkBlockByHeight reads random main-chain blocks of 100 transfers.
func BenchmarkBlockByHeight(b *testing.B) {
	const n, perBlock = 64, 100
	f := newFixture(perBlock)
	s, _ := openTemp(b)
	mustInit(b, s, f.g)
	blocks, undos, states := transferBlocks(b, f, n, perBlock)
	for i := range blocks {
		if err := s.Commit(blocks[i], undos[i], states[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := uint64(i*37)%n + 1
		blk, err := s.BlockByHeight(h)
		if err != nil || blk.Height != h {
			b.Fatal(err)
		}
	}
}
