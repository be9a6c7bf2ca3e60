package p2p

import "github.com/poslab/posd/chain"

// Gossipsub's message id here is the SHA-256 of the data, and every node,
// the publisher included, drops a message whose id it saw in the last
// 120 s (swept once a minute, so up to three minutes). Transactions that
// linger in a pool because no forger heard them must go out again as new
// messages: RepublishTxs appends a random salt trailer to each batch, which
// decodeTxBatch accepts and ignores. Receivers still drop the transactions
// they hold (their validators ignore known ones), so a salt costs one
// message per peer, never a storm.

// saltTag starts the trailer after a batch's transactions; saltLen bytes
// of random salt follow.
const (
	saltTag = 0x53 // 'S'
	saltLen = 8
)

// RepublishTxs gossips txs again as messages no node has seen: the
// outbox salts the messages it sends them in (txout.go).
func (n *Node) RepublishTxs(txs []chain.Transaction) {
	n.txOut.add(n.ctx, txs, true, true)
}

// isSaltTrailer reports whether rest, what follows a batch's transactions,
// is RepublishTxs's trailer.
func isSaltTrailer(rest []byte) bool {
	return len(rest) == 1+saltLen && rest[0] == saltTag
}
