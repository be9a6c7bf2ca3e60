package chainmgr

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/store"
)

// TestNodeFinalNeverGoesDown: a node final at b2 switches to a branch that
// holds b2 but whose own votes prove only b1 final (a vote b1 → b3, which
// finalizes nothing). The node's final checkpoint stays b2 (snapshot, fork
// choice, no lower finalized event), the record is the branch's, and a
// branch forking below b2, which the record alone would let through, is
// refused with conflicts_with_final: at once, and after a restart (the
// store kept the final checkpoint the new main chain's record lacks).
func TestNodeFinalNeverGoesDown(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "live", true: "after a restart"}[restart], func(t *testing.T) {
			g, kc, gen, vote := voteKit(t)
			b1 := voteBlock(t, kc)
			early := kc.Fork()                           // at b1: a branch without b2
			b2 := voteBlock(t, kc, vote(gen, cp(b1)))    // justifies 1
			b3 := voteBlock(t, kc, vote(cp(b1), cp(b2))) // justifies 2, finalizes 1
			fork := kc.Fork()                            // at b3: holds b2
			b4 := voteBlock(t, kc, vote(cp(b2), cp(b3))) // justifies 3, finalizes 2
			c4 := voteBlock(t, fork, vote(cp(b1), cp(b3)))
			c5 := voteBlock(t, fork)
			d2 := voteBlock(t, early)
			if f := fork.State.Finality(); f.Justified != cp(b3) || f.Finalized != cp(b1) {
				t.Fatalf("the branch's record: justified %s final %s, want %s %s", f.Justified, f.Finalized, cp(b3), cp(b1))
			}

			path := filepath.Join(t.TempDir(), "chain.db")
			nowMs := max(c5.Timestamp, b4.Timestamp, d2.Timestamp) + 1000
			open := func() *Manager {
				t.Helper()
				st, err := store.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Init(g); err != nil {
					t.Fatal(err)
				}
				m, err := New(Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.UnixMilli(nowMs) }})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			m := open()
			evs, cancel := m.SubscribeFinality()
			defer cancel()
			for _, b := range []*chain.Block{b1, b2, b3, b4} {
				if err := m.ProcessBlock(b); err != nil {
					t.Fatalf("block %d: %v", b.Height, err)
				}
			}
			if f := m.Snapshot().Final(); f != cp(b2) {
				t.Fatalf("final %s on the first branch, want %s", f, cp(b2))
			}
			for _, b := range []*chain.Block{c4, c5} {
				if err := m.ProcessBlock(b); err != nil && !errors.Is(err, ErrSideBlock) {
					t.Fatalf("branch block %d: %v", b.Height, err)
				}
			}
			snap := m.Snapshot()
			if snap.HeadHash() != c5.Hash() {
				t.Fatalf("head %d %s, want the branch's tip", snap.Height(), snap.HeadHash())
			}
			if rec := snap.Finality(); rec.Finalized != cp(b1) {
				t.Fatalf("the record after the switch says final %s, want the branch's %s", rec.Finalized, cp(b1))
			}
			if f := snap.Final(); f != cp(b2) {
				t.Fatalf("the node's final %s after the switch, want %s kept", f, cp(b2))
			}
			if !snap.IsFinal(2) || snap.IsFinal(3) {
				t.Fatalf("IsFinal(2) %v, IsFinal(3) %v: want final up to 2", snap.IsFinal(2), snap.IsFinal(3))
			}
			var finalized []chain.Checkpoint
			for drained := false; !drained; {
				select {
				case ev := <-evs:
					if ev.Type == rpc.EventFinalized {
						finalized = append(finalized, ev.Checkpoint)
					}
				default:
					drained = true
				}
			}
			if len(finalized) != 2 || finalized[0] != cp(b1) || finalized[1] != cp(b2) {
				t.Fatalf("finalized events %v, want %s then %s and nothing lower", finalized, cp(b1), cp(b2))
			}
			if restart {
				cancel()
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
				m = open()
				if rec := m.Snapshot().Finality(); rec.Finalized != cp(b1) {
					t.Fatalf("the stored record says final %s, want the branch's %s", rec.Finalized, cp(b1))
				}
				if f := m.Snapshot().Final(); f != cp(b2) {
					t.Fatalf("final %s after the restart, want %s", f, cp(b2))
				}
			}
			defer m.Close()
			if v, ok := m.fc.(*V3); !ok {
				t.Fatalf("fork choice %T, want the default V3", m.fc)
			} else if v.Final() != cp(b2) {
				t.Fatalf("fork choice's final %s, want %s", v.Final(), cp(b2))
			}
			err := m.ProcessBlock(d2)
			if chain.CodeOf(err) != ErrConflictsWithFinal.Code || !IsPeerFault(err) {
				t.Fatalf("a block off b1 (without the final b2): %v, want conflicts_with_final", err)
			}
			if m.Snapshot().HeadHash() != c5.Hash() {
				t.Fatal("the head moved")
			}
		})
	}
}

// TestNodeFinalStoredRecord: the stored final checkpoint is read back as
// written and raised by a higher record, never lowered (by the record or
// later); keep stores it only when the record is lower; and a stored
// checkpoint that does not decode stops New (a corrupt store).
func TestNodeFinalStoredRecord(t *testing.T) {
	tc := newTestChain(t)
	a := tc.chainOf(tc.m.Head(), 3, 10)
	mustImport(t, tc.m, a)
	one := chain.Checkpoint{Height: 1, Hash: a[0].Hash()}
	two := chain.Checkpoint{Height: 2, Hash: a[1].Hash()}
	five := chain.Checkpoint{Height: 5, Hash: chain.Hash{5}}
	cases := []struct {
		name   string
		stored chain.Checkpoint // the store's record (zero: as none)
		rec    chain.Checkpoint // the loaded state's final checkpoint
		want   chain.Checkpoint
	}{
		{"nothing stored: the record", chain.Checkpoint{}, two, two},
		{"stored above the record: kept", five, two, five},
		{"record above the stored: raised", one, two, two},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := tc.m.st.PutMeta(metaFinal, encodeFinal(c.stored)); err != nil {
				t.Fatal(err)
			}
			f, err := loadNodeFinal(tc.m.st, c.rec)
			if err != nil {
				t.Fatal(err)
			}
			if f.cp != c.want {
				t.Fatalf("final %v, want %v", f.cp, c.want)
			}
			if f.raise(one) || f.cp != c.want {
				t.Fatalf("lowered to %v", f.cp)
			}
			// A commit leaving the record at genesis: stored if not yet.
			if err := f.keep(chain.Checkpoint{Hash: chain.Hash{7}}); err != nil {
				t.Fatal(err)
			}
			v, err := tc.m.st.Meta(metaFinal)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := decodeFinal(v); err != nil || got != c.want {
				t.Fatalf("stored %v (%v), want %v", got, err, c.want)
			}
		})
	}
	if err := tc.m.st.PutMeta(metaFinal, []byte{9, 9}); err != nil {
		t.Fatal(err)
	}
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(tc.dir, "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = New(Config{Genesis: tc.g, Store: st})
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), metaFinal) {
		t.Fatalf("New on a corrupt final checkpoint: %v, want store.ErrCorrupt naming %q", err, metaFinal)
	}
}
