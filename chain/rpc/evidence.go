package rpc

import "github.com/poslab/posd/chain"

// Evidence is an element of GET /v1/evidence and the data of the
// "evidence" and "slashing" events of /v1/events: one offence as this
// node knows it: an equivocation (two blocks signed by one forger for one
// slot), a double vote or a surround vote (two votes of one voter).
type Evidence struct {
	ID chain.Hash `json:"id"`
	// Kind is "equivocation", "double_vote" or "surround_vote".
	Kind   chain.EvidenceKind `json:"kind"`
	Height uint64             `json:"height"` // of the offence (a vote's: the higher target)
	Forger chain.Address      `json:"forger"` // the offender: forger or voter
	// Hashes are the two blocks of an equivocation, lower hash first, or
	// the targets of the two votes, in the evidence's order.
	Hashes []chain.Hash `json:"hashes"`
	// IncludedIn is the main-chain block whose evidence slashed the
	// forger; absent while the evidence is pending.
	IncludedIn *uint64 `json:"included_in,omitempty"`
	// Slashed is the stake burned (absent while pending; 0 when
	// slash_percent is 0 or the stake floor held it).
	Slashed *uint64 `json:"slashed,omitempty"`
	SeenAt  int64   `json:"seen_at"` // unix ms, when this node learnt of it
}

// EvidenceEvent is an "evidence" (seen) or "slashing" (committed) event.
type EvidenceEvent struct {
	Type     string   `json:"type"`
	Evidence Evidence `json:"evidence"`
}
