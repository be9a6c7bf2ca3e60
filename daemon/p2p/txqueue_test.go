package p2p

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/poslab/posd/chain"
)

// txQueueLimit is the budget of txQueueBudget: what a peer that never
// reads may make us hold in the tx router's queue for it (it was 4 GiB
// with 4096 messages of ~1 MiB).
const txQueueLimit = 48 << 20

// TestTxRouterQueueBound: the tx router's running queues and message
// limit are the configured ones, and their product stays in budget.
func TestTxRouterQueueBound(t *testing.T) {
	if txQueueBudget > txQueueLimit {
		t.Fatalf("tx router holds up to %d MiB per peer, budget %d MiB", txQueueBudget>>20, txQueueLimit>>20)
	}
	n := startNode(t, newFakeChain("g"), nil)
	for _, c := range []struct {
		name          string
		ps            *pubsub.PubSub
		queue, maxMsg int
	}{
		{"tx", n.ps, txQueue, maxTxMessageSize},
		{"block", n.bps, blockQueue, maxMessageSize},
	} {
		// The options leave no getter: read the router's fields.
		v := reflect.ValueOf(c.ps).Elem()
		outbound := int(v.FieldByName("peerOutboundQueueSize").Int())
		maxMsg := int(v.FieldByName("maxMessageSize").Int())
		validate := v.FieldByName("val").Elem().FieldByName("validateQ").Cap()
		if outbound != c.queue || validate != c.queue || maxMsg != c.maxMsg {
			t.Errorf("%s router: outbound queue %d, validate queue %d, max message %d; want %d, %d, %d",
				c.name, outbound, validate, maxMsg, c.queue, c.queue, c.maxMsg)
		}
	}
}

// TestTxBatchUnderMaxMessage: however large the transactions, what the
// outbox, the rebroadcast (salted) and a gap fill answer send fits a tx
// router message, so none is dropped for its size.
func TestTxBatchUnderMaxMessage(t *testing.T) {
	big := tx(1)
	big.ChainID = strings.Repeat("c", maxTxLen-len(chain.EncodeTx(&big))-8)
	if n := len(chain.EncodeTx(&big)); n > maxTxLen || n < maxTxLen-64 {
		t.Fatalf("big tx of %d bytes", n)
	}
	for _, c := range []struct {
		name string
		tx   chain.Transaction
		n    int
	}{
		{"small", tx(1), 3 * maxBatchTxs},
		{"big", big, 3 * maxBatchBytes / maxTxLen},
		{"one big", big, 1},
	} {
		encs := make([][]byte, c.n)
		for i := range encs {
			encs[i] = chain.EncodeTx(&c.tx)
		}
		for msgs := 0; len(encs) > 0; msgs++ {
			data, used := frameTxBatch(encs)
			data = appendSalt(data)
			if used == 0 || used > maxBatchTxs || len(data) > maxBatchBytes+binary.MaxVarintLen32+1+saltLen || len(data) > maxTxMessageSize {
				t.Fatalf("%s: message %d: %d transactions in %d bytes (max %d)", c.name, msgs, used, len(data), maxTxMessageSize)
			}
			encs = encs[used:]
		}
	}
	if fillAnswerBytes <= 0 || fillAnswerBytes+fillMaxTxs*binary.MaxVarintLen32 > maxBatchBytes {
		t.Fatalf("fill answers of %d bytes do not fit a batch of %d", fillAnswerBytes, maxBatchBytes)
	}
}
