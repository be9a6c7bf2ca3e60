package daemon

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/keystore"
)

// labNet runs three nodes on a lab genesis; node 2 (stake 40 of 60) runs
// behaviour.
func labNet(t *testing.T, behaviour string, params ...func(*GenesisParams)) *Devnet {
	t.Helper()
	d := startNet(t, []uint64{10, 40, 10}, func(i int, c *Config) {
		if i == 2 {
			c.Byzantine = behaviour
		}
	}, append([]func(*GenesisParams){func(p *GenesisParams) { p.Lab = true }}, params...)...)
	waitPeers(t, d, 2)
	return d
}

// untilEquivocation sends transfers until node 2 has equivocated (made a
// twin for a block it forged) and returns the height of its first.
func untilEquivocation(t *testing.T, d *Devnet) {
	t.Helper()
	user, _ := keystore.Generate()
	for round := 0; byzantine.Twins(d.Nodes[1].forger.lab.behaviour) == 0; round++ {
		if round > 40 {
			t.Fatal("node 2 forged no block in 40 rounds")
		}
		nonce := d.Nodes[0].Account(user.Address()).Nonce
		sendFrom(t, d.Nodes[0], user, chain.Transaction{Type: chain.TxExchange, To: user.Address(), Amount: 1})
		waitUntil(t, 30*time.Second, fmt.Sprintf("round %d committed", round), func() bool {
			return d.Nodes[0].Account(user.Address()).Nonce > nonce || byzantine.Twins(d.Nodes[1].forger.lab.behaviour) > 0
		})
	}
}

// firstSlashing waits until every node's main chain carries a slashing of
// node 2 and returns it, with the nodes' views of node 2's stake.
func firstSlashing(t *testing.T, d *Devnet) (chain.Slashing, []uint64) {
	t.Helper()
	cheat := d.Nodes[1].Address()
	var found chain.Slashing
	var stakes []uint64
	waitUntil(t, 60*time.Second, "every node slashed node 2 for the same height, with the same stake left", func() bool {
		if !agreed(d.Nodes...) {
			return false
		}
		stakes = stakes[:0]
		first := true
		for _, n := range d.Nodes {
			snap := n.chain.Snapshot()
			var s chain.Slashing
			ok := false
			for h := uint64(1); h <= snap.Height() && !ok; h++ {
				s, ok = snap.Slashed(cheat, h)
			}
			if !ok || (!first && s != found) {
				return false
			}
			found, first = s, false
			stakes = append(stakes, snap.Account(cheat).Stake)
		}
		return true
	})
	return found, stakes
}

// TestEquivocatorSlashed: node 2 signs two blocks for a slot it wins; the
// honest nodes see both, the next block carries the evidence (within 3
// slots), and every node burns the same half of its stake.
func TestEquivocatorSlashed(t *testing.T) {
	d := labNet(t, "equivocate")
	if got := d.Nodes[1].Status().Byzantine; got != "equivocate" {
		t.Fatalf("status byzantine %q", got)
	}
	untilEquivocation(t, d)
	s, stakes := firstSlashing(t, d)
	if s.IncludedIn-s.Height > 3 {
		t.Fatalf("equivocation at %d slashed in block %d: more than 3 slots later", s.Height, s.IncludedIn)
	}
	if s.Burned != 20 {
		t.Fatalf("burned %d of 40, want 20 (slash_percent 50)", s.Burned)
	}
	for i, st := range stakes {
		if st != stakes[0] || st > 20 {
			t.Fatalf("node %d sees stake %d for the equivocator (node 1: %d), want at most 20 and agreement", i+1, st, stakes[0])
		}
	}
	waitUntil(t, 10*time.Second, "the slashing listed by GET /v1/evidence", func() bool {
		for _, e := range d.Nodes[0].Evidence() {
			if e.Forger == d.Nodes[1].Address() && e.Height == s.Height {
				return e.IncludedIn != nil && *e.IncludedIn == s.IncludedIn && e.Slashed != nil && *e.Slashed == s.Burned
			}
		}
		return false
	})
	t.Logf("equivocation at height %d, slashed in block %d, %d burned; stakes seen %v", s.Height, s.IncludedIn, s.Burned, stakes)
}

// TestEquivocatorKeepsStakeWithoutSlashing: slash_percent 0 switches the
// defence off: the evidence is committed, nothing is burned.
func TestEquivocatorKeepsStakeWithoutSlashing(t *testing.T) {
	d := labNet(t, "equivocate", func(p *GenesisParams) { p.SlashPercent = 0 })
	untilEquivocation(t, d)
	s, stakes := firstSlashing(t, d)
	if s.Burned != 0 {
		t.Fatalf("burned %d with slash_percent 0", s.Burned)
	}
	for i, st := range stakes {
		if st != 40 {
			t.Fatalf("node %d sees stake %d, want 40 kept", i+1, st)
		}
	}
}

// TestByzantineRefusedOffLab: no behaviour runs on a network whose genesis
// does not say lab.
func TestByzantineRefusedOffLab(t *testing.T) {
	p := DefaultGenesisParams()
	p.ChainID = "posd-notlab"
	_, err := Open(Config{Home: t.TempDir(), NewNetwork: true, Genesis: p, NoNetwork: true, Byzantine: "equivocate"})
	if !errors.Is(err, byzantine.ErrNotLab) {
		t.Fatalf("got %v, want ErrNotLab", err)
	}
	p.Lab = true
	_, err = Open(Config{Home: t.TempDir(), NewNetwork: true, Genesis: p, NoNetwork: true, Byzantine: "teleport"})
	if err == nil {
		t.Fatal("an unknown behaviour was accepted")
	}
}
