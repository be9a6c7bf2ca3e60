package rpc

import "github.com/poslab/posd/chain"

// Evidence is an element of GET /v1/evidence and the data of the
// "evidence" and "slashing" events of /v1/events: one equivocation (two
// blocks signed by one forger for one slot) as this node knows it.
type Evidence struct {
	ID     chain.Hash    `json:"id"`
	Height uint64        `json:"height"` // where the forger equivocated
	Forger chain.Address `json:"forger"`
	Hashes []chain.Hash  `json:"hashes"` // the two blocks, lower hash first
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
