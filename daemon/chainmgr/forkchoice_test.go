package chainmgr

import (
	"testing"

	"github.com/poslab/posd/chain"
)

// TestV2ForkChoice: v2's rule on a hand-made tree. The main chain is
// root → m1 (rank 1, hash 0x50…) → m2; candidates fork from root.
func TestV2ForkChoice(t *testing.T) {
	node := func(parent *Node, hashByte byte, rank uint32) *Node {
		n := &Node{Parent: parent, Rank: rank, Flags: NodeValid}
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
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := (V2{}).Better(c.candidate, m2); got != c.want {
				t.Fatalf("Better = %v, want %v", got, c.want)
			}
			if err := (V2{}).Allowed(c.candidate, m2); err != nil {
				t.Fatalf("v2 refused a branch: %v", err)
			}
		})
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
	if _, ok := tc.m.fc.(V2); !ok {
		t.Fatalf("default fork choice %T, want V2", tc.m.fc)
	}
}
