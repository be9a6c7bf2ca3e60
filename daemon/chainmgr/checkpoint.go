package chainmgr

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/poslab/posd/chain"
)

// Weak subjectivity (DESIGN "v3 rules", issue 20): a fresh node may be
// given a checkpoint, a block's height and hash learnt out of band, and
// refuses any chain without it. Finality protects only a node that was
// online when blocks became final; a node syncing afresh cannot tell an
// old key-holder's long-range rewrite from the real chain by the chain
// alone, so the operator tells it.

// CheckpointError is New's refusal of a stored chain that holds another
// block at the checkpoint's height than the checkpoint's.
type CheckpointError struct {
	Checkpoint chain.Checkpoint
	Stored     chain.Hash // the stored main chain's block at that height
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("this node's chain has block %s at height %d, not the checkpoint %s: it is another chain; start with an empty home to sync the checkpoint's chain, or without --checkpoint to keep this one",
		e.Stored, e.Checkpoint.Height, e.Checkpoint)
}

// checkpointGuard is the node's weak-subjectivity checkpoint
// (Config.Checkpoint) and the checks made against it. A nil guard is no
// checkpoint: it refuses nothing.
type checkpointGuard struct {
	cp      chain.Checkpoint
	refused *atomic.Int64 // Stats.CheckpointRefused
	log     *slog.Logger
}

// newCheckpointGuard is the guard of cp (nil: none, a nil guard).
func newCheckpointGuard(cp *chain.Checkpoint, refused *atomic.Int64, log *slog.Logger) *checkpointGuard {
	if cp == nil {
		return nil
	}
	return &checkpointGuard{cp: *cp, refused: refused, log: log}
}

// checkStored refuses a stored main chain that reached the checkpoint's
// height (head) with another block.
func (g *checkpointGuard) checkStored(st Store, head uint64) error {
	if g == nil || head < g.cp.Height {
		return nil
	}
	h, err := st.HashAt(g.cp.Height)
	if err != nil {
		return fmt.Errorf("chainmgr: read the block at the checkpoint's height: %w", err)
	}
	if h != g.cp.Hash {
		return &CheckpointError{Checkpoint: g.cp, Stored: h}
	}
	return nil
}

// check refuses a block at the checkpoint's height with another hash. It
// runs first on every import path, before any other work: the blocks
// above it then have no parent, so none is taken.
func (g *checkpointGuard) check(b *chain.Block, hash chain.Hash) error {
	if g == nil || b.Height != g.cp.Height || hash == g.cp.Hash {
		return nil
	}
	n := g.refused.Add(1)
	err := checkpointError(g.cp, b.Height)
	if n&(n-1) == 0 {
		// The 1st, 2nd, 4th… refusal: a peer on another chain offers the
		// block again and again, the log says so without filling up.
		g.log.Warn("block refused", "height", b.Height, "hash", hash.String(), "forger", string(b.Forger), "refused", n, "err", err.Error())
	}
	return err
}
