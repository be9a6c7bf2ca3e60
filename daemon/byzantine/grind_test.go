package byzantine

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"testing"

	"github.com/poslab/posd/chain"
)

func key(i int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("byzantine test key %d", i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

// grindShare runs heights of a chain of ten stakers on the real election
// and seed rules: the grinder (key 0, 10 of 100 lots) forges its heights
// with Grind, the others forge plainly at rank 0. It returns the
// grinder's share of the blocks.
func grindShare(t *testing.T, seedSource string, heights int) float64 {
	t.Helper()
	g := chain.DefaultGenesis()
	g.ChainID, g.Timestamp, g.SeedSource, g.Lab = "byzantine-test", 1_700_000_000_000, seedSource, true
	keys := map[chain.Address]ed25519.PrivateKey{}
	for i := range 10 {
		k := key(i)
		a := chain.AddressOf(k.Public().(ed25519.PublicKey))
		keys[a] = k
		g.Allocations = append(g.Allocations, chain.Allocation{Address: a, Balance: 1, Stake: 10})
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	me := chain.AddressOf(key(0).Public().(ed25519.PublicKey))
	state := g.State() // no transactions: the stakes never change
	parent := g.Block().Header
	mine := 0
	for range heights {
		cands, err := chain.Elect(g, &parent, state)
		if err != nil {
			t.Fatal(err)
		}
		b := chain.NewBlock(g, &parent, 0, parent.Timestamp+1, nil)
		k := keys[cands[0]]
		sign := func(h *chain.Header) { h.Sign(k) }
		if cands[0] == me {
			mine++
			b, _, _ = Grind(g, b, sign, state, DefaultGrindVariants, b.Timestamp+DefaultGrindVariants)
		} else {
			sign(&b.Header)
		}
		// The block is valid: the grinder's version too.
		if err := chain.CheckHeader(g, &parent, b, cands, b.Timestamp); err != nil {
			t.Fatalf("height %d: %v", b.Height, err)
		}
		parent = b.Header
	}
	return float64(mine) / float64(heights)
}

// TestGrindNeedsTheBlockHashSeed: with seed_source block_hash a 10%
// staker that grinds takes far more than its share of the blocks; with
// vrf its share stays within 3 standard deviations of its stake.
func TestGrindNeedsTheBlockHashSeed(t *testing.T) {
	const heights, p = 300, 0.1
	sd := math.Sqrt(p * (1 - p) / heights)
	hash := grindShare(t, chain.SeedBlockHash, heights)
	vrf := grindShare(t, chain.SeedVRF, heights)
	t.Logf("grinder with 10%% of the stake, %d heights: %.1f%% of blocks with block_hash, %.1f%% with vrf (sd %.1f pp)", heights, 100*hash, 100*vrf, 100*sd)
	if hash < 0.5 {
		t.Errorf("block_hash: share %.3f, want far above the stake share %.2f", hash, p)
	}
	if math.Abs(vrf-p) > 3*sd {
		t.Errorf("vrf: share %.3f is more than 3 sd (%.3f) from the stake share %.2f", vrf, sd, p)
	}
}

func TestCheck(t *testing.T) {
	g := chain.DefaultGenesis()
	if err := Check("equivocate", g); err != ErrNotLab {
		t.Fatalf("off lab: %v", err)
	}
	g.Lab = true
	for _, name := range Names() {
		if err := Check(name, g); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := Check("teleport", g); err == nil {
		t.Error("unknown behaviour accepted")
	}
}
