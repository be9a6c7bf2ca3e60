package daemon

import (
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
