package apibackend

import (
	"cmp"
	"slices"
	"strings"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/api"
)

// Finality is read from the chain manager's snapshot (the record is part
// of the state after the head), so it never waits for an import. The
// finalized checkpoint reported is the node's (Snapshot.Final: the highest
// the main chain ever showed it, never lower), not the record's, which a
// switch to a branch with fewer votes included may lower; the justified
// checkpoint and the tallies are the main chain's record.

// FinalitySource is the chain's finality event feed (chainmgr.Manager).
type FinalitySource interface {
	SubscribeFinality() (<-chan rpc.FinalityEvent, func())
}

var (
	_ api.FinalityBackend = (*Backend)(nil)
	_ api.FinalityEvents  = (*Backend)(nil)
)

// Finality is GET /v1/finality: the node's final checkpoint and the
// record of the main chain, the newest checkpoints above the finalized one
// first (the finalized one itself when nothing is above it).
func (b *Backend) Finality() (rpc.Finality, error) {
	snap := b.p.Chain.Snapshot()
	rec, final := snap.Finality(), snap.Final()
	out := rpc.Finality{
		Head: snap.Height(), EpochBlocks: max(b.p.Genesis.EpochBlocks, 1),
		Justified: rec.Justified, Finalized: final,
		Checkpoints: []rpc.CheckpointTally{},
	}
	cps := rec.Checkpoints()
	for i := len(cps) - 1; i >= 0 && len(out.Checkpoints) < rpc.MaxFinalityCheckpoints; i-- {
		if cps[i].Height <= final.Height && len(out.Checkpoints) > 0 {
			break
		}
		out.Checkpoints = append(out.Checkpoints, b.tally(rec, cps[i]))
	}
	out.Stalled = b.stall(snap.Height(), final.Height, out.Checkpoints)
	return out, nil
}

// tally is one checkpoint's rpc form, with the link that weighs most
// (from the justified source an honest voter uses).
func (b *Backend) tally(rec *chain.Finality, ci chain.CheckpointInfo) rpc.CheckpointTally {
	t := rpc.CheckpointTally{Height: ci.Height, Hash: ci.Hash, TotalLots: ci.TotalLots,
		Justified: ci.Justified, Final: ci.Final, Voters: []rpc.FinalityStaker{}, Missing: []rpc.FinalityStaker{}}
	lot := max(b.p.Genesis.LotSize, 1)
	var best *chain.LinkTally
	for i := range ci.Links {
		l := &ci.Links[i]
		if best == nil || l.Lots > best.Lots || l.Lots == best.Lots && l.Source == rec.Justified {
			best = l
		}
	}
	if best == nil {
		// No vote included yet (Source stays absent): everyone at the
		// newest justified checkpoint, an honest voter's source, is missing.
		t.ThresholdLots = rpc.ThresholdLots(t.TotalLots)
		if table, ok := rec.Weights(rec.Justified); ok {
			for _, e := range table.Entries() {
				t.Missing = append(t.Missing, rpc.FinalityStaker{Address: e.Voter, Lots: e.Lots, Stake: e.Lots * lot})
			}
			t.TotalLots, t.ThresholdLots = table.Total(), rpc.ThresholdLots(table.Total())
			t.TotalStake = table.Total() * lot
		}
		sortStakers(t.Missing)
		return t
	}
	src := best.Source
	t.Source = &src
	t.VotedLots, t.TotalLots = best.Lots, best.Total
	t.ThresholdLots = rpc.ThresholdLots(best.Total)
	t.VotedStake, t.TotalStake = best.Lots*lot, best.Total*lot
	table, _ := rec.Weights(best.Source)
	for _, v := range best.Voters {
		var lots uint64
		if table != nil {
			lots = table.Lots(v)
		}
		t.Voters = append(t.Voters, rpc.FinalityStaker{Address: v, Lots: lots, Stake: lots * lot})
	}
	for _, m := range best.Missing {
		t.Missing = append(t.Missing, rpc.FinalityStaker{Address: m.Voter, Lots: m.Lots, Stake: m.Lots * lot})
	}
	sortStakers(t.Voters)
	sortStakers(t.Missing)
	return t
}

// sortStakers orders a tally's stakers largest lots first, then by address.
func sortStakers(s []rpc.FinalityStaker) {
	slices.SortFunc(s, func(a, b rpc.FinalityStaker) int {
		if c := cmp.Compare(b.Lots, a.Lots); c != 0 {
			return c
		}
		return strings.Compare(string(a.Address), string(b.Address))
	})
}

// stall says whether finality stalls (the head more than
// rpc.FinalityStallBlocks above the final height) and which stake is
// missing from the newest tally (tallies newest first).
func (b *Backend) stall(head, final uint64, tallies []rpc.CheckpointTally) *rpc.FinalityStall {
	if head < final || head-final <= rpc.FinalityStallBlocks {
		return nil
	}
	st := &rpc.FinalityStall{Behind: head - final, Missing: []rpc.FinalityStaker{}}
	// The newest tally says who is missing; votes for the head itself may
	// still be on their way, so the newest one below it. A tally without
	// a source (no vote included at all: nobody votes) lists every staker
	// at the justified checkpoint as missing.
	var t *rpc.CheckpointTally
	for i := range tallies {
		t = &tallies[i]
		if tallies[i].Height < head {
			break
		}
	}
	if t != nil {
		st.TotalLots = t.TotalLots
		st.Missing = append(st.Missing, t.Missing...)
		for _, m := range t.Missing {
			st.MissingLots += m.Lots
			st.MissingStake += m.Stake
		}
		if st.TotalLots > 0 {
			st.MissingPercent = 100 * float64(st.MissingLots) / float64(st.TotalLots)
		}
	}
	return st
}

// finalityFields fills the status's finality fields from the snapshot.
func (b *Backend) finalityFields(s *rpc.Status) {
	f, _ := b.Finality()
	jh, jhash := f.Justified.Height, f.Justified.Hash
	fh, fhash := f.Finalized.Height, f.Finalized.Hash
	s.JustifiedHeight, s.JustifiedHash = &jh, &jhash
	s.FinalizedHeight, s.FinalizedHash = &fh, &fhash
	s.FinalityStalled = f.Stalled
}

// SubscribeFinality delivers the chain's justified and finalized events
// (api.FinalityEvents); a chain without a feed delivers none.
func (b *Backend) SubscribeFinality() (<-chan rpc.FinalityEvent, func()) {
	if fs, ok := b.p.Chain.(FinalitySource); ok {
		return fs.SubscribeFinality()
	}
	return nil, func() {}
}
