package p2p

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/poslab/posd/chain"
)

// Transactions leave a node through one outbox, coalesced into batch
// messages at most every txFlushGap. Peers budget tx messages per second
// (DefaultTxMsgRate, burst twice that) and drop, unpenalised, what comes
// over it; a message per accepted API request went over it as soon as a
// client sent one transfer per request faster than 50 a second, and the
// forgers were left with nonce gaps that only the 15 s rebroadcast filled
// (transfers through a low-stake node waited 8–30 s). Coalesced, a node
// flushes at most 1/txFlushGap times a second whatever its clients do;
// a flush is one message while the outbox holds at most maxBatchTxs
// transactions and maxBatchBytes, and one more per such batch beyond
// (a full outbox, txOutboxBytes, is some 32 messages at once, within a
// peer's burst and txQueue).

const (
	// txFlushGap is the pause between two flushes of the outbox: what
	// arrives meanwhile shares the next messages. 20 flushes a second,
	// one message each below a full batch, leave room in a peer's budget
	// for the messages this node relays.
	txFlushGap = 50 * time.Millisecond
	// txOutboxBytes bounds the encoded transactions waiting in the outbox.
	// The API's submissions wait for room (back-pressure on the client);
	// relays from the tx validator never wait and are dropped, counted
	// and logged (the origin regossips lingering transactions anyway).
	txOutboxBytes = 16 << 20
)

// txOutbox is the queue of encoded transactions waiting to be gossiped.
type txOutbox struct {
	mu    sync.Mutex
	encs  [][]byte
	bytes int
	salt  bool          // some of encs are regossiped: salt the next messages
	freed chan struct{} // closed (and replaced) when take frees room
	wake  chan struct{} // one token: the outbox is not empty

	dropped  uint64 // relayed transactions that found no room
	lastWarn time.Time
}

func newTxOutbox() *txOutbox {
	return &txOutbox{freed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// add queues txs. With wait it waits for room (until ctx ends); without,
// what does not fit is dropped. It returns how many were queued.
func (o *txOutbox) add(ctx context.Context, txs []chain.Transaction, salt, wait bool) int {
	queued := 0
	for i := range txs {
		enc := chain.EncodeTx(&txs[i])
		for {
			o.mu.Lock()
			if o.bytes+len(enc) <= txOutboxBytes || o.bytes == 0 {
				o.encs = append(o.encs, enc)
				o.bytes += len(enc)
				o.salt = o.salt || salt
				o.mu.Unlock()
				queued++
				break
			}
			freed := o.freed
			o.mu.Unlock()
			o.notify()
			if !wait {
				o.drop(len(txs) - i)
				return queued
			}
			select {
			case <-freed:
			case <-ctx.Done():
				return queued
			}
		}
	}
	if queued > 0 {
		o.notify()
	}
	return queued
}

func (o *txOutbox) notify() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *txOutbox) drop(count int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropped += uint64(count)
}

// take empties the outbox.
func (o *txOutbox) take() (encs [][]byte, salt bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	encs, salt = o.encs, o.salt
	o.encs, o.bytes, o.salt = nil, 0, false
	close(o.freed)
	o.freed = make(chan struct{})
	return encs, salt
}

// txFlushLoop publishes the outbox's transactions as batch messages, at
// most one flush per txFlushGap.
func (n *Node) txFlushLoop() {
	o := n.txOut
	lastFail := map[*pubsub.Topic]time.Time{}
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-o.wake:
		}
		encs, salt := o.take()
		for len(encs) > 0 {
			data, used := frameTxBatch(encs)
			encs = encs[used:]
			if salt {
				data = appendSalt(data)
			}
			n.publishOne(pubItem{n.txTopic, data}, lastFail)
		}
		n.warnDropped(o)
		pause.Reset(txFlushGap)
		select {
		case <-n.ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// warnDropped logs relays the outbox had no room for, at most every 10 s.
func (n *Node) warnDropped(o *txOutbox) {
	o.mu.Lock()
	dropped := o.dropped
	if dropped == 0 || time.Since(o.lastWarn) < 10*time.Second {
		o.mu.Unlock()
		return
	}
	o.dropped, o.lastWarn = 0, time.Now()
	o.mu.Unlock()
	n.log.Warn("p2p: tx outbox full, relayed transactions not gossiped", "count", dropped, "limit_bytes", txOutboxBytes)
}

// frameTxBatch frames a prefix of encoded transactions as one batch
// message (encodeTxBatch's format) and returns how many it took (at least
// one).
func frameTxBatch(encs [][]byte) ([]byte, int) {
	size, used := 0, 0
	for _, enc := range encs {
		if used > 0 && (size+len(enc)+binary.MaxVarintLen32 > maxBatchBytes || used == maxBatchTxs) {
			break
		}
		size += len(enc) + binary.MaxVarintLen32
		used++
	}
	out := make([]byte, 0, size+binary.MaxVarintLen32+1+saltLen)
	out = binary.AppendUvarint(out, uint64(used))
	for _, enc := range encs[:used] {
		out = binary.AppendUvarint(out, uint64(len(enc)))
		out = append(out, enc...)
	}
	return out, used
}

// appendSalt appends RepublishTxs's salt trailer (regossip.go).
func appendSalt(data []byte) []byte {
	var salt [saltLen]byte
	_, _ = rand.Read(salt[:])
	return append(append(data, saltTag), salt[:]...)
}

// TxMessagesOverBudget counts the tx messages this node dropped because
// their peer sent them over its budget (DefaultTxMsgRate, DefaultTxRate):
// a peer that coalesces its gossip should cause none.
func (n *Node) TxMessagesOverBudget() uint64 { return n.txOverBudget.Load() }

// TxMessagesOverTurns counts the tx messages this node dropped because
// maxTxPending were holding turns already (txturns.go).
func (n *Node) TxMessagesOverTurns() uint64 { return n.txTurnsFull.Load() }
