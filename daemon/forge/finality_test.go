package forge

import (
	"log/slog"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/keystore"
)

// onePool is a Pool holding transactions until the chain commits them: as
// a real pool, it offers only those whose nonce the state has not reached.
type onePool struct{ txs []chain.Transaction }

func (p *onePool) Pending(_ int, st mempool.StateView) []chain.Transaction {
	var out []chain.Transaction
	for _, tx := range p.txs {
		if tx.Nonce > st.Account(tx.From).Nonce {
			out = append(out, tx)
		}
	}
	return out
}
func (p *onePool) Oldest() (time.Time, bool) { return time.Time{}, len(p.txs) > 0 }
func (p *onePool) Remove(...chain.Hash)      {}

// fixedVotes is a Votes with fixed answers.
type fixedVotes struct {
	votes  []chain.Vote
	final  uint64
	on     bool
	asked  int  // the max the forger asked Select for
	wait   bool // Ready answers false: the head's votes are not all in
	forged int  // blocks Forged was told of
}

func (v *fixedVotes) Select(_ *chainmgr.Snapshot, max int) []chain.Vote {
	v.asked = max
	return v.votes[:min(max, len(v.votes))]
}
func (v *fixedVotes) Ready(*chainmgr.Snapshot) bool { return !v.wait }
func (v *fixedVotes) Forged(*chain.Block)           { v.forged++ }
func (v *fixedVotes) Finalized(*chainmgr.Snapshot) (uint64, bool) {
	return v.final, v.on
}

// TestHeartbeatV3 is the heartbeat's rule on a chain whose block 1
// carries a payment, by height (head at 1, then 2 after one beat): with
// finality on it beats until block 1 is final and then rests; with it
// off (no stake votes), v2's rule: while block 1 is less than max_reorg
// deep.
func TestHeartbeatV3(t *testing.T) {
	key, _ := keystore.Generate()
	user, _ := keystore.Generate()
	g, err := chain.DefaultGenesisParams().Build(time.Now(), []chain.Allocation{{Address: key.Address(), Balance: 1000, Stake: 1}})
	if err != nil {
		t.Fatal(err)
	}
	m := newTestChain(t, g)
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: g.ChainID, To: user.Address(), Amount: 5, Nonce: 1}
	user.SignTx(&tx)
	votes := &fixedVotes{}
	f := New(Config{Chain: m, Pool: &onePool{txs: []chain.Transaction{tx}}, Key: key, Genesis: g, Log: discard(), Now: time.Now, Votes: votes})
	f.forge(m.Snapshot(), 0) // block 1: the payment
	if h := m.Snapshot().Height(); h != 1 || len(m.Snapshot().Head().Transactions) != 1 {
		t.Fatalf("head %d, want block 1 with the payment", h)
	}
	for _, tc := range []struct {
		name  string
		final uint64
		on    bool
		want  bool
	}{
		{"finality on, payment not final: beat", 0, true, true},
		{"finality on, payment final: rest", 1, true, false},
		{"finality on, above the payment final: rest", 5, true, false},
		{"finality off: v2, one deep: beat", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			votes.final, votes.on = tc.final, tc.on
			if got := f.needsBeat(m.Snapshot()); got != tc.want {
				t.Fatalf("needsBeat = %v, want %v", got, tc.want)
			}
		})
	}
	// One beat on top (the memo's incremental path): the same answers.
	votes.final, votes.on = 0, true
	f.forge(m.Snapshot(), 0)
	if h := m.Snapshot().Height(); h != 2 {
		t.Fatalf("head %d after a beat, want 2", h)
	}
	if !f.needsBeat(m.Snapshot()) {
		t.Fatal("payment not final at height 2: the heartbeat must go on")
	}
	votes.final = 1
	if f.needsBeat(m.Snapshot()) {
		t.Fatal("payment final: the heartbeat must rest")
	}
	if _, ok := f.beatAt(m.Snapshot(), 0); ok {
		t.Fatal("beatAt due while the payment is final")
	}
	// A fresh forger (no memo: a restart, or a reorg) walks the store.
	f2 := New(Config{Chain: m, Pool: emptyPool{}, Key: key, Genesis: g, Log: discard(), Now: time.Now, Votes: votes})
	votes.final = 0
	if !f2.needsBeat(m.Snapshot()) {
		t.Fatal("a fresh forger does not find the payment above the final height")
	}
}

// TestForgerCarriesVotes: the forger asks for at most max_block_votes
// votes, puts what it gets in the block under the header's vote root, and
// the chain takes the block (the votes were includable on its parent).
func TestForgerCarriesVotes(t *testing.T) {
	key, _ := keystore.Generate()
	others := make([]*keystore.Key, 3)
	allocs := []chain.Allocation{{Address: key.Address(), Balance: 1000, Stake: 100_000}}
	for i := range others {
		others[i], _ = keystore.Generate()
		allocs = append(allocs, chain.Allocation{Address: others[i].Address(), Balance: 1, Stake: 1})
	}
	p := chain.DefaultGenesisParams()
	p.MaxBlockVotes = 2
	g, err := p.Build(time.Now(), allocs)
	if err != nil {
		t.Fatal(err)
	}
	m := newTestChain(t, g)
	votes := &fixedVotes{}
	f := New(Config{Chain: m, Pool: emptyPool{}, Key: key, Genesis: g, Log: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})), Now: time.Now, Votes: votes})
	rank := m.Snapshot().RankOf(key.Address())
	if rank < 0 {
		t.Skip("the node key is not a candidate for block 1") // 10^5 lots to 3: never
	}
	f.forge(m.Snapshot(), uint32(rank)) // block 1
	b1 := m.Snapshot().Head()
	src := m.Snapshot().Finality().Justified // genesis
	tgt := chain.Checkpoint{Height: 1, Hash: b1.Hash()}
	for _, k := range others {
		v := chain.Vote{Source: src, Target: tgt}
		v.Sign(g.ChainID, k.PrivateKey())
		votes.votes = append(votes.votes, v)
	}
	snap := m.Snapshot()
	f.forge(snap, uint32(max(snap.RankOf(key.Address()), 0)))
	b2 := m.Snapshot().Head()
	if b2.Height != 2 {
		t.Fatalf("head %d, want block 2 forged", b2.Height)
	}
	if votes.asked != g.MaxBlockVotes {
		t.Errorf("the forger asked for %d votes, want max_block_votes %d", votes.asked, g.MaxBlockVotes)
	}
	if len(b2.Votes) != 2 || b2.VoteRoot != chain.VoteRoot(b2.Votes) {
		t.Fatalf("block 2 carries %d votes (root %s), want 2 under their root", len(b2.Votes), b2.VoteRoot)
	}
	tally, ok := m.Snapshot().Finality().Tally(tgt)
	if !ok || len(tally.Links) != 1 || tally.Links[0].Lots != 2 {
		t.Fatalf("tally of block 1: %+v, want the 2 included votes counted", tally)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tlog writes a logger's lines to the test's log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestVoteGrace: with the head's votes not all in, a block waits for
// them, counted from the head's timestamp (an old head's votes are not
// coming: a restarted node forges at once): heartbeat_ms while each block
// carried its parent's votes and while finality stalls (the justified
// checkpoint far below the head), slot_ms − heartbeat_ms after a block
// forged without them; with the votes in, a block with transactions does
// not wait, and a heartbeat comes at heartbeat_ms.
func TestVoteGrace(t *testing.T) {
	stall := int(liveLag(1)) + 1
	for _, tc := range []struct {
		name          string
		wait          bool
		blocks        int   // blocks without votes below the head (nothing justified)
		after         int64 // ms after the head's timestamp
		forge, beatOn bool  // a block with transactions, an empty block forged
	}{
		{"votes missing, fresh head: wait", true, 0, 100, false, false},
		{"votes missing, past heartbeat_ms: forge", true, 0, 600, true, true},
		{"votes missing after a miss, past heartbeat_ms: wait", true, 2, 600, false, false},
		{"votes missing after a miss, past slot - heartbeat_ms: forge", true, 2, 1600, true, true},
		{"votes in, fresh head", false, 0, 100, true, false},
		{"votes in after a miss, fresh head", false, 2, 100, true, false},
		{"votes in, past heartbeat_ms", false, 0, 600, true, true},
		{"votes missing, finality stalled, fresh head: wait", true, stall, 100, false, false},
		{"votes missing, finality stalled, past heartbeat_ms: forge", true, stall, 600, true, true},
	} {
		for _, beat := range []bool{false, true} {
			name, want := tc.name, tc.forge
			if beat {
				name, want = name+", heartbeat", tc.beatOn
			}
			t.Run(name, func(t *testing.T) {
				key, _ := keystore.Generate()
				user, _ := keystore.Generate()
				// The genesis 10 s old and every block dated at it: the
				// forger's clock (the head's time + after) is never ahead
				// of the chain manager's (wall clock).
				g, err := chain.DefaultGenesisParams().Build(time.Now().Add(-10*time.Second), []chain.Allocation{{Address: key.Address(), Balance: 1000, Stake: 1}})
				if err != nil {
					t.Fatal(err)
				}
				m := newTestChain(t, g)
				pay := func(nonce uint64) *onePool {
					tx := chain.Transaction{Type: chain.TxExchange, ChainID: g.ChainID, To: user.Address(), Amount: 5, Nonce: nonce}
					user.SignTx(&tx)
					return &onePool{txs: []chain.Transaction{tx}}
				}
				gt := time.UnixMilli(m.Snapshot().Head().Timestamp)
				blocks := tc.blocks
				if beat {
					blocks = max(blocks, 1) // the payment the beat protects
				}
				// The first block carries a payment (the heartbeat has
				// something to protect); the forger's votes are in, none
				// carried.
				sf := New(Config{Chain: m, Pool: pay(1), Key: key, Genesis: g, Log: discard(),
					Now: func() time.Time { return gt }, Votes: &fixedVotes{on: true}})
				for range blocks {
					sf.forge(m.Snapshot(), 0)
				}
				start := m.Snapshot().Height()
				if start != uint64(blocks) || m.Snapshot().Finality().Justified.Height != 0 {
					t.Fatalf("head %d, justified %d: want %d blocks, nothing justified", start, m.Snapshot().Finality().Justified.Height, blocks)
				}
				var pool Pool = pay(uint64(min(blocks, 1) + 1))
				if beat {
					pool = emptyPool{}
				}
				now := time.UnixMilli(m.Snapshot().Head().Timestamp + tc.after)
				f := New(Config{Chain: m, Pool: pool, Key: key, Genesis: g, Log: discard(),
					Now: func() time.Time { return now }, Votes: &fixedVotes{on: true, wait: tc.wait}})
				var seen chain.Hash
				var seenAt time.Time
				wait := f.forgeOnce(&seen, &seenAt)
				forged := m.Snapshot().Height() == start+1
				if forged != want {
					t.Fatalf("forged %v (sleep %v), want %v", forged, wait, want)
				}
				if !forged && (wait <= 0 || wait > maxForgeSleep) {
					t.Fatalf("sleeps %v, want until the grace ends", wait)
				}
			})
		}
	}
}
