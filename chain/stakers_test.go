package chain

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// scanStakers is what the staker index must hold: every account with
// stake, found by reading them all.
func scanStakers(st *State) []AccountEntry {
	var out []AccountEntry
	for _, e := range st.Accounts() {
		if e.Stake > 0 {
			out = append(out, e)
		}
	}
	return out
}

// checkIndex fails unless st's staker index, lot total and election table
// agree with a scan of every account.
func checkIndex(t *testing.T, g *Genesis, st *State, when string) {
	t.Helper()
	want := scanStakers(st)
	if got := st.Stakers(); !slices.Equal(got, want) {
		t.Fatalf("%s: Stakers() = %v, scan finds %v", when, got, want)
	}
	var lots uint64
	for _, e := range want {
		lots += e.Stake / g.LotSize
	}
	if got := st.Lots(g.LotSize); got != lots {
		t.Fatalf("%s: Lots = %d, scan finds %d", when, got, lots)
	}
	tab := ElectionTable(g, st)
	var names []string
	for _, e := range want {
		if e.Stake/g.LotSize > 0 {
			names = append(names, string(e.Address))
			if tab.Stake(string(e.Address)) != e.Stake/g.LotSize {
				t.Fatalf("%s: table gives %s %d lots, want %d", when, e.Address, tab.Stake(string(e.Address)), e.Stake/g.LotSize)
			}
		}
	}
	if got := tab.Stakers(); !slices.Equal(got, names) {
		t.Fatalf("%s: table lists %v, want %v", when, got, names)
	}
}

// TestStakerIndexFollowsApplyAndRevert applies random blocks of stakes,
// unstakes and transfers, reverts runs of them as a reorg would, and
// copies states on the way (as snapshots do): the staker index, the lot
// total and the election table always match a scan of the accounts, and a
// copy never sees its original's later blocks.
func TestStakerIndexFollowsApplyAndRevert(t *testing.T) {
	names := []string{"alice", "bob", "carol", "dave", "erin"}
	g := testGenesis(t, func(g *Genesis) {
		g.LotSize = 3
		g.MinTotalStake = 3
		g.Allocations = nil
		for i, n := range names {
			g.Allocations = append(g.Allocations, Allocation{Address: testAddr(n), Balance: 1000, Stake: uint64(10 * (i % 2))})
		}
	})
	rng := rand.New(rand.NewPCG(22, 22))
	st := g.State()
	checkIndex(t, g, st, "genesis")
	type applied struct {
		undo   *Undo
		before *State // a copy taken before the block
	}
	var stack []applied
	for height := uint64(1); height <= 300; height++ {
		if len(stack) > 3 && rng.IntN(5) == 0 {
			n := 1 + rng.IntN(3)
			for range n {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				st.Revert(top.undo)
				if !st.Equal(top.before) {
					t.Fatalf("height %d: revert does not restore the state", height)
				}
				checkIndex(t, g, st, fmt.Sprintf("revert to %d", top.undo.Height-1))
				checkIndex(t, g, top.before, "copy")
			}
			continue
		}
		b := &Block{Header: Header{Height: height, Forger: testAddr(names[rng.IntN(len(names))])}}
		for range rng.IntN(6) {
			from := testAddr(names[rng.IntN(len(names))])
			tx := Transaction{From: from, To: from, Amount: 1 + rng.Uint64N(6), Nonce: st.Account(from).Nonce + 1}
			for _, tx2 := range b.Transactions {
				if tx2.From == from {
					tx.Nonce++
				}
			}
			switch rng.IntN(3) {
			case 0:
				tx.Type = TxStake
			case 1:
				tx.Type = TxUnstake
			default:
				tx.Type, tx.To = TxTransfer, testAddr(names[rng.IntN(len(names))])
			}
			b.Transactions = append(b.Transactions, tx)
		}
		before := st.Clone()
		undo, err := st.Apply(b, g)
		if err != nil {
			// Refused (insufficient stake, floor): nothing changed.
			if !st.Equal(before) {
				t.Fatalf("height %d: refused block changed the state", height)
			}
			checkIndex(t, g, st, "refused block")
			continue
		}
		stack = append(stack, applied{undo, before})
		checkIndex(t, g, st, fmt.Sprintf("block %d", height))
	}
	if len(stack) < 50 {
		t.Fatalf("only %d blocks applied: the test checks too little", len(stack))
	}
}

// TestSharedStateClonedConcurrently is how the node uses a snapshot's
// state: never written, read by many goroutines, and cloned by several at
// once (side-branch validation), each writing its own copy. Run with
// -race: the copies' writes never reach the shared state or each other.
func TestSharedStateClonedConcurrently(t *testing.T) {
	g := testGenesis(t)
	shared := g.State()
	for i := range 5000 {
		shared.SetAccount(Address(fmt.Sprintf("%040d", i)), Account{Balance: uint64(i) + 1})
	}
	want := shared.Len()
	ElectionTable(g, shared)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			if w%2 == 0 { // a reader
				for i := range 5000 {
					if got := shared.Account(Address(fmt.Sprintf("%040d", i))).Balance; got != uint64(i)+1 {
						errs <- fmt.Errorf("shared account %d reads %d", i, got)
						return
					}
				}
				if len(ElectionTable(g, shared).Stakers()) != 1 {
					errs <- fmt.Errorf("shared state's table changed")
				}
				return
			}
			c := shared.Clone() // a writer of its own copy
			for i := range 5000 {
				c.SetAccount(Address(fmt.Sprintf("%040d", i)), Account{Balance: uint64(w)})
			}
			c.SetAccount(testAddr("bob"), Account{Stake: 7})
			if len(ElectionTable(g, c).Stakers()) != 2 {
				errs <- fmt.Errorf("copy %d: table misses the new staker", w)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if shared.Len() != want || len(shared.Stakers()) != 1 {
		t.Fatalf("the shared state changed: %d accounts, %d stakers", shared.Len(), len(shared.Stakers()))
	}
}
