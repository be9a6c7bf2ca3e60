package votepool

import "github.com/poslab/posd/chain"

// Kinds of slashable vote pairs (the v3 rules, docs/CONSENSUS.md: slashing): the chain's
// names, so evidence built from a pair the pool reports carries the kind
// the chain checks.
const (
	KindDoubleVote   = chain.SlashDoubleVote
	KindSurroundVote = chain.SlashSurroundVote
)

// Slashable reports whether two votes of one voter form a slashable pair,
// and which kind. It is the chain's predicate (chain.SlashableVotes), named
// here for the pool's callers; the honest voter (daemon/voter) checks
// every pair it signs against it.
func Slashable(a, b *chain.Vote) (kind string, ok bool) { return chain.SlashableVotes(a, b) }
