package chain

import (
	"errors"
	"fmt"
)

// ErrorCode is the stable, machine-readable name of a broken rule. Codes
// travel in API error bodies and CLI messages, so they never change meaning.
type ErrorCode string

// RuleError reports which consensus or policy rule an input broke. Compare
// with errors.Is against the Err* sentinels below: two RuleErrors match when
// their codes are equal, whatever their messages say.
type RuleError struct {
	Code    ErrorCode
	Message string
}

func (e *RuleError) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is makes errors.Is(err, ErrBadNonce) true for any RuleError with that code.
func (e *RuleError) Is(target error) bool {
	// Targets are nearly always the sentinels themselves: a type
	// assertion, not errors.As's reflection, on every hot errors.Is.
	if t, ok := target.(*RuleError); ok {
		return t.Code == e.Code
	}
	var t *RuleError
	return errors.As(target, &t) && t.Code == e.Code
}

func newRule(code ErrorCode) *RuleError { return &RuleError{Code: code} }

// ruleErrorf returns a RuleError with the sentinel's code and a specific message.
func ruleErrorf(sentinel *RuleError, format string, args ...any) error {
	return &RuleError{Code: sentinel.Code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the rule code carried by err, or "" when err is not a rule error.
func CodeOf(err error) ErrorCode {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// Transaction rules, stateless.
var (
	ErrUnknownType    = newRule("unknown_type")
	ErrZeroAmount     = newRule("zero_amount")
	ErrBadAddress     = newRule("bad_address")
	ErrBadPublicKey   = newRule("bad_public_key")
	ErrFromMismatch   = newRule("from_mismatch")
	ErrBadSignature   = newRule("bad_signature")
	ErrWrongChain     = newRule("wrong_chain")
	ErrStakeNotSelf   = newRule("stake_not_self")
	ErrTxTooLarge     = newRule("tx_too_large")
	ErrAmountOverflow = newRule("overflow")
)

// Transaction rules, stateful.
var (
	ErrBadNonce          = newRule("bad_nonce")
	ErrInsufficientFunds = newRule("insufficient_funds")
	ErrInsufficientStake = newRule("insufficient_stake")
	ErrNotExchange       = newRule("exchange_not_allowed")
	// ErrFeeTooLow: the fee is below the genesis min_fee.
	ErrFeeTooLow = newRule("fee_too_low")
	// ErrStakeLimit: a STAKE would take the total lots over max_lots,
	// which bounds what one election costs.
	ErrStakeLimit = newRule("stake_limit")
	// ErrStakeFloor: the transaction would leave less than min_total_stake
	// staked (counted in whole lots), so the chain could halt.
	ErrStakeFloor = newRule("stake_floor")
)

// Block rules.
var (
	ErrBadHeight      = newRule("bad_height")
	ErrBadPrevHash    = newRule("bad_prev_hash")
	ErrBadRank        = newRule("bad_rank")
	ErrWrongForger    = newRule("wrong_forger")
	ErrEarlyTimestamp = newRule("early_timestamp")
	ErrFutureBlock    = newRule("future_timestamp")
	ErrBadBlockSig    = newRule("bad_block_signature")
	ErrBadTxRoot      = newRule("bad_tx_root")
	ErrBadSeedProof   = newRule("bad_seed_proof")
	ErrBadSeed        = newRule("bad_seed")
	ErrTooManyTxs     = newRule("too_many_txs")
	ErrNoStakers      = newRule("no_stakers")
	ErrBadGenesis     = newRule("bad_genesis")
)

// Evidence rules (evidence.go).
var (
	// ErrBadEvidence: not two validly signed headers of one forger for one
	// slot of this chain (malformed).
	ErrBadEvidence = newRule("bad_evidence")
	// ErrEvidenceTooOld: more than MaxEvidenceAge heights below the block.
	ErrEvidenceTooOld = newRule("evidence_too_old")
	// ErrDuplicateEvidence: two items of one block for one offence
	// (kind class, offender, height).
	ErrDuplicateEvidence = newRule("duplicate_evidence")
	// ErrAlreadySlashed: the offence was slashed on this branch.
	ErrAlreadySlashed = newRule("already_slashed")
	// ErrBadEvidenceRoot: the header's evidence_root is not the evidence's.
	ErrBadEvidenceRoot = newRule("bad_evidence_root")
	// ErrTooMuchEvidence: more than MaxBlockEvidence items.
	ErrTooMuchEvidence = newRule("too_much_evidence")
	// ErrNotSlashable: two well-formed votes of one voter that are not
	// the double or surround vote the evidence says they are.
	ErrNotSlashable = newRule("not_slashable")
)

// Vote rules (vote.go).
var (
	// ErrBadVote: a vote that is malformed whatever the chain (target not
	// above source).
	ErrBadVote = newRule("bad_vote")
	// ErrBadVoteSig: the vote's signature does not verify.
	ErrBadVoteSig = newRule("bad_vote_signature")
)

// Vote rules of a block (finality.go).
var (
	// ErrBadVoteRoot: the header's vote_root is not the votes'.
	ErrBadVoteRoot = newRule("bad_vote_root")
	// ErrTooManyVotes: more than the genesis max_block_votes.
	ErrTooManyVotes = newRule("too_many_votes")
	// ErrDuplicateVote: one voter's vote for one link twice in a block.
	ErrDuplicateVote = newRule("duplicate_vote")
	// ErrVoteFutureTarget: the target is not below the block (a vote can
	// only name blocks before the one carrying it).
	ErrVoteFutureTarget = newRule("vote_future_target")
	// ErrVoteTooOld: the target is more than MaxVoteAge heights below the block.
	ErrVoteTooOld = newRule("vote_too_old")
	// ErrVoteUnknownCheckpoint: the source or the target is not a
	// checkpoint of the block's branch (or one the branch no longer keeps).
	ErrVoteUnknownCheckpoint = newRule("vote_unknown_checkpoint")
	// ErrVoteSourceNotJustified: the source is not justified on the branch.
	ErrVoteSourceNotJustified = newRule("vote_source_not_justified")
	// ErrVoteNoStake: the voter held no lots in the state after the source.
	ErrVoteNoStake = newRule("vote_no_stake")
	// ErrVoteAlreadyCounted: the voter's vote for this link is already
	// included on the branch.
	ErrVoteAlreadyCounted = newRule("vote_already_counted")
)
