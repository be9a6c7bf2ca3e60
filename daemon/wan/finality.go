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
	backsteps  int // finalized events below the node's final height
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
		// A node that moves to another branch takes that branch's record,
		// which may prove less (the votes that finalized prev were in
		// blocks of the branch it left): its reported final height goes
		// back although every block stays. Counted, not a violation; the
		// blocks up to prev stay protected (finalH keeps prev).
		if cp.Height < prev {
			f.backsteps++
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
		if first := r.firstSeen(h); !first.IsZero() && !first.Before(r.added[i]) && at.After(first) {
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
}

func (f FinalityReport) String() string {
	return fmt.Sprintf("final height %d, block to final p50 %v p99 %v (%d samples), transfer to final p50 %v p99 %v max %v (%d final, %d not final), final height back %d times",
		f.Final, f.BlockP50.Round(time.Millisecond), f.BlockP99.Round(time.Millisecond), f.BlockSamples,
		f.TxP50.Round(time.Millisecond), f.TxP99.Round(time.Millisecond), f.TxMax.Round(time.Millisecond), f.TxFinal, f.TxNotFinal, f.Backsteps)
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
	return out
}
