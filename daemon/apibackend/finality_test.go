package apibackend

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/internal/testkit"
	"github.com/poslab/posd/keystore"
)

// finChain is a backend over a chain manager holding n blocks forged by
// the kit's keys 1..3 (stake 1 each); block 1 carries a transfer, and
// block h+1 carries the votes of voters for the newest justified
// checkpoint → h.
func finChain(t *testing.T, n int, voters []testkit.Key) (*Backend, *chainmgr.Manager, chain.Hash) {
	t.Helper()
	keys := testkit.Keys(1, 3)
	var allocs []chain.Allocation
	for _, k := range keys {
		allocs = append(allocs, testkit.Fund(k, 100, 1))
	}
	g := testkit.Genesis(allocs)
	kc := testkit.NewChain(t, g)
	pay := testkit.Transfer(keys[0], keys[1].Addr, 1, 0, 1)
	for h := 1; h <= n; h++ {
		var txs []chain.Transaction
		if h == 1 {
			txs = append(txs, pay)
		}
		b := kc.Forge(0, txs...)
		if h > 1 {
			rec := kc.State.Finality()
			tip := kc.Tip()
			var votes []chain.Vote
			for _, k := range voters {
				v := chain.Vote{Source: rec.Justified, Target: chain.Checkpoint{Height: tip.Height, Hash: tip.Hash()}}
				v.Sign(g.ChainID, k.Priv)
				votes = append(votes, v)
			}
			b.SetVotes(votes)
			fk, _ := testkit.KeyOf(b.Forger)
			b.Header.Sign(fk.Priv)
		}
		kc.Accept(b)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		t.Fatal(err)
	}
	nowMs := kc.Tip().Timestamp + 1000
	m, err := chainmgr.New(chainmgr.Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.UnixMilli(nowMs) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if _, err := m.ProcessBlocks(kc.Blocks[1:]); err != nil {
		t.Fatal(err)
	}
	key, _ := keystore.Generate()
	b := New(Parts{Genesis: g, Key: key, Chain: m, Pool: &fakePool{}, Forger: &fakeForger{size: 1, interval: time.Second}, Log: slog.New(slog.DiscardHandler)})
	return b, m, pay.ID()
}

// TestFinalityAnswers: status, tx info and /v1/finality as the record
// says, when every staker votes and when a third does not.
func TestFinalityAnswers(t *testing.T) {
	keys := testkit.Keys(1, 3)
	t.Run("all vote", func(t *testing.T) {
		b, m, pay := finChain(t, 12, keys)
		st := b.Status()
		if st.JustifiedHeight == nil || *st.JustifiedHeight != 11 || st.FinalizedHeight == nil || *st.FinalizedHeight != 10 || st.FinalityStalled != nil {
			t.Fatalf("status: justified %v finalized %v stalled %+v, want 11, 10, none", st.JustifiedHeight, st.FinalizedHeight, st.FinalityStalled)
		}
		if h, _ := m.HashAt(10); *st.FinalizedHash != h {
			t.Fatalf("finalized hash %s, want block 10's %s", *st.FinalizedHash, h)
		}
		info, err := b.TxInfo(pay)
		if err != nil || !info.Final {
			t.Fatalf("tx info %+v, %v: want the payment of block 1 final", info, err)
		}
		f, err := b.Finality()
		if err != nil {
			t.Fatal(err)
		}
		if f.Head != 12 || f.Stalled != nil || len(f.Checkpoints) != 2 || f.Checkpoints[0].Height != 12 || f.Checkpoints[1].Height != 11 {
			t.Fatalf("finality %+v: want checkpoints 12, 11 (those above the finalized, newest first)", f)
		}
		if c := f.Checkpoints[1]; !c.Justified || c.VotedLots != 3 || c.TotalLots != 3 || c.ThresholdLots != 3 || len(c.Voters) != 3 || len(c.Missing) != 0 || c.Source == nil || c.Source.Height != 10 {
			t.Fatalf("checkpoint 11: %+v", c)
		}
		if c := f.Checkpoints[0]; c.Source != nil || c.VotedLots != 0 || len(c.Missing) != 3 {
			t.Fatalf("checkpoint 12, no vote included yet: %+v", c)
		}
	})
	t.Run("a third silent", func(t *testing.T) {
		b, _, pay := finChain(t, 12, keys[:2])
		st := b.Status()
		if st.JustifiedHeight == nil || *st.JustifiedHeight != 0 || st.FinalizedHeight == nil || *st.FinalizedHeight != 0 {
			t.Fatalf("status: justified %v finalized %v, want genesis 0 for both", st.JustifiedHeight, st.FinalizedHeight)
		}
		s := st.FinalityStalled
		if s == nil || s.Behind != 12 || s.MissingLots != 1 || s.TotalLots != 3 || s.MissingStake != 1 || len(s.Missing) != 1 || s.Missing[0].Address != keys[2].Addr {
			t.Fatalf("stall %+v: want 12 behind, %s missing with 1 of 3 lots", s, keys[2].Addr)
		}
		if info, err := b.TxInfo(pay); err != nil || info.Final {
			t.Fatalf("tx info %+v, %v: want not final", info, err)
		}
		f, _ := b.Finality()
		if len(f.Checkpoints) != rpc.MaxFinalityCheckpoints || f.Stalled == nil || f.Checkpoints[1].VotedLots != 2 {
			t.Fatalf("finality %+v: want %d checkpoints, stalled, 2 lots voted below the head", f, rpc.MaxFinalityCheckpoints)
		}
	})
}

// TestFinalityStallNobodyVotes: on a chain where nobody votes (every node
// --vote=false), the stall names all the stake as missing, not "0 of 0".
func TestFinalityStallNobodyVotes(t *testing.T) {
	b, _, _ := finChain(t, 12, nil)
	s := b.Status().FinalityStalled
	if s == nil || s.MissingLots != 3 || s.TotalLots != 3 || s.MissingPercent != 100 || len(s.Missing) != 3 {
		t.Fatalf("stall %+v: want all 3 lots missing", s)
	}
}
