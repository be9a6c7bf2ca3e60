package testkit

import (
	"testing"

	"github.com/poslab/posd/chain"
)

// Chain is a main chain under construction: every block is elected, signed
// by the kit's key of its forger and accepted by chain.ValidateAndApply on
// the state after its parent, exactly as a node checks it.
type Chain struct {
	tb      testing.TB
	Genesis *chain.Genesis
	// Blocks[0] is the genesis block; Undos[i] is block i's undo record
	// (nil for the genesis).
	Blocks []*chain.Block
	Undos  []*chain.Undo
	// State is the state after the last block. Tests may read it; a test
	// that changes it directly owns the consequences.
	State *chain.State
}

// NewChain starts a chain at g's genesis block. Every staker of g must have
// a key from the kit (KeyN, Named), or the first block it wins fails tb.
func NewChain(tb testing.TB, g *chain.Genesis) *Chain {
	return &Chain{tb: tb, Genesis: g, Blocks: []*chain.Block{g.Block()}, Undos: []*chain.Undo{nil}, State: g.State()}
}

// BuildChain is a chain of n empty valid blocks on g.
func BuildChain(tb testing.TB, g *chain.Genesis, n int) *Chain {
	tb.Helper()
	c := NewChain(tb, g)
	c.Grow(n)
	return c
}

// Tip is the last block.
func (c *Chain) Tip() *chain.Block { return c.Blocks[len(c.Blocks)-1] }

// Height is the tip's height.
func (c *Chain) Height() uint64 { return c.Tip().Height }

// Candidates are the elected forgers of the next block, best first.
func (c *Chain) Candidates() []chain.Address {
	c.tb.Helper()
	cands, err := chain.Elect(c.Genesis, &c.Tip().Header, c.State)
	if err != nil {
		c.tb.Fatalf("testkit: elect on %d: %v", c.Height(), err)
	}
	return cands
}

// Forge builds the next block at rank with txs and signs it with the
// rank's candidate's key, without accepting it: a test may spoil it first.
// Its timestamp is the earliest the rank allows, plus 10 ms.
func (c *Chain) Forge(rank uint32, txs ...chain.Transaction) *chain.Block {
	c.tb.Helper()
	cands := c.Candidates()
	if int(rank) >= len(cands) {
		c.tb.Fatalf("testkit: rank %d of %d candidates", rank, len(cands))
	}
	k, ok := KeyOf(cands[rank])
	if !ok {
		c.tb.Fatalf("testkit: no key for candidate %s", cands[rank])
	}
	parent := &c.Tip().Header
	b := chain.NewBlock(c.Genesis, parent, rank, parent.Timestamp+int64(rank)*c.Genesis.SlotMs+10, txs)
	b.Header.Sign(k.Priv)
	return b
}

// Accept validates b on the tip with the real rules and applies it,
// failing tb if the rules refuse it. It returns b's undo record.
func (c *Chain) Accept(b *chain.Block) *chain.Undo {
	c.tb.Helper()
	u, err := c.TryAccept(b)
	if err != nil {
		c.tb.Fatalf("testkit: valid block %d refused: %v", b.Height, err)
	}
	return u
}

// TryAccept is Accept returning the rules' error instead of failing; on an
// error the chain is unchanged.
func (c *Chain) TryAccept(b *chain.Block) (*chain.Undo, error) {
	// The validator's clock reads the block's own time: never "future".
	u, err := chain.ValidateAndApply(c.Genesis, &c.Tip().Header, b, c.Candidates(), c.State, b.Timestamp, nil)
	if err != nil {
		return nil, err
	}
	c.Blocks, c.Undos = append(c.Blocks, b), append(c.Undos, u)
	return u, nil
}

// Add forges the next rank-0 block with txs and accepts it.
func (c *Chain) Add(txs ...chain.Transaction) *chain.Block {
	c.tb.Helper()
	b := c.Forge(0, txs...)
	c.Accept(b)
	return b
}

// Grow adds n empty blocks.
func (c *Chain) Grow(n int) {
	c.tb.Helper()
	for range n {
		c.Add()
	}
}

// Revert takes the tip off the chain and undoes it in State, as a node
// does on a reorg. It returns the block taken off; the genesis stays.
func (c *Chain) Revert() *chain.Block {
	c.tb.Helper()
	if len(c.Blocks) == 1 {
		c.tb.Fatalf("testkit: revert below the genesis")
	}
	last := len(c.Blocks) - 1
	b, u := c.Blocks[last], c.Undos[last]
	if err := c.State.Revert(u); err != nil {
		c.tb.Fatalf("testkit: revert block %d: %v", b.Height, err)
	}
	c.Blocks, c.Undos = c.Blocks[:last], c.Undos[:last]
	return b
}

// Fork is a copy of c that grows apart from it: the blocks so far are
// shared (never mutated), the state is cloned. Forking and then forging at
// another rank or with other transactions makes a competing branch.
func (c *Chain) Fork() *Chain {
	return &Chain{tb: c.tb, Genesis: c.Genesis, Blocks: c.Blocks[:len(c.Blocks):len(c.Blocks)],
		Undos: c.Undos[:len(c.Undos):len(c.Undos)], State: c.State.Clone()}
}
