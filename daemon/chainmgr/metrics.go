package chainmgr

import (
	"errors"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/metrics"
)

// importOutcome names an import's result for the import histogram.
func importOutcome(err error) string {
	switch {
	case err == nil:
		return metrics.OutcomeMain
	case errors.Is(err, ErrSideBlock):
		return metrics.OutcomeSide
	case errors.Is(err, ErrKnownBlock):
		return metrics.OutcomeKnown
	case errors.Is(err, ErrUnknownParent):
		return metrics.OutcomeOrphan
	case IsPeerFault(err):
		return metrics.OutcomeInvalid
	}
	return metrics.OutcomeError
}

// timedStore times the store writes that move the main chain (Switch: one
// bbolt transaction per commit), so no commit site needs its own timer.
type timedStore struct {
	Store
	met *metrics.Chain
}

func (s timedStore) Switch(revert int, blocks []*chain.Block, undos []*chain.Undo, st *chain.State) error {
	start := time.Now()
	err := s.Store.Switch(revert, blocks, undos, st)
	s.met.ObserveCommit(time.Since(start))
	return err
}
