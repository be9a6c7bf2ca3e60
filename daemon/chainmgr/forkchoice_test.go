package chainmgr

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
)

// TestV2ForkChoice: v2's rule on a hand-made tree. The main chain is
// root → m1 (rank 1, hash 0x50…) → m2; candidates fork from root.
func TestV2ForkChoice(t *testing.T) {
	node := func(parent *Node, hashByte byte, rank uint32) *Node {
		// Justified at genesis, known: a chain without votes.
		n := &Node{Parent: parent, Rank: rank, Flags: NodeValid, JustifiedKnown: true}
		n.Hash[0] = hashByte
		if parent != nil {
			n.Height, n.PrevHash = parent.Height+1, parent.Hash
		}
		return n
	}
	root := node(nil, 0x01, 0)
	m1 := node(root, 0x50, 1)
	m2 := node(m1, 0x51, 0)
	chainOf := func(first *Node, more int) *Node {
		tip := first
		for i := range more {
			tip = node(tip, byte(0xa0+i), 0)
		}
		return tip
	}
	cases := []struct {
		name      string
		candidate *Node
		want      bool
	}{
		{"higher branch", chainOf(node(root, 0x90, 3), 2), true},
		{"lower branch", chainOf(node(root, 0x10, 0), 0), false},
		{"equal height, lower first rank", chainOf(node(root, 0x90, 0), 1), true},
		{"equal height, higher first rank", chainOf(node(root, 0x10, 2), 1), false},
		{"equal height and rank, lower first hash", chainOf(node(root, 0x40, 1), 1), true},
		{"equal height and rank, higher first hash", chainOf(node(root, 0x60, 1), 1), false},
		{"fork above root: compares the first blocks above it", node(m1, 0x52, 0), false},
		{"fork above root, lower hash", node(m1, 0x20, 0), true},
		{"the main tip itself", m2, false},
		{"a child of the tip", node(m2, 0x99, 9), true},
		{"no common ancestor in the tree", chainOf(node(nil, 0x02, 0), 1), false},
	}
	// V3 with no votes (every branch justified at genesis, nothing
	// beyond it final, as Started hears from a chain without votes)
	// decides as V2 on the same table.
	v3 := NewV3(nil)
	if err := v3.Started(nil, chain.NewState()); err != nil {
		t.Fatal(err)
	}
	for _, fc := range []ForkChoice{V2{}, v3} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%T/%s", fc, c.name), func(t *testing.T) {
				if got := fc.Better(c.candidate, m2); got != c.want {
					t.Fatalf("Better = %v, want %v", got, c.want)
				}
				if err := fc.Allowed(c.candidate, m2); err != nil {
					t.Fatalf("refused a branch: %v", err)
				}
			})
		}
	}
}

// refusing is a fork choice that refuses every branch as conflicting with
// a final block, and records what it was asked.
type refusing struct{ asked []*Node }

func (r *refusing) Allowed(candidate, current *Node) error {
	r.asked = append(r.asked, candidate)
	return &chain.RuleError{Code: ErrConflictsWithFinal.Code, Message: "the branch does not contain the final block"}
}

func (r *refusing) Better(candidate, current *Node) bool { return true }

// TestForkChoiceSeam: the manager asks Config.ForkChoice about every block
// off the main chain before it keeps or switches to it; a refusal is the rule's coded error, a peer fault, and the
// chain stays where it was.
func TestForkChoiceSeam(t *testing.T) {
	tc := newTestChain(t)
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	fc := &refusing{}
	tc.fc = fc
	tc.open(nil)
	m := tc.m
	g0 := m.Head()
	a := tc.chainOf(g0, 2, 10)
	mustImport(t, m, a)
	b := tc.chainOf(g0, 3, 11)
	n, err := m.ProcessBlocks(b)
	// Refused from its first block: a branch off the final block is not
	// even kept as a side branch.
	if n != 0 || chain.CodeOf(err) != ErrConflictsWithFinal.Code || !IsPeerFault(err) {
		t.Fatalf("longer branch under a refusing rule: %d imported, err %v", n, err)
	}
	if m.Head() != a[1] {
		t.Fatalf("head moved to %d", m.Head().Height)
	}
	if len(fc.asked) == 0 || fc.asked[len(fc.asked)-1].Hash != b[0].Hash() || !fc.asked[len(fc.asked)-1].JustifiedKnown {
		t.Fatalf("fork choice asked %d times, last not the refused block with its state", len(fc.asked))
	}
	tc.fc = nil
	tc.restart()
	if _, ok := tc.m.fc.(*V3); !ok {
		t.Fatalf("default fork choice %T, want *V3", tc.m.fc)
	}
}

// recorder is an Observer that notes what it hears.
type recorder struct {
	started        int
	checked, moved []chain.Hash
	justified      []bool
}

func (r *recorder) Started(head *chain.Block, st *chain.State) error { r.started++; return nil }
func (r *recorder) BlockChecked(b *chain.Block, hash chain.Hash)     { r.checked = append(r.checked, hash) }
func (r *recorder) ChainMoved(head *chain.Block, added, reverted []*chain.Block, st *chain.State) {
	r.moved = append(r.moved, head.Hash())
	r.justified = append(r.justified, st != nil)
}

// TestObserversHearTheChain: an Observer in Config (where fork choice v3
// learns the final checkpoint) is told of the start, every new head with
// its state, and every side block checked.
func TestObserversHearTheChain(t *testing.T) {
	tc := newTestChain(t)
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(tc.dir, "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m, err := New(Config{Genesis: tc.g, Store: st, Observers: []Observer{rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g0 := m.Head()
	a := tc.chainOf(g0, 2, 10)
	mustImport(t, m, a[:1])
	mustImport(t, m, a[1:])
	side := tc.block(tc.forger, g0, 11)
	if err := m.ProcessBlock(side); !errors.Is(err, ErrSideBlock) {
		t.Fatalf("side block: %v", err)
	}
	if rec.started != 1 || len(rec.moved) != 2 || rec.moved[1] != a[1].Hash() || !rec.justified[1] {
		t.Fatalf("observer heard started %d, moved %v", rec.started, rec.moved)
	}
	if len(rec.checked) != 1 || rec.checked[0] != side.Hash() {
		t.Fatalf("observer heard checked %v, want the side block", rec.checked)
	}
}
