package testkit

import (
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

// The cast's addresses are pinned: the wallet's golden files and the
// chain's conformance vectors were made with them.
func TestKeysArePinned(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    Key
		want chain.Address
	}{
		{"KeyN(1) is the golden files' alice", Alice, "34750f98bd59fcfc946da45aaabe933be154a4b5"},
		{"Named is chain's testKey", Named("alice"), chain.AddressOf(Named("alice").Public())},
	} {
		if tc.k.Addr != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, tc.k.Addr, tc.want)
		}
	}
	seen := map[chain.Address]int{}
	for i := -2; i < 600; i++ {
		a := KeyN(i).Addr
		if j, dup := seen[a]; dup {
			t.Fatalf("KeyN(%d) and KeyN(%d) are the same key", i, j)
		}
		seen[a] = i
		if KeyN(i).Addr != a {
			t.Fatalf("KeyN(%d) differs between calls", i)
		}
	}
	if k, ok := KeyOf(Bob.Addr); !ok || k.Addr != Bob.Addr {
		t.Errorf("KeyOf(bob) = %v, %v", k.Addr, ok)
	}
	if _, ok := KeyOf(chain.Address(strings.Repeat("ab", 20))); ok {
		t.Error("KeyOf found a key the kit never made")
	}
}

func TestTransactions(t *testing.T) {
	tests := []struct {
		name string
		tx   chain.Transaction
		to   chain.Address
		typ  chain.TxType
	}{
		{"transfer", Transfer(Alice, Bob.Addr, 5, 1, 7), Bob.Addr, chain.TxTransfer},
		{"stake names its sender", Stake(Alice, 5, 1, 7), Alice.Addr, chain.TxStake},
		{"unstake names its sender", Unstake(Alice, 5, 1, 7), Alice.Addr, chain.TxUnstake},
		{"empty to is the sender", Tx(Alice, chain.TxExchange, "", 5, 1, 7), Alice.Addr, chain.TxExchange},
	}
	for _, tc := range tests {
		if err := tc.tx.Validate(ChainID); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.tx.From != Alice.Addr || tc.tx.To != tc.to || tc.tx.Type != tc.typ || tc.tx.Amount != 5 || tc.tx.Fee != 1 || tc.tx.Nonce != 7 {
			t.Errorf("%s: %+v", tc.name, tc.tx)
		}
	}
	bad := Corrupt(Transfer(Alice, Bob.Addr, 5, 1, 7))
	if err := bad.VerifySignature(); chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Errorf("Corrupt: VerifySignature = %v, want %s", err, chain.ErrBadSignature.Code)
	}
	other := Transfer(Alice, Bob.Addr, 5, 1, 7)
	other.ChainID = "elsewhere"
	if other = Resign(Alice, other); other.Validate("elsewhere") != nil {
		t.Errorf("Resign: %v", other.Validate("elsewhere"))
	}
	n := Nonces{}
	if a, b, c := n.Next(Alice), n.Next(Alice), n.Next(Bob); a != 1 || b != 2 || c != 1 {
		t.Errorf("Nonces: %d %d %d, want 1 2 1", a, b, c)
	}
}

// TestChainIsValid: a chain with two stakers and transactions of every
// kind, replayed block by block on a fresh genesis state by the real rules,
// ends in the same state; both stakers forge.
func TestChainIsValid(t *testing.T) {
	g := Genesis([]chain.Allocation{Fund(Alice, 1000, 100), Fund(Bob, 1000, 100), Fund(Carol, 50, 0)})
	c := NewChain(t, g)
	n := Nonces{}
	c.Add(Transfer(Alice, Carol.Addr, 10, 1, n.Next(Alice)), Stake(Bob, 20, 0, n.Next(Bob)))
	c.Add(Unstake(Bob, 5, 0, n.Next(Bob)), Transfer(Carol, Dave.Addr, 3, 0, n.Next(Carol)))
	c.Grow(30)
	if c.Height() != 32 || len(c.Undos) != 33 {
		t.Fatalf("height %d, %d undo records", c.Height(), len(c.Undos))
	}
	if got := c.State.Account(Dave.Addr); got.Balance != 3 {
		t.Errorf("dave %+v, want balance 3", got)
	}
	replay, forgers := g.State(), map[chain.Address]int{}
	for i, b := range c.Blocks[1:] {
		parent := &c.Blocks[i].Header
		cands, err := chain.Elect(g, parent, replay)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chain.ValidateAndApply(g, parent, b, cands, replay, b.Timestamp, nil); err != nil {
			t.Fatalf("block %d: %v", b.Height, err)
		}
		forgers[b.Forger]++
	}
	if !replay.Equal(c.State) {
		t.Error("replayed state differs from the chain's")
	}
	if forgers[Alice.Addr] == 0 || forgers[Bob.Addr] == 0 {
		t.Errorf("forgers %v: both stakers should win some of 32 blocks", forgers)
	}
	// A spoiled block is refused and leaves the chain as it was.
	b := c.Forge(0)
	b.Timestamp++
	if _, err := c.TryAccept(b); chain.CodeOf(err) != chain.ErrBadBlockSig.Code {
		t.Errorf("spoiled block: %v, want %s", err, chain.ErrBadBlockSig.Code)
	}
	if c.Height() != 32 {
		t.Errorf("height %d after a refusal", c.Height())
	}
}

func TestGenesisRefusesInvalid(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a genesis with no stake passed")
		}
	}()
	Genesis(nil) // nobody stakes
}

// TestForkAndRevert: a fork grows apart without touching its origin, and
// reverting a branch back to the fork point gives the state there.
func TestForkAndRevert(t *testing.T) {
	g := Genesis([]chain.Allocation{Fund(Alice, 1000, 100), Fund(Bob, 1000, 100)})
	c := BuildChain(t, g, 3)
	at3 := c.State.Clone()
	f := c.Fork()
	c.Add(Transfer(Alice, Dave.Addr, 7, 0, 1))
	fb := f.Forge(1, Transfer(Bob, Dave.Addr, 9, 0, 1))
	f.Accept(fb)
	if c.Height() != 4 || f.Height() != 4 || c.Tip().Hash() == f.Tip().Hash() {
		t.Fatalf("heights %d %d: two branches at 4 with distinct tips expected", c.Height(), f.Height())
	}
	if c.State.Account(Dave.Addr).Balance != 7 || f.State.Account(Dave.Addr).Balance != 9 {
		t.Errorf("dave: %d on c, %d on the fork; want 7 and 9", c.State.Account(Dave.Addr).Balance, f.State.Account(Dave.Addr).Balance)
	}
	if got := f.Revert(); got != fb || f.Height() != 3 || !f.State.Equal(at3) {
		t.Errorf("revert: took %d off, height %d, state back at 3: %v", got.Height, f.Height(), f.State.Equal(at3))
	}
	if c.Height() != 4 || c.State.Account(Dave.Addr).Balance != 7 {
		t.Error("reverting the fork changed its origin")
	}
}
