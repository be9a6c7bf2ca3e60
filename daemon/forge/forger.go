// Package forge is the node's block producer: the forger (forging policy,
// ranks and slots, forge limits), the heartbeat that protects recent
// payments with empty blocks, and the lab's hooks into forging (evidence
// to carry, a byzantine behaviour). Everything it needs of the rest of the
// node comes through the small interfaces Chain, Pool, Votes and Lab.
package forge

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/keystore"
)

// Chain is what the forger needs of the chain: the current snapshot
// (head, state, the election for the next height) and a way to import
// the block it forged. What the heartbeat needs of finality comes
// through Votes.
type Chain interface {
	Snapshot() *chainmgr.Snapshot
	ProcessOwnBlock(b *chain.Block) error
	BlockByHeight(h uint64) (*chain.Block, error)
	ImportCostPerTx() time.Duration
}

// Pool is what the forger needs of the mempool.
type Pool interface {
	Pending(max int, st mempool.StateView) []chain.Transaction
	Oldest() (time.Time, bool)
	Remove(ids ...chain.Hash)
}

// Votes is what the forger needs of finality (DESIGN "v3 rules"): the
// votes to put in a block and the finalized height the heartbeat beats
// up to. A nil Votes is a node without finality: no votes, v2's
// heartbeat.
type Votes interface {
	// Select returns at most max pooled votes that a block on snap's
	// head may carry (chain.State.CheckVote on the head's state).
	Select(snap *chainmgr.Snapshot, max int) []chain.Vote
	// Ready reports whether the pool holds enough includable votes for
	// snap's head to justify it: a block forged now carries them, so the
	// forger need not give late votes their grace (VoteGrace).
	Ready(snap *chainmgr.Snapshot) bool
	// Finalized is the finalized height of snap's branch, and whether
	// finality runs at all (some stake votes): when it does not, the
	// heartbeat keeps v2's rule (max_reorg deep), else it beats until the
	// newest block with transactions is final.
	Finalized(snap *chainmgr.Snapshot) (height uint64, on bool)
	// Forged says this node's block b is the new head, on the forger's
	// goroutine right after its import: the node votes on it now, not
	// when the chain event reaches the voter behind the pool's reset of
	// the block's transactions (10-30 ms under load), time in which the
	// forger of the next block would sit waiting for that very vote.
	Forged(b *chain.Block)
}

// Config is what a Forger is made of.
type Config struct {
	Chain   Chain
	Pool    Pool
	Key     *keystore.Key
	Genesis *chain.Genesis
	Log     *slog.Logger
	Now     func() time.Time
	// Forged and Evicted are the node's counters (metrics).
	Forged, Evicted *atomic.Int64
	// BlockSize and BlockInterval are the initial forging policy.
	BlockSize     int
	BlockInterval time.Duration
	Lab           Lab
	// Votes gives the forger votes to include and the finalized height
	// (nil: no finality).
	Votes Votes
}

// New returns a forger; Run starts it.
func New(c Config) *Forger {
	f := &Forger{
		chain: c.Chain, pool: c.Pool, key: c.Key, g: c.Genesis, log: c.Log, now: c.Now,
		wake: make(chan struct{}, 1), forged: c.Forged, evicted: c.Evicted, lab: c.Lab, votes: c.Votes,
	}
	if f.forged == nil {
		f.forged = new(atomic.Int64)
	}
	if f.evicted == nil {
		f.evicted = new(atomic.Int64)
	}
	f.SetPolicy(c.BlockSize, c.BlockInterval)
	return f
}

// SetPublish sets how forged blocks are gossiped (nil: no network); call
// it before Run.
func (f *Forger) SetPublish(publish func(*chain.Block)) { f.publish = publish }

// Publish gossips b as a forged block is (nothing without a network).
func (f *Forger) Publish(b *chain.Block) {
	if f.publish != nil {
		f.publish(b)
	}
}

// Rounds counts the forger's looks at the chain.
func (f *Forger) Rounds() int64 { return f.rounds.Load() }

// Forger forges whenever this node is an elected candidate and the forging
// policy says a block is due. It wakes on new transactions, new heads
// (poke) and timers; between them it sleeps.
type Forger struct {
	chain   Chain
	pool    Pool
	key     *keystore.Key
	g       *chain.Genesis
	log     *slog.Logger
	now     func() time.Time
	publish func(*chain.Block) // gossip a forged block (nil: no network)

	blockSize     atomic.Int64
	blockInterval atomic.Int64 // ns
	wake          chan struct{}

	// beat remembers, for the last head the forger looked at, the height
	// of the newest block with transactions at or below it (heartbeat.go).
	beat beatMemo
	// rounds counts the forger's looks at the chain (tests wait on it to
	// know the forger saw a moved clock or head).
	rounds atomic.Int64

	forged, evicted *atomic.Int64 // the node's counters

	lab Lab // lab.go: evidence to carry, a byzantine behaviour

	votes Votes // votes to include, the finalized height; nil: none
}

// Policy returns the forging policy: block size and interval.
func (f *Forger) Policy() (int, time.Duration) {
	return int(f.blockSize.Load()), time.Duration(f.blockInterval.Load())
}

// SetPolicy changes the forging policy; zero values keep the current ones.
func (f *Forger) SetPolicy(size int, interval time.Duration) {
	if size > 0 {
		f.blockSize.Store(int64(size))
	}
	if interval > 0 {
		f.blockInterval.Store(int64(interval))
	}
	f.Poke()
}

// Poke wakes the forger without blocking.
func (f *Forger) Poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run forges until ctx ends.
func (f *Forger) Run(ctx context.Context) {
	var headSeen chain.Hash
	var headSeenAt time.Time
	for {
		wait := f.forgeOnce(&headSeen, &headSeenAt)
		f.rounds.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// maxForgeSleep bounds how long the forger sleeps without looking again.
const maxForgeSleep = time.Second

// forgeOnce forges a block if one is due and returns how long to sleep
// before looking again. The policy: a block is due when block_size
// transactions are executable or the oldest has waited block_interval. The
// candidate at rank 0 forges at once; the candidate at rank k waits k slots
// from the moment the block became due (and, as consensus demands, k slots
// after the parent's timestamp), giving the better-ranked forgers their turn.
func (f *Forger) forgeOnce(headSeen *chain.Hash, headSeenAt *time.Time) time.Duration {
	now := f.now()
	snap := f.chain.Snapshot()
	head := snap.Head()
	if snap.HeadHash() != *headSeen {
		*headSeen, *headSeenAt = snap.HeadHash(), now
	}
	rank := snap.RankOf(f.key.Address())
	if rank < 0 || !f.lab.mayForge(head.Height+1) {
		return maxForgeSleep
	}
	blockSize, interval := f.Policy()
	ready := f.pool.Pending(blockSize, snap)
	if len(ready) == 0 && !f.lab.evidenceDue() {
		return f.heartbeat(snap, rank, now)
	}
	oldest, _ := f.pool.Oldest()
	dueAt := oldest.Add(interval)
	if len(ready) >= blockSize {
		dueAt = oldest
	}
	if dueAt.Before(*headSeenAt) {
		dueAt = *headSeenAt
	}
	votesBy := f.voteWait(snap)
	if dueAt.Before(votesBy) {
		dueAt = votesBy
	}
	slot := time.Duration(f.g.SlotMs) * time.Millisecond
	forgeAt := dueAt.Add(time.Duration(rank) * slot)
	earliest := time.UnixMilli(head.Timestamp + int64(rank)*f.g.SlotMs)
	if earliest.After(forgeAt) {
		forgeAt = earliest
	}
	if beat, ok := f.beatAt(snap, rank); ok {
		beat = f.afterVotes(beat, votesBy, rank)
		if beat.Before(forgeAt) {
			forgeAt = beat // a heartbeat due first takes the transactions along
		}
	}
	if d := forgeAt.Sub(now); d > 0 {
		return min(d, maxForgeSleep)
	}
	f.forge(snap, uint32(rank))
	return 0
}

// forge builds, signs and imports a block on the snapshot's head at rank,
// then publishes it.
//
// Consensus hook: the block is assembled (chain.NewBlock) and signed
// (SignHeader) here; the v2 VRF seed proof is made here too.
func (f *Forger) forge(snap *chainmgr.Snapshot, rank uint32) {
	if f.chain.Snapshot() != snap {
		return // the head moved: look again
	}
	head := snap.Head()
	// Each transaction carries the id cached when it was decoded: the
	// block's tx root, its import and the store's index read it, hashing
	// no transaction again.
	txs := f.pool.Pending(f.forgeLimit(), snap)
	var votes []chain.Vote
	if f.votes != nil {
		votes = f.votes.Select(snap, f.g.MaxBlockVotes)
	}

	ts := max(f.now().UnixMilli(), head.Timestamp+int64(rank)*f.g.SlotMs)
	for attempt := 0; attempt < 3; attempt++ {
		nb := chain.NewBlock(f.g, &head.Header, rank, ts, txs)
		if len(votes) > 0 {
			nb.SetVotes(votes) // before signing: the header commits to them
		}
		b := f.lab.prepare(nb, head, snap, f.key.SignHeader)
		err := f.chain.ProcessOwnBlock(b)
		if err == nil {
			f.forged.Add(1)
			level := slog.LevelInfo
			if len(txs) == 0 {
				level = slog.LevelDebug // heartbeats: several a slot
			}
			f.log.Log(context.Background(), level, "forged block", "height", b.Height, "txs", len(txs), "votes", len(b.Votes), "rank", rank, "hash", b.Hash().String())
			f.lab.publish(f.publish, b, head)
			if f.votes != nil {
				f.votes.Forged(b)
			}
			return
		}
		// A transaction that became invalid must not stall the chain:
		// evict it with the reason and forge without it.
		bad, ok := badTxIndex(err, txs)
		if !ok {
			switch {
			case errors.Is(err, chainmgr.ErrKnownBlock):
			case errors.Is(err, chainmgr.ErrSideBlock):
				// A better block for the same height arrived while this one
				// was built (common while a restarted node catches up): the
				// fork choice did its job and nothing is wrong.
				f.log.Debug("forged block not kept on the main chain: a better block arrived meanwhile", "height", b.Height, "rank", rank)
			default:
				f.log.Warn("could not forge", "height", b.Height, "err", err.Error())
			}
			return
		}
		f.log.Warn("evicting a transaction that no longer applies", "tx", txs[bad].ID().String(), "reason", err.Error())
		f.pool.Remove(txs[bad].ID())
		f.evicted.Add(1)
		txs = txs[:bad]
		if len(txs) == 0 {
			return // nothing left worth a block; the next round looks again
		}
	}
}

// forgeBudget is how long importing a forged block should take: a
// sixteenth of a slot. The peers' imports take about as long, after the
// block crossed the network; the next block must do the same before the
// candidate ranked second on it may forge, one slot after the block. Under
// a 4-node devnet's load a 10,000-transaction block took 0.1–0.4 s to
// import at each hop and about as long to cross, so two blocks did not fit
// in a slot: candidates forged competing blocks and every node reorganised
// 10,000 transactions at a time (docs/PERFORMANCE.md).
func (f *Forger) forgeBudget() time.Duration {
	return time.Duration(f.g.SlotMs) * time.Millisecond / 16
}

// voteWait is until when a block on snap's head waits for the stakers'
// votes on the head: the head's timestamp plus voteGrace, or the zero
// time when it need not wait (no finality, or the pool already holds
// enough votes to justify the head, which is what ends the wait on a
// healthy network). The other stakers' votes are on their way: a block
// forged before they arrive does not justify its parent, the parent can
// then only become final under a later block whose own parent was
// justified by it, and finality trails by blocks more for each block
// forged so. Counted from the head's timestamp, not from when this node
// saw it: votes on an old head (a restarted node's, whose pool is empty
// and whose voter already voted on it) are not coming. Heartbeats wait
// too: they exist to carry these votes.
func (f *Forger) voteWait(snap *chainmgr.Snapshot) time.Time {
	if f.votes == nil || f.votes.Ready(snap) {
		return time.Time{}
	}
	return time.UnixMilli(snap.Head().Timestamp).Add(f.voteGrace(snap))
}

// voteGrace is how long after a new head the forger waits for the
// stakers' votes on it (voteWait): heartbeat_ms, a quarter slot by
// default, while the head's parent checkpoint is justified (each block
// carried its parent's votes) or while finality stalls (the justified
// checkpoint more than liveLag(epoch_blocks) below the head: a third of
// the stake silent, the wait would not end in votes); slot_ms −
// heartbeat_ms, three quarters of a slot, after a block was forged without
// its parent's votes. Such a parent can only become final under a later
// block whose own parent was justified by it, and under a slow spell
// (20 nodes sharing 2 cores, docs/NETWORK.md "Phases of finality") the
// votes kept missing the quarter slot block after block, finality
// stalling for 30 s and more; the longer wait after a miss ends that run.
// Three quarters, not a whole slot: the block must still reach the
// candidate ranked second before it may forge, a slot after the head. On
// a local network the votes arrive in a few milliseconds and the wait
// ends with them.
func (f *Forger) voteGrace(snap *chainmgr.Snapshot) time.Duration {
	grace := max(f.g.HeartbeatMs, f.g.SlotMs/8)
	lag := snap.Height() - min(snap.Height(), snap.Finality().Justified.Height)
	if lag > max(f.g.EpochBlocks, 1) && lag <= liveLag(f.g.EpochBlocks) {
		grace = max(grace, f.g.SlotMs-f.g.HeartbeatMs)
	}
	return time.Duration(grace) * time.Millisecond
}

// afterVotes moves a block due at t past the head's vote wait (votesBy,
// zero: none): the candidate at rank k forges k slots after it, as it
// forges k slots after the policy's due time, so that it does not forge
// beside a better-ranked candidate still waiting for the votes.
func (f *Forger) afterVotes(t, votesBy time.Time, rank int) time.Time {
	if votesBy.IsZero() {
		return t
	}
	if w := votesBy.Add(time.Duration(int64(rank)*f.g.SlotMs) * time.Millisecond); t.Before(w) {
		return w
	}
	return t
}

// liveLag is how far the justified checkpoint may trail the head while
// finality counts as keeping up: on a healthy chain it trails by one
// block, two or three after blocks forged without their parent's votes;
// with epochs, by up to two epochs more.
func liveLag(epochBlocks uint64) uint64 {
	return 2*max(epochBlocks, 1) + 2
}

// minForgeTxs is the least the forger's block holds, however slow its
// imports were: the per-block costs must stay small beside the
// transactions' own.
const minForgeTxs = 500

// forgeLimit is how many transactions the forger puts in a block: what
// this node imported within forgeBudget lately, at what a peer's block
// cost it per transaction (its peers pay about as much for its block),
// between minForgeTxs and the genesis's max_block_txs. Until it imported a
// peer's block (a node alone), max_block_txs.
func (f *Forger) forgeLimit() int {
	per := f.chain.ImportCostPerTx()
	if per <= 0 {
		return f.g.MaxBlockTxs
	}
	return max(min(int(f.forgeBudget()/per), f.g.MaxBlockTxs), min(minForgeTxs, f.g.MaxBlockTxs))
}

// badTxIndex finds which transaction a block error names.
func badTxIndex(err error, txs []chain.Transaction) (int, bool) {
	var te *chain.BlockTxError
	if !errors.As(err, &te) || te.Index >= len(txs) {
		return 0, false
	}
	return te.Index, true
}
