package daemon

import (
	"slices"

	"github.com/poslab/posd/chain"
)

// PassedOver implements api.PassedOverer for the dashboard: the candidates
// the election on parent ranked before rank, who let their slots pass. It
// reads only the election cache (never runs an election), so it answers nil
// for parents the node no longer has at hand.
func (n *Node) PassedOver(parent chain.Hash, rank uint32) []chain.Address {
	if rank == 0 {
		return nil
	}
	cands, ok := n.chain.CachedCandidates(parent)
	if !ok {
		return nil
	}
	return slices.Clone(cands[:min(int(rank), len(cands))])
}
