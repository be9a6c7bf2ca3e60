package chainmgr

import (
	"cmp"
	"slices"
	"sync"

	"github.com/poslab/posd/chain"
)

// Snapshot is the chain as one commit left it: the head, the state after
// it, and what readers derive from them (accounts in address order, stakers
// largest first, the election for the next height), each computed once, on
// first use, by whoever asks first. Its state is an O(1) copy of the
// manager's (chain.State.Clone shares what later blocks do not change). A Snapshot never changes: the manager
// builds a new one after each commit and swaps it in atomically, so a
// reader holding one never waits for an import and never sees half of one.
// The slices it returns are shared: callers must not modify them.
type Snapshot struct {
	version  uint64 // 1 for the first snapshot of a Manager, +1 per commit
	head     *chain.Block
	headHash chain.Hash
	state    *chain.State // never modified after the snapshot is built
	elect    *elections
	final    chain.Checkpoint // the node's final checkpoint (Final)

	accountsOnce sync.Once
	accounts     []chain.AccountEntry

	lotsOnce sync.Once
	lotSize  uint64 // of lots
	lots     uint64 // total election lots (Lots)

	stakesOnce sync.Once
	stakers    []chain.AccountEntry
	totalStake uint64
}

func newSnapshot(version uint64, head *chain.Block, state *chain.State, elect *elections, final chain.Checkpoint) *Snapshot {
	return &Snapshot{version: version, head: head, headHash: head.Hash(), state: state, elect: elect, final: final}
}

// Version orders the snapshots of one Manager: of two, the one with the
// higher version is the later state of the chain, a reorganised one
// included. The mempool uses it to tell a late view from a new one.
func (s *Snapshot) Version() uint64 { return s.version }

// Head is the head block.
func (s *Snapshot) Head() *chain.Block { return s.head }

// HeadHash is the head block's hash.
func (s *Snapshot) HeadHash() chain.Hash { return s.headHash }

// Height is the head's height.
func (s *Snapshot) Height() uint64 { return s.head.Height }

// Account is a's account after the head (zero if never seen). With it a
// Snapshot is the mempool's StateView.
func (s *Snapshot) Account(a chain.Address) chain.Account { return s.state.Account(a) }

// Len is the number of non-zero accounts.
func (s *Snapshot) Len() int { return s.state.Len() }

// Accounts lists every non-zero account in address order.
func (s *Snapshot) Accounts() []chain.AccountEntry {
	s.accountsOnce.Do(func() { s.accounts = s.state.Accounts() })
	return s.accounts
}

// Stakers lists the accounts with stake, largest stake first, then by
// address, and the total stake.
func (s *Snapshot) Stakers() ([]chain.AccountEntry, uint64) {
	s.stakesOnce.Do(func() {
		s.stakers = s.state.Stakers()
		for _, e := range s.stakers {
			s.totalStake += e.Stake
		}
		slices.SortStableFunc(s.stakers, func(a, b chain.AccountEntry) int { return cmp.Compare(b.Stake, a.Stake) })
	})
	return s.stakers, s.totalStake
}

// Candidates are the forgers elected for the block after the head, best
// first. The election runs once per head, off every lock (the manager
// starts it as soon as the snapshot is published).
func (s *Snapshot) Candidates() []chain.Address {
	return s.elect.candidates(s.head, s.state)
}

// RankOf is a's rank among the candidates for the next block, or -1.
func (s *Snapshot) RankOf(a chain.Address) int {
	return slices.Index(s.Candidates(), a)
}

// SameState reports whether two snapshots hold the same accounts.
func (s *Snapshot) SameState(o *Snapshot) bool { return s.state.Equal(o.state) }

// warm runs the election in the background, so the first reader after a
// commit finds it ready. The listings are left to whoever asks: building
// them costs what the state holds, not what the block changed.
func (s *Snapshot) warm() {
	s.Candidates()
}

// Lots is the total election lots of the snapshot's state for lotSize,
// counted once (for the first lot size asked: a node has one genesis).
// With it a Snapshot is a chain.LotView, so chain.CheckTx on it checks the
// stake totals (stake_limit, stake_floor) as State.Apply would.
func (s *Snapshot) Lots(lotSize uint64) uint64 {
	s.lotsOnce.Do(func() { s.lotSize, s.lots = lotSize, s.state.Lots(lotSize) })
	if lotSize != s.lotSize {
		return s.state.Lots(lotSize)
	}
	return s.lots
}

var _ chain.LotView = (*Snapshot)(nil)

// Slashed returns the slashing of forger for height on this snapshot's
// main chain.
func (s *Snapshot) Slashed(forger chain.Address, height uint64) (chain.Slashing, bool) {
	return s.state.Slashed(forger, height)
}

// ReadState is the state after the head, for elections and reads: callers
// must not change it (chain.ElectionTable may be called on it).
func (s *Snapshot) ReadState() *chain.State { return s.state }

// Finality is the finality record of the snapshot's main chain (DESIGN
// "v3 rules"): justified and final checkpoints and the tallies of the
// recent ones, as the votes included on this branch prove them. It is
// part of the state after the head, so reading it never waits for an
// import. Callers must not change it. Its Finalized may be below Final
// after a switch to a branch whose votes prove less (finality.go): what
// the node reports as final is Final.
func (s *Snapshot) Finality() *chain.Finality { return s.state.Finality() }

// Final is the node's final checkpoint: the highest final checkpoint the
// main chain's record ever showed this node, never lower from one
// snapshot to the next (also across restarts), and always on the main
// chain under fork choice v3 (finality.go). The zero checkpoint or
// genesis: nothing beyond genesis is final.
func (s *Snapshot) Final() chain.Checkpoint { return s.final }

// IsFinal reports whether the main-chain block at height is final on this
// node: at or below Final, while finality runs (the record has
// checkpoints, or something above genesis was final).
func (s *Snapshot) IsFinal(height uint64) bool {
	return s.state.Finality().IsFinal(height) || s.final.Height > 0 && height <= s.final.Height
}
