package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/keystore"
)

// firstVoteSlashing waits until every node lists, as included in its main
// chain, vote evidence of kind against node 2, and every node sees the
// same stake left for it; it returns node 1's first such record (lowest
// block) and the stakes seen.
func firstVoteSlashing(t *testing.T, d *Devnet, kind chain.EvidenceKind) (rpc.Evidence, []uint64) {
	t.Helper()
	cheat := d.Nodes[1].Address()
	var first rpc.Evidence
	var stakes []uint64
	done := func() bool {
		if !agreed(d.Nodes...) {
			return false
		}
		stakes = stakes[:0]
		for i, n := range d.Nodes {
			var best *rpc.Evidence
			for _, e := range n.API().Evidence() {
				if e.Forger == cheat && e.Kind == kind && e.IncludedIn != nil && e.Slashed != nil &&
					(best == nil || *e.IncludedIn < *best.IncludedIn) {
					best = &e
				}
			}
			if best == nil {
				return false
			}
			if i == 0 {
				first = *best
			}
			stakes = append(stakes, n.chain.Snapshot().Account(cheat).Stake)
		}
		for _, s := range stakes {
			if s != stakes[0] {
				return false
			}
		}
		return true
	}
	// Votes follow blocks, and blocks follow transactions (the heartbeat
	// rests once the newest is final): a transfer a round keeps them coming.
	user, _ := keystore.Generate()
	for round := 0; !done(); round++ {
		if round > 30 {
			t.Fatalf("no node slashed node 2 for a %s in 30 rounds (offences signed: %d)", kind, byzantine.VoteOffences(d.Nodes[1].forger.Behaviour()))
		}
		nonce := d.Nodes[0].API().Account(user.Address()).Nonce
		sendFrom(t, d.Nodes[0], user, chain.Transaction{Type: chain.TxExchange, To: user.Address(), Amount: 1})
		waitUntil(t, 30*time.Second, fmt.Sprintf("round %d committed", round), func() bool {
			return d.Nodes[0].API().Account(user.Address()).Nonce > nonce
		})
	}
	return first, stakes
}

// TestDoubleVoterSlashed: node 2 (40 of 60) signs two votes for every
// target height; the honest nodes' vote pools see the pairs, make
// double_vote evidence, gossip it, and the next block carries it: every
// node burns slash_percent (50) of node 2's stake, and lists the kind.
func TestDoubleVoterSlashed(t *testing.T) {
	d := labNet(t, "double-vote")
	if got := d.Nodes[1].API().Status().Byzantine; got != "double-vote" {
		t.Fatalf("status byzantine %q", got)
	}
	e, stakes := firstVoteSlashing(t, d, chain.EvidenceDoubleVote)
	if byzantine.VoteOffences(d.Nodes[1].forger.Behaviour()) == 0 {
		t.Fatal("slashed without having double-voted")
	}
	if *e.Slashed != 20 {
		t.Fatalf("first double vote burned %d of 40, want 20 (slash_percent 50)", *e.Slashed)
	}
	for i, s := range stakes {
		if s > 20 {
			t.Fatalf("node %d sees stake %d for the double voter, want at most 20", i+1, s)
		}
	}
	t.Logf("double vote at height %d, slashed in block %d, %d burned; stakes seen %v", e.Height, *e.IncludedIn, *e.Slashed, stakes)
}

// TestSurroundVoterSlashed: node 2 replaces every 4th vote with one from
// an older source, around its previous vote; every node slashes it with
// surround_vote evidence.
func TestSurroundVoterSlashed(t *testing.T) {
	d := labNet(t, "surround-vote")
	e, stakes := firstVoteSlashing(t, d, chain.EvidenceSurroundVote)
	if *e.Slashed != 20 {
		t.Fatalf("first surround vote burned %d of 40, want 20 (slash_percent 50)", *e.Slashed)
	}
	t.Logf("surround vote at height %d, slashed in block %d, %d burned; stakes seen %v", e.Height, *e.IncludedIn, *e.Slashed, stakes)
}

// TestNoVoteThirdStallsAfterFinality: three equal stakers vote and blocks
// become final; then node 3 comes back as a no-vote node (a silent third):
// finality stalls while blocks go on; then it comes back honest, finality
// resumes past the stall, and every block that was final before is still
// on every node's main chain.
func TestNoVoteThirdStallsAfterFinality(t *testing.T) {
	cfgs := make([]Config, 3)
	d := startNet(t, []uint64{1, 1, 1}, func(i int, c *Config) { cfgs[i-1] = *c }, func(p *GenesisParams) {
		p.ChainID = "posd-fintest"
		p.SlotMs = finNetSlotMs
		p.Lab = true
	})
	waitPeers(t, d, 2)
	restart := func(byz string) {
		t.Helper()
		d.Nodes[2].Close()
		c := cfgs[2]
		c.Byzantine = byz
		c.Join, c.NoJoin = d.Nodes[0].APIURL(), false
		n, err := Open(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		d.Nodes[2] = n
	}
	u, _ := keystore.Generate()
	sendFrom(t, d.Nodes[0], u, chain.Transaction{Type: chain.TxExchange, To: u.Address(), Amount: 100})
	waitUntil(t, 60*time.Second, "blocks final with every staker voting", func() bool {
		_, _, f := finOf(d.Nodes[0])
		return f >= 1 // the heartbeat rests once the transfer's block is final
	})
	_, _, final := finOf(d.Nodes[0])
	hashes := make([]chain.Hash, final+1)
	for h := range final + 1 {
		var err error
		if hashes[h], err = d.Nodes[0].chain.HashAt(h); err != nil {
			t.Fatal(err)
		}
	}

	restart("no-vote")
	if got := d.Nodes[2].API().Status().Byzantine; got != "no-vote" {
		t.Fatalf("status byzantine %q", got)
	}
	sendFrom(t, d.Nodes[0], u, chain.Transaction{Type: chain.TxExchange, To: u.Address(), Amount: 1})
	var stalledAt uint64
	waitUntil(t, 60*time.Second, "finality reported stalled", func() bool {
		st := d.Nodes[0].API().Status()
		stalledAt = st.Height
		return st.FinalityStalled != nil
	})
	if st := d.Nodes[0].API().Status(); st.Height-*st.FinalizedHeight <= rpc.FinalityStallBlocks {
		t.Fatalf("stalled with head %d and final %d", st.Height, *st.FinalizedHeight)
	}

	restart("")
	waitUntil(t, 60*time.Second, "every node final past the stall", func() bool {
		for _, n := range d.Nodes {
			if _, _, f := finOf(n); f < stalledAt {
				return false
			}
		}
		return true
	})
	for i, n := range d.Nodes {
		for h, want := range hashes {
			if got, err := n.chain.HashAt(uint64(h)); err != nil || got != want {
				t.Fatalf("node %d: block %d, final before the stall, is now %v (%v)", i+1, h, got, err)
			}
		}
	}
	t.Logf("final %d before the stall, stalled at head %d, final past it after", final, stalledAt)
}
