package wan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon"
)

// The finality half of the Recorder: when each node saw each block become
// final, when each transfer the load sent became final on the node it was
// sent to, and the invariant that nothing final is ever undone.
//
// Why every final block, not only the checkpoints of the events: a node
// misses events it has no room for (its finality feed drops them), and
// one event may finalize many blocks at once (after a heal, a sync), so on
// each event the recorder walks the node's main chain from its previous
// final height up to the new checkpoint. Every block at or below a
// node's final height is final for that node, and must stay on its main
// chain forever; the recorder keeps every final block's hash by height
// (one map for all nodes, so two nodes' final blocks that conflict show
// too) and checks it during the run and at the end.

// Bounds: the finality maps hold one entry per final height and per sent
// transfer; a run longer than these keeps measuring what it has, and says so.
const (
	maxFinalHeights = 1 << 17
	maxSentTxs      = 1 << 18
	maxViolations   = 32
	maxSamples      = 1 << 20 // time-to-finality samples of each kind
	// maxFinalWalk bounds the blocks one finality event walks (a node
	// that syncs thousands finalizes them at once); beyond it, the walk
	// checks only the checkpoint and does not time the blocks below.
	maxFinalWalk = 4096
)

// txKey names a load transfer by its sender and nonce (each load account
// sends to one node only, so the pair is unique in a run).
type txKey struct {
	from  chain.Address
	nonce uint64
}

type sentTx struct {
	node int
	at   time.Time
}

// finalMark is one finalized checkpoint a node reported, and when.
type finalMark struct {
	cp chain.Checkpoint
	at time.Time
}

// finState is the Recorder's finality record; guarded by Recorder.mu.
type finState struct {
	finalH     []uint64              // per node: highest final height seen
	marks      [][]finalMark         // per node: its finalized checkpoints over time
	finalOf    map[uint64]chain.Hash // height -> the final block there (every node)
	sent       map[txKey]sentTx
	sentTotal  int
	blockTTF   []time.Duration // per block and node: first sighting -> final on that node
	txTTF      []time.Duration // per transfer: sent -> final on its sender's node
	violations []string
	dropped    int // violations past maxViolations
	backsteps  int // finalized events below the node's final height (each a violation)
	truncated  bool
}

func (f *finState) violate(format string, args ...any) {
	if len(f.violations) >= maxViolations {
		f.dropped++
		return
	}
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

// Sent records a transfer the load sent to node i (StartLoad calls it).
func (r *Recorder) Sent(node int, tx chain.Transaction, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fin.sent) >= maxSentTxs {
		r.fin.truncated = true
		return
	}
	k := txKey{tx.From, tx.Nonce}
	if _, ok := r.fin.sent[k]; !ok {
		r.fin.sentTotal++
	}
	r.fin.sent[k] = sentTx{node, at}
}

// followFinality records node i's finalized events until the feed closes.
func (r *Recorder) followFinality(i int, n *daemon.Node, ch <-chan rpc.FinalityEvent) {
	for ev := range ch {
		if ev.Type != rpc.EventFinalized {
			continue
		}
		at := time.Now()
		if ev.Time > 0 {
			at = time.UnixMilli(ev.Time)
		}
		r.final(i, n, ev.Checkpoint, at)
	}
}

// final records that node i saw cp final at: it walks the node's main
// chain above its previous final height, checks each block against the
// final blocks already known, and times the blocks and transfers that
// became final.
func (r *Recorder) final(i int, n *daemon.Node, cp chain.Checkpoint, at time.Time) {
	// Only this node's goroutine moves its final height: prev stays.
	r.mu.Lock()
	prev := r.fin.finalH[i]
	r.mu.Unlock()
	from := prev + 1
	if cp.Height > prev && cp.Height-prev > maxFinalWalk {
		from = cp.Height - maxFinalWalk + 1
	}
	var bs []*chain.Block
	for h := from; h <= cp.Height; {
		got, err := n.API().Blocks(h, min(500, int(cp.Height-h+1)))
		if err != nil || len(got) == 0 {
			break
		}
		bs = append(bs, got...)
		h = got[len(got)-1].Height + 1
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyFinal(i, cp, at, prev, from, bs)
}

// applyFinal records (r.mu held) that node i saw cp final at, its main
// chain from height from up to cp being bs, its final height before being
// prev.
func (r *Recorder) applyFinal(i int, cp chain.Checkpoint, at time.Time, prev, from uint64, bs []*chain.Block) {
	f := &r.fin
	if len(f.marks[i]) < maxFinalHeights {
		f.marks[i] = append(f.marks[i], finalMark{cp, at})
	}
	if cp.Height <= prev {
		// A node's final checkpoint never goes down (it keeps the highest
		// its main chain's record ever showed, docs/CONSENSUS.md "Final on
		// the node"): a finalized event below it is a violation. The same
		// height again is a late or repeated event.
		if cp.Height < prev {
			f.backsteps++
			f.violate("node %d: final height went back from %d to %d", i, prev, cp.Height)
		}
		if h, ok := f.finalOf[cp.Height]; ok && h != cp.Hash {
			f.violate("node %d: finalized %s at height %d, where %s was final", i, cp.Hash, cp.Height, h)
		}
		return
	}
	if cp.Height > f.finalH[i] {
		f.finalH[i] = cp.Height
	}
	top := len(bs) - 1
	for top >= 0 && bs[top].Height > cp.Height {
		top--
	}
	if top < 0 || bs[top].Height != cp.Height || bs[top].Hash() != cp.Hash {
		var have chain.Hash
		if top >= 0 {
			have = bs[top].Hash()
		}
		f.violate("node %d: finalized %s at height %d but its main chain has %s there", i, cp.Hash, cp.Height, have)
		return
	}
	// The first block walked must build on the node's previous final block.
	if ph, ok := f.finalOf[bs[0].Height-1]; ok && bs[0].Height == from && from == prev+1 && bs[0].PrevHash != ph {
		f.violate("node %d: block %d of its main chain builds on %s, not on the final %s", i, bs[0].Height, bs[0].PrevHash, ph)
	}
	for _, b := range bs[:top+1] {
		h := b.Hash()
		if old, ok := f.finalOf[b.Height]; ok && old != h {
			f.violate("node %d: %s final at height %d, where another node's final block is %s", i, h, b.Height, old)
			continue
		} else if !ok {
			if len(f.finalOf) >= maxFinalHeights {
				f.truncated = true
			} else {
				f.finalOf[b.Height] = h
			}
		}
		r.ph.finalSeen(i, len(r.nodes), b.Height, at)
		first := r.firstSeen(h)
		if !first.IsZero() && !first.Before(r.added[i]) && at.After(first) {
			if len(f.blockTTF) < maxSamples {
				f.blockTTF = append(f.blockTTF, at.Sub(first))
			} else {
				f.truncated = true
			}
		}
		for _, tx := range b.Transactions {
			k := txKey{tx.From, tx.Nonce}
			if s, ok := f.sent[k]; ok && s.node == i {
				if len(f.txTTF) < maxSamples {
					f.txTTF = append(f.txTTF, at.Sub(s.at))
					if !first.IsZero() {
						r.ph.txIncl = append(r.ph.txIncl, first.Sub(s.at))
					}
				} else {
					f.truncated = true
				}
				delete(f.sent, k)
			}
		}
	}
}

// firstSeen is when some node first imported h (zero: not recorded).
// Called with r.mu held.
func (r *Recorder) firstSeen(h chain.Hash) time.Time {
	var first time.Time
	for _, t := range r.seen[h] {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

// checkImport is called (r.mu held) for every block node i imported: a
// block at or below the node's final height that is not the final block
// there means the node reverted a final block, unless the import is only
// reported late (the block and finality feeds are read apart), which the
// node's main chain now tells.
func (r *Recorder) checkImport(i int, h chain.Hash, height uint64) (suspect bool) {
	if height > r.fin.finalH[i] {
		return false
	}
	fh, ok := r.fin.finalOf[height]
	return ok && fh != h
}

// confirmRevert looks at node i's main chain at height after checkImport
// found a suspect import: a violation if the final block is not there now.
func (r *Recorder) confirmRevert(i int, n *daemon.Node, h chain.Hash, height uint64) {
	r.mu.Lock()
	fh := r.fin.finalOf[height]
	r.mu.Unlock()
	b, err := n.API().BlockByHeight(height)
	if err == nil && b.Hash() == fh {
		return // the import was reported after the block was final over it
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fin.violate("node %d: imported %s at height %d, at or below its final height, where %s is final", i, h, height, fh)
}

// WaitFinal waits until every node's final height is at least height and
// every transfer sent is final on its node, and returns how long that
// took; false if it did not happen within timeout (finality stalled).
func (r *Recorder) WaitFinal(ctx context.Context, height uint64, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		r.mu.Lock()
		pending := len(r.fin.sent)
		r.mu.Unlock()
		if pending == 0 && slices.Min(FinalHeights(r.Nodes())) >= height {
			return time.Since(start), true
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-t.C:
		}
	}
}

// FinalHeights is each node's final height now.
func FinalHeights(nodes []*daemon.Node) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		f, err := n.API().Finality()
		if err == nil {
			out[i] = f.Finalized.Height
		}
	}
	return out
}

// CheckFinal checks the invariant "no final block is ever reverted on any
// node" on what the recorder saw (violations found during the run) and on
// the nodes now: every block some node ever saw final is on every node's
// main chain.
func (r *Recorder) CheckFinal() error {
	nodes := r.Nodes()
	r.mu.Lock()
	var errs []error
	for _, v := range r.fin.violations {
		errs = append(errs, errors.New(v))
	}
	if r.fin.dropped > 0 {
		errs = append(errs, fmt.Errorf("%d more violations", r.fin.dropped))
	}
	finals := make(map[uint64]chain.Hash, len(r.fin.finalOf))
	for h, x := range r.fin.finalOf {
		finals[h] = x
	}
	r.mu.Unlock()
	heights := slices.Sorted(func(yield func(uint64) bool) {
		for h := range finals {
			if !yield(h) {
				return
			}
		}
	})
	for i, n := range nodes {
		bad := 0
		for _, h := range heights {
			b, err := n.API().BlockByHeight(h)
			if err != nil || b.Hash() != finals[h] {
				if bad == 0 {
					var have chain.Hash
					if b != nil {
						have = b.Hash()
					}
					errs = append(errs, fmt.Errorf("node %d: main chain has %s at height %d, where %s was final (err %v)", i, have, h, finals[h], err))
				}
				bad++
			}
		}
		if bad > 1 {
			errs = append(errs, fmt.Errorf("node %d: %d final blocks off its main chain in all", i, bad))
		}
	}
	return errors.Join(errs...)
}

// FinalityReport is what the recorder measured of finality.
type FinalityReport struct {
	// Final is the lowest final height among the nodes at the end.
	Final uint64
	// BlockTTF: per block and node, from the block's first import
	// anywhere to that node seeing it final (a block older than a node's
	// recording not counted for it).
	BlockP50, BlockP99 time.Duration
	BlockSamples       int
	// TxTTF: per transfer the load sent, from its submission to its
	// node seeing it final; TxNotFinal were sent but not final at the end
	// (refused ones are not sent).
	TxP50, TxP99, TxMax time.Duration
	TxFinal, TxNotFinal int
	Checkpoints         int // finalized events recorded, all nodes
	// Backsteps: finalized events below the node's highest final height
	// (it moved to a branch whose record proves less; its blocks stayed).
	Backsteps int
	// Truncated: the run outgrew the recorder's bounds (maxSentTxs,
	// maxFinalHeights); the figures cover what fitted.
	Truncated bool
	// Phases splits the time to final into its parts.
	Phases PhaseReport
}

func (f FinalityReport) String() string {
	return fmt.Sprintf("final height %d, block to final p50 %v p99 %v (%d samples), transfer to final p50 %v p99 %v max %v (%d final, %d not final), final height back %d times",
		f.Final, f.BlockP50.Round(time.Millisecond), f.BlockP99.Round(time.Millisecond), f.BlockSamples,
		f.TxP50.Round(time.Millisecond), f.TxP99.Round(time.Millisecond), f.TxMax.Round(time.Millisecond), f.TxFinal, f.TxNotFinal, f.Backsteps) +
		"; " + f.Phases.String()
}

func percentiles(ds []time.Duration) (p50, p99, pmax time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], ds[len(ds)-1]
}

// Finality reports the finality measured so far.
func (r *Recorder) Finality() FinalityReport {
	nodes := r.Nodes()
	fh := FinalHeights(nodes)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out FinalityReport
	if len(fh) > 0 {
		out.Final = slices.Min(fh)
	}
	out.BlockP50, out.BlockP99, _ = percentiles(r.fin.blockTTF)
	out.BlockSamples = len(r.fin.blockTTF)
	out.TxP50, out.TxP99, out.TxMax = percentiles(r.fin.txTTF)
	out.TxFinal = len(r.fin.txTTF)
	out.TxNotFinal = len(r.fin.sent)
	out.Truncated = r.fin.truncated || r.fin.sentTotal != out.TxFinal+out.TxNotFinal
	out.Backsteps = r.fin.backsteps
	for _, m := range r.fin.marks {
		out.Checkpoints += len(m)
	}
	out.Phases = r.phases()
	return out
}

// Phases of finality (where a block's time to final goes). For every
// block, the recorder keeps its header, its votes and, from the vote
// trace (p2p.TraceVotes), when each node held votes for it from more than
// 2/3 of the lots. The report splits each final block's time to final,
// counted from its first import anywhere (t0), into:
//
//	(a) some node holds more than 2/3 of its votes
//	    (and: the node that forged its child does)
//	(b) the main-chain block whose votes justify it is imported somewhere
//	(c) the block that justifies its child by the link from it (which
//	    finalizes it) is imported somewhere
//	(d) each node sees it final (BlockP50/P99 of FinalityReport)
//
// and counts why a child did not carry its parent's votes (forged before
// they reached its forger, or not included though there), the blocks
// finalized only under a higher final block, fork heights, votes for
// blocks off the final chain, empty blocks and rests. Lots are taken from
// the genesis stakes (no stake moves in these runs).

type voteRef struct {
	src, tgt chain.Checkpoint
	voter    int // index in phaseState.weight; -1: not a genesis staker
}

type blockInfo struct {
	height uint64
	forger chain.Address
	ts     int64
	txs    int
	votes  []voteRef
}

// arrival is, for one target, which voters' votes each node took and
// when each node first held more than 2/3 of the lots.
type arrival struct {
	seen  [][]bool
	lots  []uint64
	ready []time.Time
}

// phaseState is guarded by Recorder.mu.
type phaseState struct {
	peer       map[string]int        // peer id -> node
	addr       map[chain.Address]int // node key -> node
	voter      map[chain.Address]int // genesis staker -> index
	weight     []uint64              // lots per staker
	total      uint64
	slot       time.Duration
	arr        map[chain.Checkpoint]*arrival
	blocks     map[chain.Hash]*blockInfo
	byHeight   map[uint64]int         // blocks seen per height
	finalAt    map[uint64][]time.Time // per height: when each node saw it final
	txIncl     []time.Duration        // transfer sent -> its block's first import
	sign       []time.Duration        // a node's import of a block -> its own vote on it
	overBudget int                    // vote messages dropped over their sender's budget
	full       bool                   // a bound was reached: phases cover what fitted
}

// init reads the stakers' lots from the genesis.
func (p *phaseState) init(g *chain.Genesis) {
	p.peer, p.addr, p.voter = map[string]int{}, map[chain.Address]int{}, map[chain.Address]int{}
	p.arr, p.blocks = map[chain.Checkpoint]*arrival{}, map[chain.Hash]*blockInfo{}
	p.byHeight, p.finalAt = map[uint64]int{}, map[uint64][]time.Time{}
	p.slot = time.Duration(g.SlotMs) * time.Millisecond
	lot := max(g.LotSize, 1)
	for _, a := range g.Allocations {
		if l := a.Stake / lot; l > 0 {
			p.voter[a.Address] = len(p.weight)
			p.weight = append(p.weight, l)
			p.total += l
		}
	}
}

// votesTaken is the vote tracer: node self took votes now.
func (r *Recorder) votesTaken(self string, votes []chain.Vote) {
	at := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &r.ph
	i, ok := p.peer[self]
	if !ok {
		return
	}
	if votes == nil {
		p.overBudget++
		return
	}
	thr := rpc.ThresholdLots(p.total)
	for k := range votes {
		v := &votes[k]
		vi, ok := p.voter[v.Voter()]
		if !ok {
			continue
		}
		a := p.arr[v.Target]
		if a == nil {
			if len(p.arr) >= maxFinalHeights {
				p.full = true
				continue
			}
			a = &arrival{}
			p.arr[v.Target] = a
		}
		for len(a.seen) < len(r.nodes) {
			a.seen = append(a.seen, make([]bool, len(p.weight)))
			a.lots = append(a.lots, 0)
			a.ready = append(a.ready, time.Time{})
		}
		if a.seen[i][vi] {
			continue
		}
		if j, ok := p.addr[v.Voter()]; ok && j == i && len(p.sign) < maxSamples {
			// Its own vote: signed now, after the node imported the block.
			if ts := r.seen[v.Target.Hash]; i < len(ts) && !ts[i].IsZero() && at.After(ts[i]) {
				p.sign = append(p.sign, at.Sub(ts[i]))
			}
		}
		a.seen[i][vi] = true
		a.lots[i] += p.weight[vi]
		if a.lots[i] >= thr && a.ready[i].IsZero() {
			a.ready[i] = at
		}
	}
}

// noteBlock keeps b's header and votes the first time any node imports it.
func (r *Recorder) noteBlock(b *chain.Block) {
	h := b.Hash()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &r.ph
	if _, ok := p.blocks[h]; ok {
		return
	}
	if len(p.blocks) >= maxFinalHeights {
		p.full = true
		return
	}
	bi := &blockInfo{height: b.Height, forger: b.Forger, ts: b.Timestamp, txs: len(b.Transactions)}
	for k := range b.Votes {
		v := &b.Votes[k]
		vi, ok := p.voter[v.Voter()]
		if !ok {
			vi = -1
		}
		bi.votes = append(bi.votes, voteRef{v.Source, v.Target, vi})
	}
	p.blocks[h] = bi
	p.byHeight[b.Height]++
}

// finalSeen records (r.mu held) that node i saw height final at.
func (p *phaseState) finalSeen(i, nodes int, height uint64, at time.Time) {
	if p.finalAt == nil {
		return // a recorder made without nodes (unit tests)
	}
	ts := p.finalAt[height]
	if ts == nil && len(p.finalAt) >= maxFinalHeights {
		p.full = true
		return
	}
	for len(ts) < nodes {
		ts = append(ts, time.Time{})
	}
	if ts[i].IsZero() {
		ts[i] = at
	}
	p.finalAt[height] = ts
}

// PhaseReport splits the time to finality (see "Phases of finality").
// Durations are p50/p99 over the final blocks that have a final child.
type PhaseReport struct {
	Blocks int
	// From a block's first import (t0) to: (a) some node holding more
	// than 2/3 of its votes; the node that forged its child holding them;
	// its child's first import (the child forged); (b) the block that
	// justifies it imported; (c) the block that finalizes it (justifies
	// the link from it to its child) imported, for the blocks finalized
	// so; (d) final on a node, per block and node.
	Votes, AtForger, Child, Justified, Finalized, Final [2]time.Duration
	// Carried: children that carried more than 2/3 of their parent's
	// votes. ForgedEarly: children forged before that much reached their
	// forger; Left: forged after, not carrying them. NoVotes: the votes
	// never weighed more than 2/3 at the child's forger.
	Carried, ForgedEarly, Left, NoVotes int
	// Direct: finalized by the link to its child; Indirect: only as an
	// ancestor of a higher final block.
	Direct, Indirect int
	// ForkHeights: heights where nodes imported more than one block.
	// SplitTargets: blocks off the final chain that got votes.
	ForkHeights, SplitTargets int
	// Empty final blocks; Rests: gaps between consecutive final blocks'
	// timestamps longer than a slot, the longest MaxGap.
	Empty, Rests int
	MaxGap       time.Duration
	// TxIncl: a transfer's submission to its block's first import. Sign:
	// a node's import of a block to its own vote on it (as the block feed
	// reports the import: an upper bound).
	TxIncl, Sign [2]time.Duration
	// OverBudget: vote messages nodes dropped over the sender's budget.
	OverBudget int
	// VotesLost of VoteSlots (stakers × nodes, over the blocks timed):
	// votes for the block a node never took by gossip (it may still
	// have seen them in blocks).
	VotesLost, VoteSlots int
	// Truncated: a bound was reached; the figures cover what fitted.
	Truncated bool
}

func pq(ds []time.Duration) [2]time.Duration {
	p50, p99, _ := percentiles(ds)
	return [2]time.Duration{p50.Round(time.Millisecond), p99.Round(time.Millisecond)}
}

func (p PhaseReport) String() string {
	f := func(d [2]time.Duration) string { return fmt.Sprintf("%v/%v", d[0], d[1]) }
	return fmt.Sprintf("phases over %d blocks (p50/p99 from first import): 2/3 votes at some node %s, at the child's forger %s, child imported %s, justified %s, finalized by its child %s, final on a node %s; children carrying 2/3 of the parent's votes %d, forged before the votes reached the forger %d, votes there but left out %d, never 2/3 at the forger %d; finalized by own child %d, only under a higher final block %d; fork heights %d, off-chain blocks with votes %d; empty %d, gaps over a slot %d (max %v); transfer to inclusion %s; import to own vote %s; vote messages over budget %d; votes never taken by gossip %d of %d%s",
		p.Blocks, f(p.Votes), f(p.AtForger), f(p.Child), f(p.Justified), f(p.Finalized), f(p.Final),
		p.Carried, p.ForgedEarly, p.Left, p.NoVotes, p.Direct, p.Indirect, p.ForkHeights, p.SplitTargets,
		p.Empty, p.Rests, p.MaxGap.Round(time.Millisecond), f(p.TxIncl), f(p.Sign), p.OverBudget, p.VotesLost, p.VoteSlots, map[bool]string{true: " (truncated)", false: ""}[p.Truncated])
}

// phases computes the PhaseReport (r.mu held).
func (r *Recorder) phases() PhaseReport {
	p := &r.ph
	out := PhaseReport{Truncated: p.full, TxIncl: pq(p.txIncl), Sign: pq(p.sign), OverBudget: p.overBudget}
	thr := rpc.ThresholdLots(p.total)
	finals := r.fin.finalOf
	var votes, atForger, child, just, fin, final []time.Duration
	for h, hash := range finals {
		chash, ok := finals[h+1]
		b, c := p.blocks[hash], p.blocks[chash]
		t0 := r.firstSeen(hash)
		if !ok || b == nil || c == nil || t0.IsZero() {
			continue
		}
		out.Blocks++
		if b.txs == 0 {
			out.Empty++
		}
		if pb, ok := p.blocks[finals[h-1]]; ok && h > 1 {
			if gap := time.Duration(b.ts-pb.ts) * time.Millisecond; gap > p.slot {
				out.Rests++
				out.MaxGap = max(out.MaxGap, gap)
			}
		}
		bcp := chain.Checkpoint{Height: h, Hash: hash}
		ccp := chain.Checkpoint{Height: h + 1, Hash: chash}
		tc := r.firstSeen(chash)
		child = append(child, tc.Sub(t0))
		var ready time.Time
		if a := p.arr[bcp]; a != nil {
			var first time.Time
			for _, t := range a.ready {
				if !t.IsZero() && (first.IsZero() || t.Before(first)) {
					first = t
				}
			}
			if !first.IsZero() {
				votes = append(votes, first.Sub(t0))
			}
			for i := range r.nodes {
				out.VoteSlots += len(p.weight)
				if i >= len(a.seen) {
					out.VotesLost += len(p.weight)
					continue
				}
				for _, ok := range a.seen[i] {
					if !ok {
						out.VotesLost++
					}
				}
			}
			if fi, ok := p.addr[c.forger]; ok && fi < len(a.ready) && !a.ready[fi].IsZero() {
				ready = a.ready[fi]
				atForger = append(atForger, ready.Sub(t0))
			}
		}
		var carried uint64
		for _, v := range c.votes {
			if v.tgt == bcp && v.voter >= 0 {
				carried += p.weight[v.voter]
			}
		}
		switch {
		case carried >= thr:
			out.Carried++
		case ready.IsZero():
			out.NoVotes++
		case ready.After(tc):
			out.ForgedEarly++
		default:
			out.Left++
		}
		// Walk the final chain above: when do the included votes for b,
		// and for the link b -> child, first weigh more than 2/3?
		var forB, forLink uint64
		var tJust, tFin time.Time
		for k := h + 1; k <= h+64 && (tJust.IsZero() || tFin.IsZero()); k++ {
			kh, ok := finals[k]
			kb := p.blocks[kh]
			if !ok || kb == nil {
				break
			}
			for _, v := range kb.votes {
				if v.voter < 0 {
					continue
				}
				if v.tgt == bcp {
					forB += p.weight[v.voter]
				}
				if v.src == bcp && v.tgt == ccp {
					forLink += p.weight[v.voter]
				}
			}
			if forB >= thr && tJust.IsZero() {
				tJust = r.firstSeen(kh)
			}
			if forLink >= thr && tFin.IsZero() {
				tFin = r.firstSeen(kh)
			}
		}
		if !tJust.IsZero() {
			just = append(just, tJust.Sub(t0))
		}
		if tFin.IsZero() {
			out.Indirect++
		} else {
			out.Direct++
			fin = append(fin, tFin.Sub(t0))
		}
		for i, t := range p.finalAt[h] {
			if !t.IsZero() && !t0.Before(r.added[i]) && t.After(t0) {
				final = append(final, t.Sub(t0))
			}
		}
	}
	for _, n := range p.byHeight {
		if n > 1 {
			out.ForkHeights++
		}
	}
	for cp, a := range p.arr {
		if fh, ok := finals[cp.Height]; ok && fh != cp.Hash && len(a.lots) > 0 {
			out.SplitTargets++
		}
	}
	out.Votes, out.AtForger, out.Child = pq(votes), pq(atForger), pq(child)
	out.Justified, out.Finalized, out.Final = pq(just), pq(fin), pq(final)
	return out
}
