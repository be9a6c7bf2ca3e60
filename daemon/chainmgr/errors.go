package chainmgr

import (
	"errors"
	"fmt"

	"github.com/poslab/posd/chain"
)

// Outcomes of ProcessBlock that are nobody's fault.
var (
	// ErrKnownBlock: the block is already on the main chain, or stored on a
	// side branch that still loses the fork choice.
	ErrKnownBlock = errors.New("block already known")
	// ErrSideBlock: the block is valid and kept, but its branch loses the
	// fork choice. Not worth forwarding.
	ErrSideBlock = errors.New("side block: its branch does not win the fork choice")
	// ErrUnknownParent: the block's parent is not stored; sync first.
	ErrUnknownParent = errors.New("unknown parent")
	// ErrClosed: the manager is shutting down.
	ErrClosed = errors.New("chain manager closed")
)

// Rule errors the manager itself finds.
var (
	// ErrReorgTooDeep refuses a branch that forks more than MaxReorgDepth
	// below the head. Not proof of misbehaviour: a peer long partitioned
	// away sends one honestly.
	ErrReorgTooDeep = &chain.RuleError{Code: "reorg_too_deep"}
	// ErrInvalidAncestor refuses a block whose parent is known invalid.
	ErrInvalidAncestor = &chain.RuleError{Code: "invalid_ancestor"}
	// ErrConflictsWithFinal refuses a branch that does not contain the
	// latest final block (fork choice v3, issue 20: a peer fault). The
	// default fork choice (V2) never returns it; it is here for the
	// finality rule's ForkChoice (forkchoice.go). Like any rule error
	// binding a block's hash, the refused block is remembered invalid:
	// a final block is never reverted, so neither is the verdict.
	ErrConflictsWithFinal = &chain.RuleError{Code: "conflicts_with_final"}
	// ErrConflictsWithCheckpoint refuses a block at the height of the
	// node's weak-subjectivity checkpoint (Config.Checkpoint, `posd start
	// --checkpoint`) with another hash, and a branch holding one: a peer
	// fault (the peer serves a chain this node was told is not its
	// network's). A code of its own, not conflicts_with_final: the
	// checkpoint is the operator's word, not a verdict of the chain, so
	// the block is not remembered invalid (a mistyped checkpoint, fixed
	// at a restart, must leave the real chain acceptable).
	ErrConflictsWithCheckpoint = &chain.RuleError{Code: "conflicts_with_checkpoint"}
	// ErrKnownInvalid is wrapped (with the rule error of the first
	// refusal) when a block already found invalid comes again.
	ErrKnownInvalid = errors.New("block known invalid")
)

// LocalError is a failure of this node (its disk, its state), never the
// fault of whoever sent the block.
type LocalError struct {
	Op  string
	Err error
}

func (e *LocalError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *LocalError) Unwrap() error { return e.Err }

func local(op string, err error) error {
	if err == nil {
		return nil
	}
	var le *LocalError
	if errors.As(err, &le) {
		return err
	}
	return &LocalError{Op: op, Err: err}
}

// HaltedError is returned by every import once the manager halted: it
// found its state inconsistent and will not go on until restarted.
type HaltedError struct{ Cause error }

func (e *HaltedError) Error() string { return "node halted (restart it): " + e.Cause.Error() }
func (e *HaltedError) Unwrap() error { return e.Cause }

// IsPeerFault reports whether err proves that whoever sent the block (or
// transaction) broke a rule: only then may a peer be penalised. Our disk,
// our clock, our halted state, a shutdown, an unknown parent, a branch
// forking too deep and a known block are nobody's fault.
func IsPeerFault(err error) bool {
	if err == nil {
		return false
	}
	var le *LocalError
	var he *HaltedError
	switch {
	case errors.As(err, &le), errors.As(err, &he),
		errors.Is(err, ErrClosed), errors.Is(err, ErrKnownBlock), errors.Is(err, ErrSideBlock),
		errors.Is(err, ErrUnknownParent):
		return false
	}
	var re *chain.RuleError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Code {
	case chain.ErrFutureBlock.Code, ErrReorgTooDeep.Code:
		return false
	}
	return true
}

// remembered reports whether a rule error condemns the block's hash for
// good. Block hashes leave signatures out, and the tx root binds the
// transactions only once it was checked: a peer can send a real block's
// header with a garbled signature or garbled transactions, and remembering
// that hash as invalid would make the real block unacceptable. A future
// timestamp is about our clock, too deep about our head, a conflict with
// the checkpoint about our configuration.
func remembered(err error) (chain.ErrorCode, bool) {
	if !IsPeerFault(err) {
		return "", false
	}
	var re *chain.RuleError
	if !errors.As(err, &re) {
		return "", false
	}
	switch re.Code {
	case chain.ErrBadSignature.Code, chain.ErrBadBlockSig.Code, chain.ErrBadTxRoot.Code,
		chain.ErrTooManyTxs.Code, ErrConflictsWithCheckpoint.Code:
		return "", false
	}
	if errors.Is(err, ErrKnownInvalid) {
		return "", false // already remembered
	}
	return re.Code, true
}

func knownInvalid(h chain.Hash, code chain.ErrorCode) error {
	return fmt.Errorf("%w: %s: %w", ErrKnownInvalid, h, &chain.RuleError{Code: code, Message: "block " + h.String() + " was found invalid before (" + string(code) + ")"})
}
