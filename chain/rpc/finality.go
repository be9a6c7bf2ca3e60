package rpc

import "github.com/poslab/posd/chain"

// Finality is GET /v1/finality: what the finality gadget (the v3 rules
// in docs/CONSENSUS.md) knows on the node's main chain. Justified and Finalized are the
// latest checkpoints of each kind; Checkpoints are the newest targets above
// Finalized (at most MaxFinalityCheckpoints, newest first), each with the
// tally of the votes the main chain carries for it.
type Finality struct {
	Head        uint64           `json:"head"`         // the head's height when the record was read
	EpochBlocks uint64           `json:"epoch_blocks"` // checkpoints are the heights that are multiples of it
	Justified   chain.Checkpoint `json:"justified"`
	Finalized   chain.Checkpoint `json:"finalized"`
	// Stalled is set while finality stalls (as in Status).
	Stalled     *FinalityStall    `json:"stalled,omitempty"`
	Checkpoints []CheckpointTally `json:"checkpoints"`
}

// MaxFinalityCheckpoints bounds Finality.Checkpoints.
const MaxFinalityCheckpoints = 8

// MaxFinalityStakers bounds each list of stakers in a CheckpointTally and
// in a FinalityStall (largest lots first); the *_more counts say how many
// were left out.
const MaxFinalityStakers = 32

// CheckpointTally is one target checkpoint and the votes for it.
type CheckpointTally struct {
	Height uint64     `json:"height"`
	Hash   chain.Hash `json:"hash"`
	// Source is the justified checkpoint the counted votes link from; the
	// weights are the lots of the state after it. Absent when no vote for
	// this target has been included yet.
	Source *chain.Checkpoint `json:"source,omitempty"`
	// VotedLots are the lots of the included votes for Source → this
	// target; TotalLots all the lots at Source. The target is justified
	// when VotedLots reaches ThresholdLots (more than 2/3 of TotalLots).
	VotedLots     uint64 `json:"voted_lots"`
	TotalLots     uint64 `json:"total_lots"`
	ThresholdLots uint64 `json:"threshold_lots"`
	// VotedStake and TotalStake are the same tally in coins of stake.
	VotedStake uint64 `json:"voted_stake"`
	TotalStake uint64 `json:"total_stake"`
	Justified  bool   `json:"justified"`
	Final      bool   `json:"final"`
	// Voters voted for this target; Missing are the stakers at Source
	// that did not (yet). Largest lots first, then address; at most
	// MaxFinalityStakers each.
	Voters      []FinalityStaker `json:"voters"`
	VotersMore  int              `json:"voters_more,omitempty"`
	Missing     []FinalityStaker `json:"missing"`
	MissingMore int              `json:"missing_more,omitempty"`
}

// FinalityStaker is a staker in a tally: its address, stake and lots at
// the tally's source.
type FinalityStaker struct {
	Address chain.Address `json:"address"`
	Stake   uint64        `json:"stake"`
	Lots    uint64        `json:"lots"`
}

// FinalityStall says that finality stalls: the head is more than
// FinalityStallBlocks heights above the finalized checkpoint, because more
// than a third of the lots did not vote (offline, or keys no node runs).
// Blocks go on; nothing new becomes final until enough of the missing
// stake votes.
type FinalityStall struct {
	// Behind is head height − finalized height.
	Behind uint64 `json:"behind"`
	// MissingLots of TotalLots did not vote for the newest checkpoint;
	// MissingPercent is 100·MissingLots/TotalLots.
	MissingLots    uint64  `json:"missing_lots"`
	TotalLots      uint64  `json:"total_lots"`
	MissingStake   uint64  `json:"missing_stake"`
	MissingPercent float64 `json:"missing_percent"`
	// Missing are the stakers that did not vote, largest first, at most
	// MaxFinalityStakers.
	Missing     []FinalityStaker `json:"missing"`
	MissingMore int              `json:"missing_more,omitempty"`
}

// FinalityStallBlocks is how far the head may run ahead of the finalized
// checkpoint before a node reports finality as stalled: with epoch_blocks 1
// and every staker voting, final trails the head by about 2 blocks, so 8
// means several beats without progress.
const FinalityStallBlocks = 8

// ThresholdLots is the least number of lots that is more than 2/3 of
// total: floor(2·total/3) + 1, without overflow.
func ThresholdLots(total uint64) uint64 {
	return total/3*2 + (total%3)*2/3 + 1
}

// Finality events of /v1/events.
const (
	EventJustified = "justified"
	EventFinalized = "finalized"
)

// FinalityEvent is a "justified" or "finalized" event of /v1/events: its
// data is {"checkpoint":{"height","hash"},"time"}, time in unix ms when
// this node saw the checkpoint become so.
type FinalityEvent struct {
	Type       string           `json:"-"`
	Checkpoint chain.Checkpoint `json:"checkpoint"`
	Time       int64            `json:"time"`
}
