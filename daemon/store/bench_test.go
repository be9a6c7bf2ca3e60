package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// fillAccounts writes n filler accounts straight into the accounts bucket
// (the stored state after the head), in key order and one transaction: a
// big state without a million signed transactions. Their addresses are
// returned in a scattered order, so consecutive picks land on unrelated
// pages.
func fillAccounts(tb testing.TB, s *Store, n int) []chain.Address {
	tb.Helper()
	addrs := make([]chain.Address, n)
	for i := range addrs {
		h := sha256.Sum256(fmt.Appendf(nil, "filler %d", i))
		addrs[i] = chain.Address(hex.EncodeToString(h[:20]))
	}
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	const chunk = 200_000
	for len(sorted) > 0 {
		part := sorted[:min(chunk, len(sorted))]
		sorted = sorted[len(part):]
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketAccounts)
			for i, a := range part {
				if err := b.Put([]byte(a), encodeAccount(chain.Account{Balance: 1 + uint64(i%1000)})); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return addrs
}

// foldAll folds every pending diff into the base and returns the longest
// time between the start of a Compact and its first chunk's commit, or
// between two chunks' commits: the longest a fold can hold the writer
// lock (a commit waits for it), the plan's read included.
func foldAll(tb testing.TB, s *Store) (longest time.Duration) {
	tb.Helper()
	s.bg.Wait() // a background fold started by the last commits
	var last time.Time
	testHookChunk = func() {
		longest = max(longest, time.Since(last))
		last = time.Now()
	}
	defer func() { testHookChunk = nil }()
	for {
		h, _, _ := s.HeadInfo()
		last = time.Now()
		base, err := s.Compact(maxFold)
		if err != nil {
			tb.Fatal(err)
		}
		longest = max(longest, time.Since(last))
		if base == h {
			return longest
		}
	}
}

// BenchmarkCommitOnStateSize is the store's share of a block's commit on
// stored states of 10^3, 10^5 and 10^6 accounts: an empty block, and a
// block of 1000 transfers from 500 senders to 500 accounts spread over
// the state (1000 touched accounts at every size), fsync included, and
// the fold of the 1000-tx blocks' diffs into the base (diff.go). The
// per-block cost should follow what the block changed, not the number of
// accounts. A background fold starts at compactAfter (512) pending
// blocks, so runs of 1024 blocks or more hold the folds a node's blocks
// pay for; short runs fold only at the end:
//
//	go test -run '^$' -bench 'CommitOnStateSize/accounts=(1000|1000000)$/commit=1000tx' -benchtime 1024x ./daemon/store/
func BenchmarkCommitOnStateSize(outer *testing.B) {
	b := outer
	const perBlock = 1000
	f := newFixture(perBlock)
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		var (
			s      *Store
			bulk   []chain.Address
			st     *chain.State
			parent *chain.Header
			round  uint64
		)
		setup := func(b *testing.B) {
			if s != nil {
				return
			}
			// Opened on the outer benchmark: it lives across the runs
			// of a size's cases.
			s, _ = openTemp(outer)
			mustInit(b, s, f.g)
			bulk = fillAccounts(b, s, max(0, n-len(f.g.Allocations)))
			st = f.g.State()
			parent = &f.g.Block().Header
		}
		// commit applies the next block of txs in memory (untimed) and
		// commits it (timed).
		// slowest is the longest commit of the run: one that waited for
		// a background fold's writer lock shows it.
		var slowest time.Duration
		commit := func(b *testing.B, txs []chain.Transaction) {
			b.StopTimer()
			blk, u := f.next(b, parent, st, 2000, txs...)
			parent = &blk.Header
			b.StartTimer()
			start := time.Now()
			if err := s.Commit(blk, u, st); err != nil {
				b.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
		}
		b.Run(fmt.Sprintf("accounts=%d/commit=empty", n), func(b *testing.B) {
			setup(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				commit(b, nil)
			}
		})
		b.Run(fmt.Sprintf("accounts=%d/commit=1000tx", n), func(b *testing.B) {
			setup(b)
			rounds := make([][]chain.Transaction, b.N)
			for i := range rounds {
				round++
				// Every size touches 1,000 accounts a block: 500 senders,
				// two transfers each, to 500 others: on the smallest state
				// the other half of the genesis accounts, on the others
				// accounts all over the stored state. (Until 2026-12-07 the
				// smallest state's senders paid each other, 1,000 accounts
				// touched against 2,000 on the others.)
				const senders = perBlock / 2
				txs := make([]chain.Transaction, perBlock)
				for j := range txs {
					s := j % senders
					to := addrOf(f.users[senders+s])
					if len(bulk) > 0 {
						to = bulk[(int(round)*senders+s)*7919%len(bulk)]
					}
					txs[j] = f.tx(chain.TxTransfer, f.users[s], to, 1, 1, 2*round-1+uint64(j/senders))
				}
				rounds[i] = txs
			}
			b.ReportAllocs()
			slowest = 0
			b.ResetTimer()
			for i := range b.N {
				commit(b, rounds[i])
				rounds[i] = nil
			}
			// The folds of the blocks' diffs into the base are part of
			// their cost: those that ran in the background during the
			// loop took the writer lock (a commit waited for them) and
			// the rest is folded here, timed, and also reported alone.
			start := time.Now()
			longest := foldAll(b, s)
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "fold-ms/op")
			// The longest a commit waited, and the longest hold of the
			// writer lock by one chunk of a fold.
			b.ReportMetric(float64(slowest.Microseconds())/1000, "commit-max-ms")
			b.ReportMetric(float64(longest.Microseconds())/1000, "fold-max-ms")
		})
	}
}
