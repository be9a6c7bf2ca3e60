package chainmgr

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// newRichChain is a test chain whose forger stakes 100 and whose rich
// account can pay for thousands of transfers.
func newRichChain(t *testing.T) *testChain {
	t.Helper()
	forger, _ := keystore.Generate()
	rich, _ := keystore.Generate()
	g := chain.DefaultGenesis()
	g.ChainID = "chainmgr-test"
	g.Timestamp = time.Now().Add(-time.Hour).UnixMilli()
	g.Allocations = []chain.Allocation{
		{Address: forger.Address(), Balance: 1000, Stake: 100},
		{Address: rich.Address(), Balance: 1 << 40},
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	tc := &testChain{t: t, dir: t.TempDir(), g: g, forger: forger, rich: rich}
	tc.open(nil)
	return tc
}

func (tc *testChain) dbSize() int64 {
	tc.t.Helper()
	fi, err := os.Stat(filepath.Join(tc.dir, "chain.db"))
	if err != nil {
		tc.t.Fatal(err)
	}
	return fi.Size()
}

// TestSlotVariantsBounded: the staker of a slot signs 150 valid variants
// of its block at head−1, each of 2,000 transactions (the same ones,
// timestamps differing). One of them is stored beside the main chain's
// block, which is proof enough; the others only feed the evidence pool,
// which records the equivocation once. chain.db grows by less than 30 MB
// (without the caps: about 75 MB). Once the forger is slashed, further
// variants store nothing and record nothing.
func TestSlotVariantsBounded(t *testing.T) {
	tc := newRichChain(t)
	m := tc.m
	txs := make([]chain.Transaction, 2000)
	for i := range txs {
		txs[i] = tc.transfer(tc.rich, 1, uint64(i+1))
	}
	g0 := m.Head()
	b1 := tc.block(tc.forger, g0, 10, txs...)
	mustImport(t, m, []*chain.Block{b1})
	b2 := tc.block(tc.forger, b1, 10)
	mustImport(t, m, []*chain.Block{b2})
	before := tc.dbSize()

	evs, cancel := m.EvidencePool().Subscribe(256)
	defer cancel()
	start := time.Now()
	for i := range 150 {
		v := tc.block(tc.forger, g0, int64(11+i), txs...)
		err := m.ProcessBlock(v)
		if !errors.Is(err, ErrSideBlock) {
			t.Fatalf("variant %d: %v, want a side block", i, err)
		}
		if IsPeerFault(err) {
			t.Fatalf("variant %d held against its sender: %v", i, err)
		}
	}
	took := time.Since(start)
	grown := tc.dbSize() - before
	stored, bytes := m.ix.sideStats()
	t.Logf("150 variants of 2,000 transactions: chain.db +%.1f MB, %d stored (%d bytes), %s", float64(grown)/(1<<20), stored, bytes, took.Round(time.Millisecond))
	if grown >= 30<<20 {
		t.Fatalf("chain.db grew by %d MB", grown>>20)
	}
	if stored != 1 {
		t.Fatalf("%d variants stored, want 1 (with the main chain's block: two headers, the proof)", stored)
	}
	recs := m.EvidencePool().Records()
	if len(recs) != 1 || recs[0].Evidence.Forger() != tc.forger.Address() || recs[0].Evidence.Height() != 1 {
		t.Fatalf("evidence records %+v, want one for height 1", recs)
	}
	if ev := <-evs; ev.Type != "evidence" {
		t.Fatalf("event %q", ev.Type)
	}
	select {
	case ev := <-evs:
		t.Fatalf("a second evidence event: %+v", ev)
	default:
	}

	// Slashed: the next block carries the evidence.
	b3 := chain.NewBlock(tc.g, &b2.Header, 0, b2.Timestamp+10, nil)
	b3.SetEvidence(m.EvidencePool().Pending())
	tc.forger.SignHeader(&b3.Header)
	mustImport(t, m, []*chain.Block{b3})
	if s, ok := m.Snapshot().Slashed(tc.forger.Address(), 1); !ok || s.Burned == 0 {
		t.Fatalf("not slashed: %+v %v", s, ok)
	}
	<-evs // the slashing
	before = tc.dbSize()
	for i := range 20 {
		v := tc.block(tc.forger, g0, int64(500+i), txs...)
		if err := m.ProcessBlock(v); !errors.Is(err, ErrSideBlock) {
			t.Fatalf("variant after the slashing: %v", err)
		}
	}
	if n, _ := m.ix.sideStats(); n != 1 {
		t.Fatalf("variants after the slashing stored: %d side blocks", n)
	}
	if grown := tc.dbSize() - before; grown > 1<<20 {
		t.Fatalf("chain.db grew by %d bytes after the slashing", grown)
	}
	if recs := m.EvidencePool().Records(); len(recs) != 1 {
		t.Fatalf("%d evidence records after more variants, want 1", len(recs))
	}
	select {
	case ev := <-evs:
		t.Fatalf("evidence event after the slashing: %+v", ev)
	default:
	}
	// The caps survive a restart: the stored side block is counted again.
	tc.restart()
	if n, _ := tc.m.ix.sideStats(); n != 1 {
		t.Fatalf("side blocks counted after a restart: %d", n)
	}
}

// TestSideCaps: side blocks are refused (not stored, nobody's fault) past
// each cap; pruning gives the room back; a block whose branch wins is
// never refused.
func TestSideCaps(t *testing.T) {
	cases := []struct {
		name string
		caps sideCaps
		want int // side blocks stored of the 4 offered
	}{
		{"per slot", sideCaps{perSlot: 1, perForger: 100, bytes: 1 << 30}, 4}, // 4 slots, one each
		{"per forger", sideCaps{perSlot: 2, perForger: 3, bytes: 1 << 30}, 3},
		{"bytes", sideCaps{perSlot: 2, perForger: 100, bytes: -1}, 2}, // room for 2.5 blocks
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := newStakedChain(t)
			m := tc.m
			main := tc.chainOf(m.Head(), 6, 10)
			if c.caps.bytes < 0 {
				c.caps.bytes = int64(len(chain.EncodeBlock(main[0]))) * 5 / 2
			}
			m.caps = c.caps
			mustImport(t, m, main)
			stored := 0
			for i := range 4 {
				// One side block per slot, on main[i], below the head.
				side := tc.block(tc.forger, main[i], 11)
				err := m.ProcessBlock(side)
				switch {
				case errors.Is(err, ErrSideBlock) && tc.stored(side.Hash()):
					stored++
				case errors.Is(err, ErrSideBlock) && !IsPeerFault(err):
				default:
					t.Fatalf("side block %d: %v", i, err)
				}
			}
			if stored != c.want {
				t.Fatalf("stored %d side blocks, want %d", stored, c.want)
			}
			if n, _ := m.ix.sideStats(); n != c.want {
				t.Fatalf("counted %d side blocks, want %d", n, c.want)
			}
			// A branch that wins the fork choice is never capped.
			branch := tc.chainOf(main[4], 3, 12)
			mustImport(t, m, branch)
			if m.Head().Hash() != branch[2].Hash() {
				t.Fatal("a longer branch did not win under the caps")
			}
		})
	}
	// A second variant of one slot is refused at once when the slot is full.
	tc := newStakedChain(t)
	tc.m.caps = sideCaps{perSlot: 1, perForger: 100, bytes: 1 << 30}
	main := tc.chainOf(tc.m.Head(), 3, 10)
	mustImport(t, tc.m, main)
	for i := range 3 {
		v := tc.block(tc.forger, main[0], int64(20+i))
		if err := tc.m.ProcessBlock(v); !errors.Is(err, ErrSideBlock) {
			t.Fatalf("variant %d: %v", i, err)
		}
	}
	if n, _ := tc.m.ix.sideStats(); n != 1 {
		t.Fatalf("%d variants of one slot stored, cap 1", n)
	}
	// Pruning below the reorg limit frees the room.
	mustImport(t, tc.m, tc.chainOf(tc.m.Head(), MaxReorgDepth+pruneEvery+2, 1))
	if n, bytes := tc.m.ix.sideStats(); n != 0 || bytes != 0 {
		t.Fatalf("after pruning: %d side blocks, %d bytes counted", n, bytes)
	}
}

// TestCheapChecksFirst: whatever a block's transactions hold, a block on
// an unknown parent is refused as such, a block on a known parent by a
// forger not elected there as wrong_forger, and one whose header does not
// verify as bad_block_signature, before a transaction's signature is
// checked (a bad one would say bad_signature).
func TestCheapChecksFirst(t *testing.T) {
	tc := newTestChain(t)
	main := tc.chainOf(tc.m.Head(), 3, 10)
	mustImport(t, tc.m, main)
	badTx := tc.transfer(tc.rich, 5, 1)
	badTx.Amount = 6 // its signature no longer verifies
	stranger, _ := keystore.Generate()

	orphanParent := tc.block(tc.forger, main[0], 99)
	orphan := tc.block(tc.forger, orphanParent, 1, badTx)
	unelected := tc.block(stranger, main[0], 11, badTx)
	badHeader := tc.block(tc.forger, main[0], 12, badTx)
	badHeader.Timestamp++ // the header signature no longer verifies
	elected := tc.block(tc.forger, main[0], 13, badTx)
	cases := []struct {
		name string
		b    *chain.Block
		want error
		code chain.ErrorCode
	}{
		{"unknown parent", orphan, ErrUnknownParent, ""},
		{"not elected on a side parent", unelected, nil, chain.ErrWrongForger.Code},
		{"bad header signature", badHeader, nil, chain.ErrBadBlockSig.Code},
		{"elected, bad transaction", elected, nil, chain.ErrBadSignature.Code},
	}
	for _, c := range cases {
		err := tc.m.ProcessBlock(c.b)
		if c.want != nil && !errors.Is(err, c.want) || c.code != "" && chain.CodeOf(err) != c.code {
			t.Errorf("%s: %v, want %v%s", c.name, err, c.want, c.code)
		}
		if tc.stored(c.b.Hash()) {
			t.Errorf("%s: stored", c.name)
		}
	}
	// What gossip asks to judge the peer that sent the orphan.
	if !tc.m.HasBlock(main[0].Hash()) || tc.m.HasBlock(orphanParent.Hash()) {
		t.Fatal("HasBlock: a stored block unknown, or an unknown one known")
	}
	// The same through sync's path: nothing past the unknown parent.
	if n, err := tc.m.ProcessBlocks([]*chain.Block{orphan}); n != 0 || !errors.Is(err, ErrUnknownParent) {
		t.Fatalf("sync of an orphan: %d, %v", n, err)
	}
}

// TestSyncedBranchesUncapped: with every side cap full, a better branch
// that sync hands over in several batches is taken: one that forks deeper
// than a batch (each batch but the last ends at or below the head), and
// one of the head's height that wins the fork choice's tie-break (its
// tip is never higher than the head). Each batch is stored whole; the
// caps still refuse a gossiped side block.
func TestSyncedBranchesUncapped(t *testing.T) {
	full := sideCaps{perSlot: 0, perForger: 0, bytes: 0} // nothing fits
	batches := func(t *testing.T, m *Manager, branch []*chain.Block, size int) {
		t.Helper()
		for i := 0; i < len(branch); i += size {
			mustImport(t, m, branch[i:min(i+size, len(branch))])
		}
	}
	t.Run("deeper than a batch", func(t *testing.T) {
		tc := newStakedChain(t)
		m := tc.m
		g0 := m.Head()
		mustImport(t, m, tc.chainOf(g0, 6, 10))
		m.caps = full
		branch := tc.chainOf(g0, 8, 11)
		batches(t, m, branch, 2)
		if m.Head().Hash() != branch[7].Hash() {
			t.Fatalf("head %d %s, want the longer branch's tip", m.Head().Height, m.Head().Hash())
		}
		// Gossip is still capped.
		if err := m.ProcessBlock(tc.block(tc.forger, branch[2], 30)); !errors.Is(err, ErrSideBlock) || !strings.Contains(err.Error(), "not stored") {
			t.Fatalf("a gossiped side block under full caps: %v", err)
		}
	})
	t.Run("same height, wins the tie-break", func(t *testing.T) {
		tc := newStakedChain(t)
		m := tc.m
		g0 := m.Head()
		// Ranks are equal (one staker): the first blocks' hashes decide.
		a, b := tc.chainOf(g0, 5, 10), tc.chainOf(g0, 5, 11)
		ah, bh := a[0].Hash(), b[0].Hash()
		main, branch := a, b
		if bytes.Compare(ah[:], bh[:]) < 0 {
			main, branch = b, a
		}
		mustImport(t, m, main)
		m.caps = full
		batches(t, m, branch, 2)
		if m.Head().Hash() != branch[4].Hash() {
			t.Fatalf("head %s, want the winning branch's tip %s", m.Head().Hash(), branch[4].Hash())
		}
	})
}
