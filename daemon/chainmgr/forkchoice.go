package chainmgr

import "bytes"

// ForkChoice decides whether the chain moves onto another branch. The
// manager asks it for every such decision: each block off the main chain,
// once validated on its branch and before it is stored or switched to
// (sideLocked: a refused block is neither), and a stored side branch
// offered again (knownLocked). Extending the head is no decision (the head's child is
// always preferred to the head) and does not ask it.
//
// Both methods see nodes of the block tree (blocktree.go): candidate is
// the tip of the branch (possibly a node not yet in the tree, linked to
// its parent there), current the main chain's tip. Their common ancestor
// and the first block of each side are Fork(candidate, current). They run
// under the import lock and must not block: everything they need is in
// the nodes or in the implementation's own memory.
//
// How fork choice v3 (DESIGN "v3 rules", issue 20) plugs in (V3,
// forkchoice_v3.go, follows this): a type set in Config.ForkChoice that is also in
// Config.Observers, so that ChainMoved hands it the state after each new
// head, from whose chain.State.Finality().Finalized it keeps the highest
// (height and hash: the node's final block, never lowered); then
//   - Allowed walks candidate's Parent pointers down to the final height
//     and refuses with ErrConflictsWithFinal unless the node there has the
//     final hash (a branch forking below the tree's window never gets
//     here: the reorg limit refuses it first, and finality should stay
//     within the window, see mainWindow);
//   - Better compares candidate.Justified with current.Justified and
//     prefers the higher, and on a tie (or when candidate's is not
//     known) defers to V2{}.Better. current's is always known (the main
//     tip); a side block's is known when it is asked about, since the
//     manager validates it on its branch's state first. The stored side
//     blocks loaded at a restart start without it: knownLocked computes
//     their branch's state before it asks any fork choice but V2.
//
// Config.ForkChoice nil is V3 (which decides as V2 while no votes
// justify anything beyond genesis).
type ForkChoice interface {
	// Allowed is nil if the chain may move onto the branch ending at
	// candidate at all, otherwise a coded rule error saying why not (a
	// peer fault if the branch came from a peer). It runs before Better.
	Allowed(candidate, current *Node) error
	// Better reports whether the branch ending at candidate should
	// replace the main chain ending at current.
	Better(candidate, current *Node) bool
}

// V2 is fork choice v2 (and v3's last rule): the higher chain wins; at equal
// height the branch whose first block above the common ancestor has the
// lower rank, then the lower hash. It refuses no branch.
type V2 struct{}

// Allowed refuses nothing: v2 has no final blocks.
func (V2) Allowed(candidate, current *Node) error { return nil }

// Better is v2's rule.
func (V2) Better(candidate, current *Node) bool {
	switch {
	case candidate.Height > current.Height:
		return true
	case candidate.Height < current.Height:
		return false
	}
	_, c, m := Fork(candidate, current)
	if c == nil || m == nil {
		// The same block, or branches that do not meet in the tree (the
		// reorg limit refuses those before fork choice is asked).
		return false
	}
	if c.Rank != m.Rank {
		return c.Rank < m.Rank
	}
	return bytes.Compare(c.Hash[:], m.Hash[:]) < 0
}

var _ ForkChoice = V2{}

// chooses asks the fork choice whether the branch ending at candidate
// replaces the main chain.
func (m *Manager) chooses(candidate *Node) (bool, error) {
	current := m.ix.head()
	if err := m.fc.Allowed(candidate, current); err != nil {
		return false, err
	}
	return m.fc.Better(candidate, current), nil
}
