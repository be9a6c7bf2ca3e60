package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/poslab/posd/chain/rpc"
)

// FinalityBackend is a Backend with a finality gadget (the v3 rules, docs/CONSENSUS.md).
// The API asks for it by type assertion: GET /v1/finality on a backend
// without it answers 501 not_supported, as does a Finality that returns
// ErrNotSupported (finality turned off).
type FinalityBackend interface {
	// Finality is the record of the main chain: the justified and
	// finalized checkpoints and the tallies of the newest targets above
	// the finalized one (at most rpc.MaxFinalityCheckpoints, newest
	// first). It must not wait for the chain lock.
	Finality() (rpc.Finality, error)
}

// FinalityEvents is a Backend that announces checkpoints becoming justified
// and finalized. The hub subscribes once while /v1/events has subscribers
// and fans the events out with the blocks, under the same byte budgets.
type FinalityEvents interface {
	// SubscribeFinality delivers "justified" and "finalized" events (in
	// the order they happened, one per checkpoint) until cancel is called.
	// The channel should be buffered; the node may drop events for a
	// subscriber that does not keep up, never block on it.
	SubscribeFinality() (ch <-chan rpc.FinalityEvent, cancel func())
}

// ErrNotSupported is what optional Backend features return when the node
// does not offer them; the API answers 501 not_supported.
var ErrNotSupported = errors.New("not supported by this node")

// finality is GET /v1/finality: rpc.Finality.
func (s *server) finality(w http.ResponseWriter, r *http.Request) error {
	fb, ok := s.b.(FinalityBackend)
	if !ok {
		return apiErr(codeNotSupported, "this node does not run finality")
	}
	f, err := fb.Finality()
	if errors.Is(err, ErrNotSupported) {
		return apiErr(codeNotSupported, "this node does not run finality")
	}
	if err != nil {
		return err
	}
	// A copy: the caps below must not write into the backend's record.
	f.Checkpoints = slices.Clone(f.Checkpoints[:min(len(f.Checkpoints), rpc.MaxFinalityCheckpoints)])
	if f.Checkpoints == nil {
		f.Checkpoints = []rpc.CheckpointTally{}
	}
	for i := range f.Checkpoints {
		c := &f.Checkpoints[i]
		c.Voters, c.VotersMore = capStakers(c.Voters, c.VotersMore)
		c.Missing, c.MissingMore = capStakers(c.Missing, c.MissingMore)
	}
	if st := f.Stalled; st != nil {
		cp := *st
		cp.Missing, cp.MissingMore = capStakers(cp.Missing, cp.MissingMore)
		f.Stalled = &cp
	}
	s.writeJSON(w, r, http.StatusOK, f)
	return nil
}

// capStakers keeps the answer bounded whatever the backend hands over:
// at most rpc.MaxFinalityStakers, the rest counted in more; never null.
func capStakers(list []rpc.FinalityStaker, more int) ([]rpc.FinalityStaker, int) {
	if len(list) > rpc.MaxFinalityStakers {
		more += len(list) - rpc.MaxFinalityStakers
		list = list[:rpc.MaxFinalityStakers]
	}
	if list == nil {
		list = []rpc.FinalityStaker{}
	}
	return list, more
}

// finalityEvents subscribes to the backend's finality events: a nil
// channel (never ready) and a no-op cancel when it has none.
func finalityEvents(b Backend) (<-chan rpc.FinalityEvent, func()) {
	fe, ok := b.(FinalityEvents)
	if !ok {
		return nil, func() {}
	}
	return fe.SubscribeFinality()
}
