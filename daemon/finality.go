package daemon

import (
	"crypto/ed25519"
	"errors"
	"log/slog"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/forge"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/daemon/votepool"
	"github.com/poslab/posd/daemon/voter"
)

// The node's finality wiring (DESIGN "v3 rules"): the vote pool, fed by
// the vote topic and by this node's voter, and drained into blocks by the
// forger; the voter, which votes on every new head with the node key
// unless --vote=false; and the chain events that move both (followChain).
// The finality record itself is the chain's (chain.Finality, in each
// snapshot's state) and the node's final checkpoint the chain manager's
// (Snapshot.Final): nothing here decides what is justified or final.

// finality holds the node's vote pool and voter.
type finality struct {
	g     *chain.Genesis
	chain *chainmgr.Manager
	addr  chain.Address
	pool  *votepool.Pool
	voter *voter.Voter // nil: this node does not vote (--vote=false)
	met   *metrics.Finality
	log   *slog.Logger

	// publish gossips this node's votes (set once the network runs).
	publish func([]chain.Vote)
	// poke wakes the forger: votes arrived that a block may carry.
	poke func()
	// slashable gets each slashable pair of votes the pool sees (a double
	// or a surround vote). The evidence step fills it to turn pairs into
	// slashing evidence; until then the pair is logged.
	slashable func(a, b chain.Vote, kind string)

	// byzantine, on a lab node only, changes the votes the voter signed
	// before they are pooled and gossiped (set by setupLab, before the
	// node runs).
	byzantine byzantine.Voting

	// lastFinal is the finalized height followChain saw last.
	lastFinal uint64
	// stamps holds the timestamps of the blocks added above lastFinal,
	// by height, up to maxStamps above it: observeFinal reads a block's
	// timestamp there instead of reading the block back from the store.
	// (A sync finalizes blocks one event after adding them: reading each
	// back decoded the whole chain a second time, through the store's
	// mmap, whose pages then stayed resident.)
	stamps map[uint64]int64
}

// maxStamps bounds finality.stamps: heights up to lastFinal+maxStamps.
const maxStamps = 4 * maxObserveFinal

// poolOutcome maps the vote pool's outcomes to the metric's.
var poolOutcome = map[string]string{
	votepool.OutcomeAdded:          metrics.VotePooled,
	votepool.OutcomeDuplicate:      metrics.VoteDuplicate,
	votepool.OutcomeIncluded:       metrics.VoteDuplicate,
	votepool.OutcomeStaleFinalized: metrics.VoteStale,
	votepool.OutcomeStaleOld:       metrics.VoteStale,
	votepool.OutcomeVoterFull:      metrics.VoteDropped,
	votepool.OutcomePoolFull:       metrics.VoteDropped,
	votepool.OutcomeBadVote:        metrics.VoteInvalid,
	votepool.OutcomeUnknownVoter:   metrics.VoteInvalid,
}

// setupFinality makes the vote pool and, unless cfg.NoVote, the voter.
func (n *Node) setupFinality() error {
	f := &finality{g: n.g, chain: n.chain, addr: n.key.Address(), met: n.prom.Finality, log: n.log.With("component", "finality")}
	evPool := n.chain.EvidencePool()
	f.slashable = func(a, b chain.Vote, kind string) {
		f.log.Warn("slashable votes seen", "kind", kind, "voter", string(a.Voter()),
			"first", a.Source.String()+"→"+a.Target.String(), "second", b.Source.String()+"→"+b.Target.String())
		f.evidence(evPool, &a, &b)
	}
	f.pool = votepool.New(votepool.Config{
		ChainID: n.g.ChainID,
		VotesOf: func(b *chain.Block) []chain.Vote { return b.Votes },
		Known:   func(a chain.Address) bool { return n.chain.Snapshot().Account(a).Stake > 0 },
		OnSlashable: func(a, b chain.Vote, kind string) {
			f.met.Votes(metrics.VoteSlashable, 1)
			f.slashable(a, b, kind)
		},
		OnOutcome: func(o string) { f.met.Votes(poolOutcome[o], 1) },
	})
	if !n.cfg.NoVote && !byzantine.NoVote(n.cfg.Byzantine) {
		v, err := voter.New(voter.Config{
			ChainID: n.g.ChainID, EpochBlocks: n.g.EpochBlocks,
			Keys:  []ed25519.PrivateKey{n.key.PrivateKey()},
			Chain: voterChain{n.chain}, Store: n.st,
			Publish: func(votes []chain.Vote) {
				if f.byzantine != nil { // a lab node's voting behaviour (lab.go)
					votes = f.byzantine.Votes(votes)
				}
				f.pool.AddBatch(votes)
				if f.publish != nil {
					f.publish(votes)
				}
				if f.poke != nil {
					f.poke()
				}
			},
			OnOutcome: func(o string) {
				if o == voter.OutcomeSigned {
					f.met.Votes(metrics.VoteCast, 1)
				}
			},
			Logger: f.log,
		})
		if err != nil {
			return err
		}
		f.voter = v
	}
	n.fin = f
	return nil
}

// evidence turns a slashable pair of votes into evidence in the
// evidence pool, which gossips it and hands it to the forger (followEvidence),
// so that the pair ends in a slashing on the main chain. The pool drops
// what it knows, what is already slashed, and what is for a height this
// node has not reached (a node behind leaves it to the others).
func (f *finality) evidence(p interface {
	Add(chain.Evidence) (bool, error)
}, a, b *chain.Vote) {
	e, err := chain.NewVoteEvidence(a, b)
	if err != nil { // the pool's check and the chain's disagree: say so, slash nothing
		f.log.Error("slashable votes make no evidence", "err", err)
		return
	}
	added, err := p.Add(e)
	switch {
	case err != nil:
		f.log.Error("vote evidence refused", "kind", string(e.KindOf()), "voter", string(e.Forger()), "err", err)
	case added:
		f.log.Warn("SLASHABLE VOTES: evidence made", "kind", string(e.KindOf()), "voter", string(e.Forger()), "height", e.Height())
	}
}

// onChain moves the pool and the voter with one chain event (followChain):
// the reverted blocks' votes back into the pool, the added blocks' out,
// the final height, the metrics, then a vote on the new head.
func (f *finality) onChain(ev chainmgr.Event) {
	for _, b := range ev.Reverted { // newest first, as the pool wants
		f.pool.Reverted(b)
		delete(f.stamps, b.Height)
	}
	for _, b := range ev.Added {
		f.pool.Committed(b)
		f.met.Votes(metrics.VoteIncluded, len(b.Votes))
		f.stamp(b)
	}
	snap := ev.Snapshot
	if ev.MissedBlocks > 0 || ev.MissedReverted > 0 || len(ev.Added) == 0 {
		f.pool.SetHead(snap.Height())
	}
	// The pool drops votes at or below the branch's record: only votes
	// included on the branch move it. The gauge and the times to finality
	// follow the node's final checkpoint (never lower).
	rec := snap.Finality()
	f.pool.SetFinalized(rec.Finalized.Height)
	f.met.SetJustified(rec.Justified.Height)
	f.met.SetFinal(snap.Final().Height)
	f.observeFinal(ev, snap.Final().Height)
	if f.voter != nil {
		f.voter.OnHead()
	}
}

// maxObserveFinal bounds the blocks one event's time-to-finality is
// recorded for (a sync finalizes thousands at once, long after they were
// forged: their times say nothing of this node's finality).
const maxObserveFinal = 64

// observeFinal records the time to finality of each block that became
// final with ev: from its timestamp to now.
func (f *finality) observeFinal(ev chainmgr.Event, final uint64) {
	from := f.lastFinal
	defer func() {
		for h := range f.stamps {
			if h <= f.lastFinal {
				delete(f.stamps, h)
			}
		}
	}()
	if final <= from {
		f.lastFinal = max(f.lastFinal, final) // a reorg never lowers it below what was final
		return
	}
	f.lastFinal = final
	if final-from > maxObserveFinal {
		return
	}
	now := time.Now()
	for h := from + 1; h <= final; h++ {
		var ts int64
		for _, b := range ev.Added {
			if b.Height == h {
				ts = b.Timestamp
			}
		}
		if ts == 0 {
			ts = f.stamps[h]
		}
		if ts == 0 {
			b, err := f.chain.BlockByHeight(h)
			if err != nil {
				continue
			}
			ts = b.Timestamp
		}
		f.met.ObserveTimeToFinality(now.Sub(time.UnixMilli(ts)))
	}
}

// stamp remembers the timestamp of an added block for observeFinal.
func (f *finality) stamp(b *chain.Block) {
	if b.Height <= f.lastFinal || b.Height > f.lastFinal+maxStamps {
		return
	}
	if f.stamps == nil {
		f.stamps = make(map[uint64]int64)
	}
	f.stamps[b.Height] = b.Timestamp
}

// voterChain is the chain as the voter reads it: the newest snapshot.
type voterChain struct{ c *chainmgr.Manager }

func (v voterChain) Tip() (head, justified chain.Checkpoint) {
	s := v.c.Snapshot()
	return chain.Checkpoint{Height: s.Height(), Hash: s.HeadHash()}, s.Finality().Justified
}

// HashAt answers for the newest snapshot's branch only: the voter asks
// for its target, the newest checkpoint, which the record keeps.
func (v voterChain) HashAt(head chain.Hash, height uint64) (chain.Hash, bool) {
	s := v.c.Snapshot()
	if s.HeadHash() != head {
		return chain.Hash{}, false
	}
	if height == s.Height() {
		return head, true
	}
	if cp := s.Finality().Latest(); cp.Height == height {
		return cp.Hash, true
	}
	return chain.Hash{}, false
}

func (v voterChain) StakeOf(a chain.Address) uint64 { return v.c.Snapshot().Account(a).Stake }

// The forger's view of finality (forge.Votes).
var _ forge.Votes = (*finality)(nil)

// Select returns the pooled votes a block on snap's head may carry.
func (f *finality) Select(snap *chainmgr.Snapshot, max int) []chain.Vote {
	st, height := snap.ReadState(), snap.Height()+1
	return f.pool.Select(max, func(v *chain.Vote) error { return st.CheckVote(f.g, v, height) })
}

// Forged votes on this node's own new block at once (forge.Votes): the
// voter signs nothing twice for one head, so the vote followChain asks
// for later is a no-op.
func (f *finality) Forged(*chain.Block) {
	if f.voter != nil {
		f.voter.OnHead()
	}
}

var errOtherLink = errors.New("another link")

// Ready reports whether the pooled and included votes for the link from
// snap's justified checkpoint to its newest one weigh more than 2/3 of
// the source's lots (a block forged now justifies the newest checkpoint),
// or there is no such link to wait for, or finality is off.
func (f *finality) Ready(snap *chainmgr.Snapshot) bool {
	if _, on := f.Finalized(snap); !on {
		return true // nobody votes: no vote to wait for (--vote=false everywhere)
	}
	rec := snap.Finality()
	src, tgt := rec.Justified, rec.Latest()
	if tgt.Height <= src.Height {
		return true
	}
	table, ok := rec.Weights(src)
	if !ok || table.Total() == 0 {
		return true
	}
	var lots uint64
	if ci, ok := rec.Tally(tgt); ok {
		for _, l := range ci.Links {
			if l.Source == src {
				lots = l.Lots
			}
		}
	}
	st, height := snap.ReadState(), snap.Height()+1
	for _, v := range f.pool.Select(f.g.MaxBlockVotes, func(v *chain.Vote) error {
		if v.Source != src || v.Target != tgt {
			return errOtherLink
		}
		return st.CheckVote(f.g, v, height)
	}) {
		lots += table.Lots(v.Voter())
	}
	return lots >= rpc.ThresholdLots(table.Total())
}

// Finalized is the final height of snap's branch as its record proves it
// (not the node's final checkpoint, Snapshot.Final, which may be higher
// after a switch: the forger's heartbeat protects what the branch's own
// votes have not yet finalized), and whether finality runs: this node
// votes with stake, or some checkpoint past genesis was justified (other
// nodes vote).
func (f *finality) Finalized(snap *chainmgr.Snapshot) (uint64, bool) {
	rec := snap.Finality()
	on := rec.Justified.Height > 0 || f.voter != nil && snap.Account(f.addr).Stake > 0
	return rec.Finalized.Height, on
}

// HandleVotes pools gossiped votes (signatures verified by the p2p
// layer): forwarded when one of them was new here. A vote the pool
// cannot take is never the sender's fault on this node's view alone
// (unknown voter, stale, full), so nothing is rejected.
func (h p2pHandler) HandleVotes(votes []chain.Vote) error {
	if h.votes == nil {
		return p2p.ErrIgnore
	}
	added := false
	for _, err := range h.votes.AddBatch(votes) {
		if err == nil {
			added = true
		}
	}
	if !added {
		return p2p.ErrIgnore
	}
	h.poke()
	return nil
}

var _ p2p.VoteHandler = p2pHandler{}
