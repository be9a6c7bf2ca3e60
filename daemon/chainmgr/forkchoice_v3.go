package chainmgr

import (
	"fmt"

	"github.com/poslab/posd/chain"
)

// V3 is fork choice v3 (DESIGN "v3 rules", issue 20), the default:
//  1. never a branch without this node's latest final block: a block off
//     the main chain whose branch lacks it is refused with
//     ErrConflictsWithFinal (a peer fault, remembered invalid: a final
//     block is never reverted, so neither is the verdict);
//  2. then the branch with the higher justified checkpoint;
//  3. then v2's rule (V2).
//
// It also holds the node's weak-subjectivity checkpoint (Config.Checkpoint,
// `posd start --checkpoint`), if any: a branch whose block at that height
// has another hash is refused with ErrConflictsWithCheckpoint. (The
// manager refuses such a block itself too, before any work, on every path,
// extending the head included; V3 catches side branches stored before the
// checkpoint was given.)
//
// V3 learns the final checkpoint as an Observer: from the state New
// loaded (Started) and from the state after every new head (ChainMoved);
// and the manager hands it the node's stored final checkpoint in New (a
// restarted node keeps refusing what conflicts with the block that was
// final when it stopped, even if its main chain's record proves less). It
// only ever moves up: a switch to a branch that holds the final block but
// whose own record proves a lower one leaves it where it was, so a later
// branch without it is still refused (finality.go: the node's final
// checkpoint). The manager puts the default V3 among its observers
// itself; a V3 passed in Config.ForkChoice must be in Config.Observers too.
//
// With no votes the justified checkpoint stays at genesis on every branch
// and nothing beyond genesis is final, so V3 decides exactly as V2.
//
// Not safe for concurrent use, and needs no lock: the manager calls every
// method under its import lock, or in New before any import.
type V3 struct {
	final chain.Checkpoint  // the highest final checkpoint of the main chain seen; never lowered
	cp    *chain.Checkpoint // weak subjectivity; nil: none
}

// NewV3 is fork choice v3 with the weak-subjectivity checkpoint cp (nil:
// none).
func NewV3(cp *chain.Checkpoint) *V3 {
	v := &V3{}
	if cp != nil {
		c := *cp
		v.cp = &c
	}
	return v
}

var (
	_ ForkChoice = (*V3)(nil)
	_ Observer   = (*V3)(nil)
)

// Final is the latest final checkpoint V3 knows of (the zero checkpoint
// or genesis: nothing beyond genesis is final).
func (v *V3) Final() chain.Checkpoint { return v.final }

// relation is where a branch stands with respect to a checkpoint.
type relation int

const (
	relHas     relation = iota // the branch holds the checkpoint's block
	relOther                   // it holds another block at that height
	relBelow                   // it ends below that height
	relUnknown                 // its walk ran off the tree (out of reach)
)

// relate walks tip's branch down to cp's height. A main-chain node at or
// above that height answers for the rest: the main chain holds both the
// final block (it is the main chain's own) and the checkpoint once it
// reaches its height (New and every import refuse anything else).
func relate(tip *Node, cp chain.Checkpoint) relation {
	if tip.Height < cp.Height {
		return relBelow
	}
	for n := tip; n != nil; n = n.Parent {
		if n.Height == cp.Height {
			if n.Hash == cp.Hash {
				return relHas
			}
			return relOther
		}
		if n.Flags&NodeMain != 0 {
			return relHas
		}
	}
	// Below the tree's window: the reorg limit refuses such a branch
	// before fork choice is asked (forkchoice.go).
	return relUnknown
}

// Allowed refuses a branch without the weak-subjectivity checkpoint's
// block at its height, and one without the latest final block.
func (v *V3) Allowed(candidate, current *Node) error {
	if v.cp != nil && relate(candidate, *v.cp) == relOther {
		return checkpointError(*v.cp, candidate.Height)
	}
	if v.final.Height == 0 {
		return nil // genesis: every branch holds it
	}
	switch relate(candidate, v.final) {
	case relOther:
		return &chain.RuleError{Code: ErrConflictsWithFinal.Code, Message: fmt.Sprintf("the branch of block %s (height %d) holds another block than the final block %s", candidate.Hash, candidate.Height, v.final)}
	case relBelow:
		// Off the main chain and no higher than the final block: it forks
		// below it.
		return &chain.RuleError{Code: ErrConflictsWithFinal.Code, Message: fmt.Sprintf("block %s (height %d) is on a branch forking below the final block %s", candidate.Hash, candidate.Height, v.final)}
	}
	return nil
}

// Better prefers the higher justified checkpoint, then v2's rule. A
// candidate whose justified checkpoint is not known falls back on v2 (the
// manager computes it before it asks, knownLocked included).
func (v *V3) Better(candidate, current *Node) bool {
	if candidate.JustifiedKnown && current.JustifiedKnown && candidate.Justified != current.Justified {
		return candidate.Justified > current.Justified
	}
	return V2{}.Better(candidate, current)
}

// raise takes cp as the final checkpoint if it is higher.
func (v *V3) raise(cp chain.Checkpoint) {
	if higherFinal(cp, v.final) {
		v.final = cp
	}
}

// Started takes the final checkpoint of the state New loaded, if higher.
func (v *V3) Started(head *chain.Block, st *chain.State) error {
	v.raise(st.Finality().Finalized)
	return nil
}

// BlockChecked: nothing to learn from a side block.
func (v *V3) BlockChecked(b *chain.Block, hash chain.Hash) {}

// ChainMoved takes the final checkpoint of the new head's state, if
// higher.
func (v *V3) ChainMoved(head *chain.Block, added, reverted []*chain.Block, st *chain.State) {
	v.raise(st.Finality().Finalized)
}

// checkpointError is the refusal of a branch whose block at cp's height
// is another (reached from a block at height h).
func checkpointError(cp chain.Checkpoint, h uint64) error {
	return &chain.RuleError{Code: ErrConflictsWithCheckpoint.Code, Message: fmt.Sprintf("the chain has another block than the checkpoint %s at height %d (block at height %d refused)", cp, cp.Height, h)}
}
