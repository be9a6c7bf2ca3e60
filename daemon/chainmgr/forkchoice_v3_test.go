package chainmgr

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
)

// finalityState is a state whose finality record says justified j and
// final f (the rules that fill it are not this package's).
func finalityState(j, f chain.Checkpoint) *chain.State {
	st := chain.NewState()
	st.SetFinality(&chain.Finality{Justified: j, Finalized: f})
	return st
}

// TestV3ForkChoice: v3's rules on a hand-made tree. The main chain is
// root → m1 → m2 → m3 → m4, justified at m3 and final at m2; candidates
// are branches off it (j: their tip's justified height).
func TestV3ForkChoice(t *testing.T) {
	next := byte(0x10)
	node := func(parent *Node, rank uint32, j uint64) *Node {
		n := &Node{Parent: parent, Rank: rank, Flags: NodeValid, Justified: j, JustifiedKnown: true}
		n.Hash[0], next = next, next+1
		if parent != nil {
			n.Height, n.PrevHash = parent.Height+1, parent.Hash
		}
		return n
	}
	main := func(n *Node) *Node { n.Flags |= NodeMain; return n }
	root := main(node(nil, 0, 0))
	m1 := main(node(root, 0, 0))
	m2 := main(node(m1, 0, 1))
	m3 := main(node(m2, 0, 2))
	m4 := main(node(m3, 0, 3))
	branch := func(from *Node, count int, j uint64) *Node {
		tip := from
		for range count {
			tip = node(tip, 1, j)
		}
		return tip
	}
	unknown := func(n *Node) *Node { n.Justified, n.JustifiedKnown = 0, false; return n }
	final := chain.Checkpoint{Height: m2.Height, Hash: m2.Hash}
	cases := []struct {
		name      string
		candidate *Node
		cp        *chain.Checkpoint
		code      chain.ErrorCode // Allowed's refusal, "" for none
		better    bool
	}{
		{"longer branch forking below the final block", branch(root, 8, 7), nil, ErrConflictsWithFinal.Code, false},
		{"longer branch forking just below the final block", branch(m1, 8, 7), nil, ErrConflictsWithFinal.Code, false},
		{"side block below the final block", branch(root, 1, 0), nil, ErrConflictsWithFinal.Code, false},
		{"side block at the final height", branch(m1, 1, 0), nil, ErrConflictsWithFinal.Code, false},
		{"branch on the final block, higher justified, shorter", branch(m2, 1, 4), nil, "", true},
		{"branch on the final block, lower justified, longer", branch(m2, 6, 2), nil, "", false},
		{"branch on the final block, equal justified, longer: v2", branch(m3, 2, 3), nil, "", true},
		{"branch on the final block, equal justified, equal height, higher rank: v2", branch(m3, 1, 3), nil, "", false},
		{"justified not known, longer: v2", unknown(branch(m3, 3, 0)), nil, "", true},
		{"child of the tip", node(m4, 5, 3), nil, "", true},
		{"above the checkpoint, on it", branch(m3, 2, 3), &chain.Checkpoint{Height: 1, Hash: m1.Hash}, "", true},
		{"the checkpoint refuses first", branch(root, 8, 7), &chain.Checkpoint{Height: 1, Hash: m1.Hash}, ErrConflictsWithCheckpoint.Code, false},
		{"a branch ending below the checkpoint is no conflict with it", branch(m2, 1, 4), &chain.Checkpoint{Height: 9, Hash: chain.Hash{9}}, "", true},
		{"a branch with another block at the checkpoint's height", branch(m2, 8, 4), &chain.Checkpoint{Height: 9, Hash: chain.Hash{9}}, ErrConflictsWithCheckpoint.Code, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := NewV3(c.cp)
			v.ChainMoved(nil, nil, nil, finalityState(chain.Checkpoint{Height: m3.Height, Hash: m3.Hash}, final))
			if v.Final() != final {
				t.Fatalf("final %v, want %v", v.Final(), final)
			}
			err := v.Allowed(c.candidate, m4)
			if chain.CodeOf(err) != c.code {
				t.Fatalf("Allowed: %v, want code %q", err, c.code)
			}
			if err != nil {
				if !IsPeerFault(err) {
					t.Fatalf("%v is not a peer fault", err)
				}
				_, remember := remembered(err)
				if remember != (c.code == ErrConflictsWithFinal.Code) {
					t.Fatalf("%v remembered invalid: %v", err, remember)
				}
				return
			}
			if got := v.Better(c.candidate, m4); got != c.better {
				t.Fatalf("Better = %v, want %v", got, c.better)
			}
		})
	}
}

// finalOnLoad is a store whose loaded state says the chain is final at
// fin, its record otherwise as stored (no votes in these chains: nothing
// is justified above genesis on either branch).
type finalOnLoad struct {
	Store
	fin chain.Checkpoint
}

func (s finalOnLoad) LoadState() (*chain.State, error) {
	st, err := s.Store.LoadState()
	if err == nil {
		f := *st.Finality()
		f.Finalized = s.fin
		st.SetFinality(&f)
	}
	return st, err
}

// TestV3RefusesConflictsWithFinalAfterRestart: a node restarted on its
// store (closed and opened again) learns its final block from the state
// it loads, and refuses a longer branch without it (conflicts_with_final,
// a peer fault, remembered invalid across restarts, head unchanged),
// also one built on a side block it stored before; a branch on the final
// block still wins as v2 says.
func TestV3RefusesConflictsWithFinalAfterRestart(t *testing.T) {
	tc := newTestChain(t)
	g0 := tc.m.Head()
	a := tc.chainOf(g0, 3, 10)
	mustImport(t, tc.m, a)
	side := tc.block(tc.forger, g0, 11)
	if err := tc.m.ProcessBlock(side); !errors.Is(err, ErrSideBlock) {
		t.Fatalf("side block: %v", err)
	}
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	fin := chain.Checkpoint{Height: a[1].Height, Hash: a[1].Hash()}
	tc.open(func(s Store) Store { return finalOnLoad{Store: s, fin: fin} })
	if v, ok := tc.m.fc.(*V3); !ok || v.Final() != fin {
		t.Fatalf("fork choice %T does not know the final block %v", tc.m.fc, fin)
	}
	b := tc.chainOf(g0, 5, 12)
	n, err := tc.m.ProcessBlocks(b)
	if n != 0 || chain.CodeOf(err) != ErrConflictsWithFinal.Code || !IsPeerFault(err) {
		t.Fatalf("branch without the final block: %d imported, err %v", n, err)
	}
	if tc.m.Head() != a[2] && tc.m.Head().Hash() != a[2].Hash() {
		t.Fatalf("head moved to %s", tc.m.Head().Hash())
	}
	if st, code, _ := tc.m.BlockStatus(b[0].Hash()); st != StatusInvalid || code != ErrConflictsWithFinal.Code {
		t.Fatalf("refused block: %v %q", st, code)
	}
	// On the side block stored before the restart.
	onSide := tc.chainOf(side, 4, 10)
	if n, err := tc.m.ProcessBlocks(onSide); n != 0 || chain.CodeOf(err) != ErrConflictsWithFinal.Code {
		t.Fatalf("branch on an old side block: %d imported, err %v", n, err)
	}
	// On the final block: a longer branch wins (v2, nothing justified
	// higher on either side).
	c := tc.chainOf(a[1], 3, 13)
	mustImport(t, tc.m, c)
	if tc.m.Head().Hash() != c[2].Hash() {
		t.Fatalf("head %d, want the longer branch on the final block", tc.m.Head().Height)
	}
	// Remembered across a restart: refused at once.
	tc.restart()
	if err := tc.m.ProcessBlock(b[0]); !errors.Is(err, ErrKnownInvalid) || chain.CodeOf(err) != ErrConflictsWithFinal.Code {
		t.Fatalf("refused block offered again after a restart: %v", err)
	}
}

// TestV3SideBranchLoadedAtRestart: a stored side block offered again
// after a restart, when the tree loaded it without its state, has its
// branch's justified checkpoint computed before fork choice weighs it
// (else a longer branch that lost on justification would win on v2's
// rule after a restart).
func TestV3SideBranchLoadedAtRestart(t *testing.T) {
	tc := newTestChain(t)
	g0 := tc.m.Head()
	a := tc.chainOf(g0, 2, 10)
	mustImport(t, tc.m, a)
	b := tc.chainOf(g0, 3, 11)
	mustImport(t, tc.m, b)
	if tc.m.Head().Hash() != b[2].Hash() {
		t.Fatal("the longer branch did not win")
	}
	tc.restart()
	// a is a side branch now, loaded without its state.
	tip, ok := tc.m.ix.node(a[1].Hash())
	if !ok || tip.JustifiedKnown {
		t.Fatalf("side tip in the tree %v, justified known %v", ok, ok && tip.JustifiedKnown)
	}
	if err := tc.m.ProcessBlock(a[1]); !errors.Is(err, ErrKnownBlock) {
		t.Fatalf("shorter stored side block offered again: %v", err)
	}
	if !tip.JustifiedKnown {
		t.Fatal("the side tip's justified checkpoint was not computed before fork choice")
	}
}

// openManager opens a manager on the store in dir with cp, closing the
// store if New refuses.
func openManager(t *testing.T, g *chain.Genesis, dir string, cp *chain.Checkpoint) (*Manager, error) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Genesis: g, Store: st, Checkpoint: cp})
	if err != nil {
		st.Close()
		return nil, err
	}
	t.Cleanup(func() { m.Close() })
	return m, nil
}

// TestCheckpoint: weak subjectivity with two chains on one genesis. A
// fresh node given a checkpoint the offered chain lacks takes it up to
// the height before and refuses the block there (conflicts_with_checkpoint,
// a peer fault, not remembered: the checkpoint is configuration) and so
// everything after it; given the chain's own checkpoint it syncs it all;
// and a node whose stored chain has another block at the checkpoint's
// height does not start.
func TestCheckpoint(t *testing.T) {
	tc := newTestChain(t)
	g0 := tc.m.Head()
	a := tc.chainOf(g0, 5, 10)
	b := tc.chainOf(g0, 5, 11)
	cpA := &chain.Checkpoint{Height: 3, Hash: a[2].Hash()}
	cpB := &chain.Checkpoint{Height: 3, Hash: b[2].Hash()}

	t.Run("fresh node, chain without the checkpoint", func(t *testing.T) {
		m, err := openManager(t, tc.g, t.TempDir(), cpB)
		if err != nil {
			t.Fatal(err)
		}
		n, err := m.ProcessBlocks(a)
		if n != 2 || chain.CodeOf(err) != ErrConflictsWithCheckpoint.Code || !IsPeerFault(err) {
			t.Fatalf("chain without the checkpoint: %d imported, err %v", n, err)
		}
		for _, blk := range a[2:] {
			if err := m.ProcessBlock(blk); err == nil || errors.Is(err, ErrSideBlock) {
				t.Fatalf("block %d taken: %v", blk.Height, err)
			}
		}
		if m.Head().Hash() != a[1].Hash() || m.Stats().CheckpointRefused != 2 {
			t.Fatalf("head at %d, %d refused", m.Head().Height, m.Stats().CheckpointRefused)
		}
		if st, _, _ := m.BlockStatus(a[2].Hash()); st != StatusUnknown {
			t.Fatalf("refused block is %v, want unknown (not remembered)", st)
		}
		// The checkpoint's chain, from another peer: taken (it is longer).
		mustImport(t, m, b)
		if m.Head().Hash() != b[4].Hash() {
			t.Fatalf("head at %d, want the checkpoint's chain", m.Head().Height)
		}
	})
	t.Run("fresh node, chain with the checkpoint", func(t *testing.T) {
		m, err := openManager(t, tc.g, t.TempDir(), cpA)
		if err != nil {
			t.Fatal(err)
		}
		mustImport(t, m, a)
		if n, err := m.ProcessBlocks(b); chain.CodeOf(err) != ErrConflictsWithCheckpoint.Code || n != 2 {
			t.Fatalf("the other chain: %d taken, err %v", n, err)
		}
		if m.Head().Hash() != a[4].Hash() {
			t.Fatalf("head at %d", m.Head().Height)
		}
	})
	t.Run("restart on a stored chain", func(t *testing.T) {
		dir := t.TempDir()
		m, err := openManager(t, tc.g, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		mustImport(t, m, a)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = openManager(t, tc.g, dir, cpB)
		var ce *CheckpointError
		if !errors.As(err, &ce) || ce.Stored != a[2].Hash() || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), "empty home") {
			t.Fatalf("start on a chain without the checkpoint: %v", err)
		}
		for _, cp := range []*chain.Checkpoint{cpA, {Height: 40, Hash: chain.Hash{1}}} {
			m, err := openManager(t, tc.g, dir, cp)
			if err != nil {
				t.Fatalf("start with checkpoint %v: %v", cp, err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
