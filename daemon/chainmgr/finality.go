package chainmgr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/feed"
	"github.com/poslab/posd/daemon/store"
)

// Final on the node versus final in the chain's record.
//
// The chain's finality record (chain.Finality, in the state after each
// block) says what the votes included on one branch justify and finalize:
// a function of that branch alone, which any node syncing it computes
// the same. Two branches that both hold a final block may still disagree
// on how far finality got: one may carry votes the other lacks, so its
// record says final at 5 where the other's says 3.
//
// The node's final checkpoint (nodeFinal, Snapshot.Final) is the highest
// final checkpoint any record of its main chain ever showed it. It never
// goes down: a switch to a branch that holds it but whose own record
// proves less keeps it, fork choice v3 refuses every branch without it
// (conflicts_with_final), and it survives a restart. What the node reports
// as final (the status, /v1/finality, a transaction's final flag, the
// finalized events, the metrics) is this checkpoint; what a voter and a
// forger build on (the justified source, the votes still wanted, the vote
// pool's stale line, whether a heartbeat is due) is the branch's record,
// since only votes included on the branch move it.

// metaFinal is the store's meta key of the node's final checkpoint.
const metaFinal = "chainmgr.final"

// finalRecordVersion leads the stored checkpoint:
// version (1) height (8, big endian) hash (32).
const (
	finalRecordVersion = 1
	finalRecordLen     = 1 + 8 + 32
)

// nodeFinal is the node's final checkpoint: the highest the main chain's
// record ever showed, never lower. It is stored only when the main chain's
// own record would not give it back after a restart: before a switch to a
// branch whose record is lower (keep), in the same kind of bbolt commit
// as the node's other records. Extending the head never lowers the record,
// so the head's record holds it otherwise, and New takes the higher of the
// two. Changed only under the import lock (or in New); readers read the
// snapshot's copy.
type nodeFinal struct {
	st     Store
	cp     chain.Checkpoint
	stored chain.Checkpoint // what the store holds under metaFinal
}

// loadNodeFinal reads the stored checkpoint and raises it to rec, the
// final checkpoint of the state the store loaded. A stored record that
// does not decode is a corrupt store (store.ErrCorrupt).
func loadNodeFinal(st Store, rec chain.Checkpoint) (*nodeFinal, error) {
	f := &nodeFinal{st: st}
	v, err := st.Meta(metaFinal)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("chainmgr: read the node's final checkpoint: %w", err)
	default:
		if f.cp, err = decodeFinal(v); err != nil {
			return nil, err
		}
		f.stored = f.cp
	}
	f.raise(rec)
	return f, nil
}

func encodeFinal(cp chain.Checkpoint) []byte {
	v := make([]byte, 0, finalRecordLen)
	v = append(v, finalRecordVersion)
	v = binary.BigEndian.AppendUint64(v, cp.Height)
	return append(v, cp.Hash[:]...)
}

func decodeFinal(v []byte) (chain.Checkpoint, error) {
	var cp chain.Checkpoint
	if len(v) != finalRecordLen || v[0] != finalRecordVersion {
		return cp, fmt.Errorf("%w: the node's final checkpoint (meta %q) does not decode (%d bytes): move the store away or restore it", store.ErrCorrupt, metaFinal, len(v))
	}
	cp.Height = binary.BigEndian.Uint64(v[1:])
	copy(cp.Hash[:], v[9:])
	return cp, nil
}

// raise takes rec if it is higher (the first record taken at all, genesis
// included, when there is none yet). It reports whether it moved.
func (f *nodeFinal) raise(rec chain.Checkpoint) bool {
	if !higherFinal(rec, f.cp) {
		return false
	}
	f.cp = rec
	return true
}

// higherFinal reports whether rec is above cur, or the first final
// checkpoint (cur zero).
func higherFinal(rec, cur chain.Checkpoint) bool {
	return rec.Height > cur.Height || (cur == chain.Checkpoint{} && rec != cur)
}

// keep stores the checkpoint before a commit that leaves the main chain
// with rec as its record, when rec is lower (the restart would forget it
// otherwise) and the store does not hold it yet.
func (f *nodeFinal) keep(rec chain.Checkpoint) error {
	if rec.Height >= f.cp.Height || f.stored == f.cp {
		return nil
	}
	if err := f.st.PutMeta(metaFinal, encodeFinal(f.cp)); err != nil {
		return err
	}
	f.stored = f.cp
	return nil
}

// Finality events: when a commit moves the main chain's justified
// checkpoint (its record) or the node's final checkpoint, the manager tells
// its finality subscribers, after the snapshot is swapped in. The fan-out
// is the node's event feed (daemon/feed) with a lossy policy: each
// subscriber has finalityBuffer events of room and misses the newest while
// it has none (the next event, or the snapshot, says where finality is).
// Imports never wait for a subscriber.

const (
	finalityBuffer  = 64
	maxFinalitySubs = 256
)

// finalityEvents is the manager's finality feed. The Manager embeds it, so
// SubscribeFinality is the manager's.
type finalityEvents struct {
	feed *feed.Feed[rpc.FinalityEvent]
	now  func() time.Time
	log  *slog.Logger
}

func newFinalityEvents(now func() time.Time, log *slog.Logger) *finalityEvents {
	return &finalityEvents{feed: feed.New[rpc.FinalityEvent](feed.Options{MaxSubscribers: maxFinalitySubs}), now: now, log: log}
}

// SubscribeFinality delivers rpc.EventJustified events (the main chain's
// record) and rpc.EventFinalized events (the node's final checkpoint,
// which only rises: Snapshot.Final), each with the time this node saw it
// so, in commit order, until cancel is called or the manager closes (the
// channel is closed then). A subscriber that does not keep up misses
// events (feed.DropNewest). Past maxFinalitySubs subscribers, the channel
// comes closed.
func (e *finalityEvents) SubscribeFinality() (<-chan rpc.FinalityEvent, func()) {
	s, err := e.feed.Subscribe(feed.DropNewest[rpc.FinalityEvent](finalityBuffer))
	if err != nil {
		e.log.Warn("finality events: subscription refused", "err", err.Error())
		ch := make(chan rpc.FinalityEvent)
		close(ch)
		return ch, func() {}
	}
	return s.C(), s.Cancel
}

// emit compares two successive snapshots and tells subscribers what
// moved: the justified checkpoint first, then the node's final one.
func (e *finalityEvents) emit(old, cur *Snapshot) {
	if old == nil {
		return
	}
	oj, nj := old.Finality().Justified, cur.Finality().Justified
	now := e.now().UnixMilli()
	if nj != oj && nj != (chain.Checkpoint{}) {
		e.feed.Send(rpc.FinalityEvent{Type: rpc.EventJustified, Checkpoint: nj, Time: now})
	}
	if higherFinal(cur.final, old.final) {
		e.feed.Send(rpc.FinalityEvent{Type: rpc.EventFinalized, Checkpoint: cur.final, Time: now})
	}
}

// close ends every finality subscription.
func (e *finalityEvents) close() { e.feed.Close() }
