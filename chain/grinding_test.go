package chain

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"testing"
)

// TestGrindingSeed replays the v1 attack: a staker with 10% of the stake
// builds up to 1,000 variants of each block it may forge at rank 0
// (timestamps and transaction sets) and keeps the one that elects it again
// at the next height. With seed_source block_hash the variants change the
// next seed, and it takes most heights; with vrf they do not, and it wins
// rank 0 no more often than its share, within 3 standard deviations.
func TestGrindingSeed(t *testing.T) {
	heights := 300
	if testing.Short() {
		heights = 120
	}
	for _, tc := range []struct {
		source string
		check  func(wins, heights int) error
	}{
		{SeedVRF, func(wins, n int) error {
			p := 0.1
			bound := float64(n)*p + 3*math.Sqrt(float64(n)*p*(1-p))
			if float64(wins) > bound {
				return fmt.Errorf("attacker won %d of %d heights at rank 0, fair share + 3σ is %.1f", wins, n, bound)
			}
			return nil
		}},
		{SeedBlockHash, func(wins, n int) error {
			if wins <= n/2 {
				return fmt.Errorf("attacker won only %d of %d heights: the grindable seed should let it take most", wins, n)
			}
			return nil
		}},
	} {
		t.Run(tc.source, func(t *testing.T) {
			wins := grind(t, tc.source, heights, 1000)
			t.Logf("%s: attacker (10%% of the stake) forged %d of %d heights at rank 0", tc.source, wins, heights)
			if err := tc.check(wins, heights); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// grind runs the attack for n heights and returns the attacker's rank-0 heights.
func grind(t *testing.T, source string, n, tries int) int {
	keys := map[Address]ed25519.PrivateKey{}
	var allocs []Allocation
	for i := range 10 { // staker 0 is the attacker: 1 lot of 10
		k := testKey(fmt.Sprint("grind staker ", i))
		a := AddressOf(k.Public().(ed25519.PublicKey))
		keys[a] = k
		allocs = append(allocs, Allocation{Address: a, Balance: 1 << 30, Stake: 1})
	}
	attacker := allocs[0].Address
	g := DefaultGenesis()
	g.ChainID, g.Timestamp, g.SeedSource, g.Allocations = testChainID, 1_700_000_000_000, source, allocs
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	alg, _ := g.Algorithm()
	state := g.State()
	table := ElectionTable(g, state) // stakes never change here
	parent := g.Block().Header
	nonce := uint64(0)
	wins := 0
	for range n {
		cands := ElectWith(alg, g.MaxRank, ElectionSeed(g, &parent), table)
		var b *Block
		if cands[0] != attacker {
			b = NewBlock(g, &parent, 0, parent.Timestamp+1, nil)
			b.Header.Sign(keys[cands[0]])
		} else {
			wins++
			// Every variant the attacker may forge: its seed proof is the
			// same for all (made once, by Sign), the hash is not.
			b = NewBlock(g, &parent, 0, parent.Timestamp+1, nil)
			b.Header.Sign(keys[attacker])
			self := Transaction{Type: TxTransfer, ChainID: g.ChainID, To: attacker, Amount: 1, Nonce: nonce + 1}
			self.Sign(keys[attacker])
			for i := range tries {
				v := *b
				v.Timestamp = parent.Timestamp + 1 + int64(i/2)
				v.Transactions = nil
				if i%2 == 1 {
					v.Transactions = []Transaction{self}
				}
				v.TxRoot = TxRoot(v.Transactions)
				if next := ElectWith(alg, g.MaxRank, ElectionSeed(g, &v.Header), table); next[0] == attacker {
					b = &v
					break
				}
			}
			b.Header.Sign(keys[attacker])
			if len(b.Transactions) > 0 {
				nonce++
			}
		}
		if _, err := ValidateAndApply(g, &parent, b, cands, state, b.Timestamp, nil); err != nil {
			t.Fatalf("height %d: %v", b.Height, err)
		}
		parent = b.Header
	}
	return wins
}
