package daemon

import (
	"crypto/ed25519"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/daemon/votepool"
	"github.com/poslab/posd/daemon/voter"
	"github.com/poslab/posd/internal/testkit"
)

// finUnit is the node's finality part over a chain manager holding a
// chain of n empty blocks forged by the kit's keys 1..4 (stake 1 each).
func finUnit(t *testing.T, n int) (*finality, *chainmgr.Manager, []testkit.Key) {
	t.Helper()
	keys := testkit.Keys(1, 4)
	var allocs []chain.Allocation
	for _, k := range keys {
		allocs = append(allocs, testkit.Fund(k, 100, 1))
	}
	g := testkit.Genesis(allocs)
	kc := testkit.BuildChain(t, g, n)
	st, err := store.Open(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		t.Fatal(err)
	}
	// The kit's blocks are dated at its genesis, long ago: a clock there.
	now := func() time.Time { return time.UnixMilli(kc.Tip().Timestamp + 1000) }
	m, err := chainmgr.New(chainmgr.Config{Genesis: g, Store: st, Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if _, err := m.ProcessBlocks(kc.Blocks[1:]); err != nil {
		t.Fatal(err)
	}
	f := &finality{g: g, chain: m, addr: keys[0].Addr, pool: votepool.New(votepool.Config{ChainID: g.ChainID, VotesOf: func(b *chain.Block) []chain.Vote { return b.Votes }})}
	// This node votes with key 1's stake: finality is on.
	v, err := voter.New(voter.Config{ChainID: g.ChainID, Keys: []ed25519.PrivateKey{keys[0].Priv}, Chain: voterChain{m}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	f.voter = v
	return f, m, keys
}

func signVote(g *chain.Genesis, k testkit.Key, src, tgt chain.Checkpoint) chain.Vote {
	v := chain.Vote{Source: src, Target: tgt}
	v.Sign(g.ChainID, k.Priv)
	return v
}

// TestSelectOnlyIncludable: of the pooled votes, the forger gets only
// those a block on the head may carry (chain.State.CheckVote on the
// head's state), at most the number it asks for, newest targets first.
func TestSelectOnlyIncludable(t *testing.T) {
	f, m, keys := finUnit(t, 3)
	snap := m.Snapshot()
	g := f.g
	cp := func(h uint64) chain.Checkpoint {
		hash, err := m.HashAt(h)
		if err != nil {
			t.Fatal(err)
		}
		return chain.Checkpoint{Height: h, Hash: hash}
	}
	gen := snap.Finality().Justified
	stranger := testkit.KeyN(40)
	good := []chain.Vote{
		signVote(g, keys[0], gen, cp(3)),
		signVote(g, keys[1], gen, cp(2)),
		signVote(g, keys[2], gen, cp(1)),
	}
	bad := map[string]chain.Vote{
		"unknown target":         signVote(g, keys[3], gen, chain.Checkpoint{Height: 2, Hash: chain.Hash{9}}),
		"source not justified":   signVote(g, keys[3], cp(1), cp(3)),
		"no stake at the source": signVote(g, stranger, gen, cp(3)),
	}
	for _, v := range good {
		if err := f.pool.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range bad {
		if err := f.pool.Add(v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if snap.ReadState().CheckVote(g, &v, snap.Height()+1) == nil {
			t.Fatalf("%s: the chain takes it", name)
		}
	}
	got := f.Select(snap, 10)
	if len(got) != len(good) {
		t.Fatalf("selected %d votes, want the %d includable", len(got), len(good))
	}
	for i := range got {
		if got[i].Target != good[i].Target || got[i].Voter() != good[i].Voter() {
			t.Fatalf("vote %d: %s→%s by %s, want %s→%s (newest targets first)", i, got[i].Source, got[i].Target, got[i].Voter(), good[i].Source, good[i].Target)
		}
	}
	if got := f.Select(snap, 2); len(got) != 2 || got[0].Target.Height != 3 {
		t.Fatalf("Select(2) = %d votes, want the 2 newest", len(got))
	}
	// Ready: 3 includable votes of 4 lots do not justify the head (3)
	// alone; the link 0→3 has one vote.
	if f.Ready(snap) {
		t.Fatal("Ready with one of four stakers' votes for the head")
	}
	for _, k := range keys[1:3] {
		if err := f.pool.Add(signVote(g, k, gen, cp(3))); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Ready(snap) {
		t.Fatal("not Ready with three of four stakers' votes for the head")
	}
	// Finality off (this node does not vote, nothing justified yet):
	// nothing to wait for.
	f.voter = nil
	f.pool = votepool.New(votepool.Config{ChainID: g.ChainID})
	if !f.Ready(snap) {
		t.Fatal("not Ready with finality off")
	}
}

// TestHandleVotesNeverRejects: gossiped votes the pool takes forward the
// message; votes it cannot take (known, of no staker) are ignored, never
// held against the sender.
func TestHandleVotesNeverRejects(t *testing.T) {
	f, m, keys := finUnit(t, 2)
	f.pool = votepool.New(votepool.Config{ChainID: f.g.ChainID, Known: func(a chain.Address) bool { return m.Snapshot().Account(a).Stake > 0 }})
	h := p2pHandler{votes: f.pool, poke: func() {}}
	gen := m.Snapshot().Finality().Justified
	hash, _ := m.HashAt(2)
	v := signVote(f.g, keys[0], gen, chain.Checkpoint{Height: 2, Hash: hash})
	if err := h.HandleVotes([]chain.Vote{v}); err != nil {
		t.Fatalf("a new vote: %v, want nil (forwarded)", err)
	}
	for name, vs := range map[string][]chain.Vote{
		"known":           {v},
		"not a staker":    {signVote(f.g, testkit.KeyN(41), gen, chain.Checkpoint{Height: 2, Hash: hash})},
		"target ≤ source": {{Source: chain.Checkpoint{Height: 2}, Target: chain.Checkpoint{Height: 1}}},
	} {
		err := h.HandleVotes(vs)
		if !errors.Is(err, p2p.ErrIgnore) || p2p.IsReject(err) {
			t.Errorf("%s: %v, want ErrIgnore", name, err)
		}
	}
}
