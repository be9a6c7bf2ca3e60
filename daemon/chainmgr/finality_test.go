package chainmgr

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/internal/testkit"
)

// voteKit is a chain with one staker (testkit.KeyN(1)) for finality
// tests: its genesis, the chain, the genesis checkpoint (justified from
// the start), and the staker's vote for a link, signed.
func voteKit(t *testing.T) (*chain.Genesis, *testkit.Chain, chain.Checkpoint, func(src, tgt chain.Checkpoint) chain.Vote) {
	k := testkit.KeyN(1)
	g := testkit.Genesis([]chain.Allocation{testkit.Fund(k, 100, 1)})
	kc := testkit.NewChain(t, g)
	vote := func(src, tgt chain.Checkpoint) chain.Vote {
		v := chain.Vote{Source: src, Target: tgt}
		v.Sign(g.ChainID, k.Priv)
		return v
	}
	return g, kc, kc.State.Finality().Justified, vote
}

// cp is block b's checkpoint.
func cp(b *chain.Block) chain.Checkpoint { return chain.Checkpoint{Height: b.Height, Hash: b.Hash()} }

// voteBlock forges the kit chain's next block at rank 0 carrying votes,
// signed again by its forger, and accepts it.
func voteBlock(t *testing.T, c *testkit.Chain, votes ...chain.Vote) *chain.Block {
	t.Helper()
	b := c.Forge(0)
	if len(votes) > 0 {
		b.SetVotes(votes)
		k, ok := testkit.KeyOf(b.Forger)
		if !ok {
			t.Fatalf("no key for forger %s", b.Forger)
		}
		b.Header.Sign(k.Priv)
	}
	c.Accept(b)
	return b
}

// TestFinalityInSnapshotEventsAndRestart: the snapshot carries the
// chain's finality record; each move of justified or finalized is one
// event, in order; and a manager reopened on the same store has the same
// record (rebuilt from the chain when the store does not keep it).
func TestFinalityInSnapshotEventsAndRestart(t *testing.T) {
	g, kc, gen, vote := voteKit(t)
	b1 := voteBlock(t, kc)
	b2 := voteBlock(t, kc, vote(gen, cp(b1)))    // justifies 1
	b3 := voteBlock(t, kc, vote(cp(b1), cp(b2))) // justifies 2, finalizes 1
	_ = voteBlock(t, kc, vote(cp(b2), cp(b3)))   // justifies 3, finalizes 2
	path := filepath.Join(t.TempDir(), "chain.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		t.Fatal(err)
	}
	nowMs := kc.Tip().Timestamp + 1000 // a fixed clock past the kit's blocks
	now := func() time.Time { return time.UnixMilli(nowMs) }
	m, err := New(Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	evs, cancel := m.SubscribeFinality()
	defer cancel()
	for _, b := range kc.Blocks[1:] {
		if err := m.ProcessBlock(b); err != nil {
			t.Fatalf("block %d: %v", b.Height, err)
		}
	}
	want := []rpc.FinalityEvent{
		{Type: rpc.EventJustified, Checkpoint: cp(b1)},
		{Type: rpc.EventJustified, Checkpoint: cp(b2)},
		{Type: rpc.EventFinalized, Checkpoint: cp(b1)},
		{Type: rpc.EventJustified, Checkpoint: cp(b3)},
		{Type: rpc.EventFinalized, Checkpoint: cp(b2)},
	}
	for i, w := range want {
		select {
		case ev := <-evs:
			if ev.Type != w.Type || ev.Checkpoint != w.Checkpoint || ev.Time != now().UnixMilli() {
				t.Fatalf("event %d: %+v, want %s %s", i, ev, w.Type, w.Checkpoint)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d (%s %s) never came", i, w.Type, w.Checkpoint)
		}
	}
	select {
	case ev := <-evs:
		t.Fatalf("an extra event: %+v", ev)
	default:
	}
	rec := m.Snapshot().Finality()
	if rec.Justified != cp(b3) || rec.Finalized != cp(b2) || !rec.Equal(kc.State.Finality()) {
		t.Fatalf("snapshot record: justified %s finalized %s, want the chain's", rec.Justified, rec.Finalized)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-evs; ok {
		t.Fatal("finality events still open after Close")
	}
	st, err = store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := New(Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !m2.Snapshot().Finality().Equal(rec) {
		t.Fatal("the record after a restart differs from the one before")
	}
	// The chain goes on after the restart: a block with a vote is taken.
	b5 := voteBlock(t, kc, vote(cp(b3), cp(kc.Blocks[4])))
	if err := m2.ProcessBlock(b5); err != nil {
		t.Fatalf("a block with votes after the restart: %v", err)
	}
	if f := m2.Snapshot().Finality().Finalized; f != cp(b3) {
		t.Fatalf("finalized %s after the restart's first block, want %s", f, cp(b3))
	}
}

// TestFinalityRecordAcrossReorg: a reorg reverts the record with the
// blocks (the record before each reverted block comes back, whether the
// store kept it, the manager remembered it, or it is rebuilt after a
// restart), so the new branch's votes count on the new branch's record.
func TestFinalityRecordAcrossReorg(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "remembered", true: "after a restart"}[restart], func(t *testing.T) {
			g, kc, gen, vote := voteKit(t)
			b1 := voteBlock(t, kc)
			fork := kc.Fork()
			b2 := voteBlock(t, kc, vote(gen, cp(b1))) // main: justifies 1
			c2 := voteBlock(t, fork)                  // the branch: nothing yet
			c3 := voteBlock(t, fork, vote(gen, cp(c2)))
			c4 := voteBlock(t, fork, vote(cp(c2), cp(c3)))
			path := filepath.Join(t.TempDir(), "chain.db")
			open := func() *Manager {
				st, err := store.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				nowMs := c4.Timestamp + 1000
				m, err := New(Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.UnixMilli(nowMs) }})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			st, err := store.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Init(g); err != nil {
				t.Fatal(err)
			}
			st.Close()
			m := open()
			for _, b := range []*chain.Block{b1, b2} {
				if err := m.ProcessBlock(b); err != nil {
					t.Fatal(err)
				}
			}
			if j := m.Snapshot().Finality().Justified; j != cp(b1) {
				t.Fatalf("justified %s on the main chain, want %s", j, cp(b1))
			}
			if restart {
				m.Close()
				m = open()
			}
			defer m.Close()
			for _, b := range []*chain.Block{c2, c3, c4} {
				if err := m.ProcessBlock(b); err != nil && m.Snapshot().HeadHash() != b.Hash() {
					t.Logf("block %d: %v", b.Height, err) // a side block until the branch wins
				}
			}
			snap := m.Snapshot()
			if snap.HeadHash() != c4.Hash() {
				t.Fatalf("head %d %s, want the branch's %s", snap.Height(), snap.HeadHash(), c4.Hash())
			}
			if rec := snap.Finality(); !rec.Equal(fork.State.Finality()) || rec.Justified != cp(c3) || rec.Finalized != cp(c2) {
				t.Fatalf("record after the reorg: justified %s finalized %s, want the branch's %s %s", rec.Justified, rec.Finalized, cp(c3), cp(c2))
			}
		})
	}
}
