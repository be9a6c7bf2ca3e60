package daemon

import "github.com/poslab/posd/chain"

// republisher is a Network that can gossip transactions again as new
// messages (p2p.Node.RepublishTxs): the same bytes would be dropped as
// already seen for minutes, the publisher's own cache included.
type republisher interface {
	RepublishTxs(txs []chain.Transaction)
}

// regossip sends lingering pool transactions out again.
func (n *Node) regossip(txs []chain.Transaction) {
	if rp, ok := n.net.(republisher); ok {
		rp.RepublishTxs(txs)
		return
	}
	n.net.PublishTxs(txs)
}
