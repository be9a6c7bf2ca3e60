package votepool

import "github.com/poslab/posd/chain"

// Kinds of slashable vote pairs (DESIGN "v3 rules", slashing).
const (
	KindDoubleVote   = "double_vote"
	KindSurroundVote = "surround_vote"
)

// Slashable reports whether two votes of one voter form a slashable pair,
// and which kind: a double vote (one target height, two different links)
// or a surround vote (s1 < s2 < t2 < t1 by heights, either way round).
// Votes of different keys, and a vote with itself, are never slashable.
// The honest voter (daemon/voter) checks every pair it signs against this.
func Slashable(a, b *chain.Vote) (kind string, ok bool) {
	if a.PublicKey != b.PublicKey {
		return "", false
	}
	if a.Target.Height == b.Target.Height {
		if a.Source != b.Source || a.Target.Hash != b.Target.Hash {
			return KindDoubleVote, true
		}
		return "", false
	}
	if surrounds(a, b) || surrounds(b, a) {
		return KindSurroundVote, true
	}
	return "", false
}

// surrounds: outer's link strictly contains inner's.
func surrounds(outer, inner *chain.Vote) bool {
	return outer.Source.Height < inner.Source.Height && inner.Target.Height < outer.Target.Height
}
