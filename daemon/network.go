package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/internal/tune"
)

// metaJoinURL remembers the API a node joined through, so it finds its
// network again after a restart without flags.
const metaJoinURL = "join_url"

// metaOwnGenesis marks a home whose first start had its genesis from
// --genesis or --genesis-file: restarted without flags, it joins nobody
// (the default join URL is for a home with no chain, and a node that made
// the network would otherwise look for itself on port 5001, warning every
// ten seconds, whenever its API is elsewhere).
const metaOwnGenesis = "own_genesis"

// startNetwork starts the libp2p side for n and connects to the network:
// --peers, mDNS, and the p2p addresses the join URL's node reports.
func startNetwork(ctx context.Context, n *Node) (Network, error) {
	nw, err := p2p.New(ctx, p2p.Config{
		ListenHost: n.cfg.Host,
		Port:       n.cfg.P2PPort,
		PrivateKey: n.key.PrivateKey(),
		ChainID:    n.g.ChainID,
		Peers:      n.cfg.Peers,
		MDNS:       n.cfg.MDNS,
		Logger:     n.log.With("component", "p2p"),
		Metrics:    n.prom.Registry,
		NewHost:    n.cfg.P2PHost,
		// Votes are checked with the transactions' batch verifier.
		SigVerifier: n.chain.Verifier().Batch(),
		CatchUp:     tune.CatchingUp,
	}, n.p2pHandler())
	if err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	if url := n.joinURL(); url != "" {
		go n.joinPeers(ctx, nw, url)
	}
	return nw, nil
}

// joinURL is --join, else the URL this node joined through before, else the
// default join URL for a node that neither made nor joined a network.
func (n *Node) joinURL() string {
	if n.cfg.NoJoin {
		return ""
	}
	if n.cfg.Join != "" {
		n.chain.PutMeta(metaJoinURL, []byte(n.cfg.Join))
		return n.cfg.Join
	}
	if v, err := n.chain.Meta(metaJoinURL); err == nil {
		return string(v)
	}
	if n.cfg.NewNetwork || n.cfg.GenesisFile != "" {
		n.chain.PutMeta(metaOwnGenesis, []byte{1})
		return ""
	}
	if _, err := n.chain.Meta(metaOwnGenesis); err == nil {
		return ""
	}
	return DefaultJoinURL
}

// joinPeers learns the p2p addresses of the node at url and connects,
// retrying for a while: the other node may be starting too.
func (n *Node) joinPeers(ctx context.Context, nw *p2p.Node, url string) {
	c := client.New(url, client.WithTimeout(5*time.Second))
	for attempt := 0; ; attempt++ {
		status, err := c.Status(ctx)
		if err == nil && status.PeerID == nw.ID() {
			return // we are the node at url
		}
		if err == nil && len(status.P2PAddrs) > 0 {
			if err = nw.Connect(ctx, status.P2PAddrs); err == nil {
				n.log.Info("connected to the network", "via", url, "peer", status.PeerID)
				n.connectPeersOf(ctx, c, nw)
				return
			}
		}
		if attempt == 0 || attempt%10 == 0 {
			n.log.Warn("cannot reach the node to join yet", "url", url, "err", fmt.Sprint(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// connectPeersOf connects to the peers of the node at url too, so the
// network is a mesh rather than a star around the first node, and losing
// that node does not split the others.
func (n *Node) connectPeersOf(ctx context.Context, c *client.Client, nw *p2p.Node) {
	peers, err := c.Peers(ctx)
	if err != nil {
		return
	}
	for _, p := range peers {
		if p.ID == nw.ID() || len(p.Addrs) == 0 {
			continue
		}
		if err := nw.Connect(ctx, p.Addrs); err != nil {
			n.log.Debug("could not connect to a peer of the join node", "peer", p.ID, "err", err.Error())
		}
	}
}

// p2pChain is what the network handler needs of the chain.
type p2pChain interface {
	Snapshot() *chainmgr.Snapshot
	ProcessBlock(b *chain.Block) error
	ProcessBlocks(blocks []*chain.Block) (int, error)
	Blocks(from uint64, limit int) ([]*chain.Block, error)
}

// p2pPool is what the network handler needs of the mempool.
type p2pPool interface {
	PendingNonce(a chain.Address, st mempool.StateView) uint64 // txfill.go
	Run(a chain.Address, from uint64, limit, maxBytes int) []chain.Transaction
}

// The pool tells late views from new ones by the snapshots' versions.
var _ mempool.Versioned = (*chainmgr.Snapshot)(nil)

// newestView gives the pool the newest snapshot at each of its looks (it
// looks twice: to screen, then to admit). A snapshot is Versioned, so an
// Update of the pool running a commit late never takes a sender back.
func newestView(c interface{ Snapshot() *chainmgr.Snapshot }) func() mempool.StateView {
	return func() mempool.StateView { return c.Snapshot() }
}

// p2pHandler is the node as the network sees it (p2p.Handler).
type p2pHandler struct {
	chain   p2pChain
	pool    p2pPool
	chainID string
	genesis chain.Hash
	poke    func() // a transaction arrived: wake the forger
	txm     *metrics.Txs
	sigs    txSigs // the pool's: checks what HandleTxsGaps trusts (txfill.go)
	// admit is the node's one door for transactions (txadmit), the API's too.
	admit interface {
		Admit(txs []chain.Transaction, from mempool.Origin) ([]error, []chain.Transaction)
	}
	// evidence takes equivocation evidence from peers (lab.go).
	evidence interface {
		AddEvidence(e chain.Evidence) (bool, error)
	}
	// votes pools finality votes from peers (finality.go).
	votes interface {
		AddBatch(votes []chain.Vote) []error
	}
}

func (n *Node) p2pHandler() p2pHandler {
	return p2pHandler{chain: n.chain, pool: n.pool, admit: n.admit, chainID: n.g.ChainID, genesis: n.genesisHash, poke: n.forger.Poke, txm: n.prom.Txs, sigs: n.chain.Verifier(), evidence: n.chain.EvidencePool(), votes: n.fin.pool}
}

func (h p2pHandler) GenesisHash() chain.Hash { return h.genesis }

func (h p2pHandler) Head() (uint64, chain.Hash) {
	s := h.chain.Snapshot()
	return s.Height(), s.HeadHash()
}

// txSigs is the node's signature verifier as the network handler uses it
// (chainmgr.Verifier): batch checks, and whether a signature was verified
// before.
type txSigs interface {
	mempool.SigVerifier
	Cached(tx *chain.Transaction) bool
}

// HandleTxs pools gossiped transactions and returns those to relay: the
// ones admitted as executable (and the message's known ones, see
// relayOf). A transaction that breaks a stateless rule or carries a bad
// signature is the sender's fault and rejects the message; what the pool
// cannot take now (known, gapped beyond its bounds, unpayable given this
// node's view, over the stake totals on this node's head, a full pool) is
// only dropped: not relayed, nobody penalised. Signatures are verified
// outside every lock.
func (h p2pHandler) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	ready, errs, err := h.handleTxs(txs)
	if err != nil {
		return nil, err
	}
	return h.relayOf(txs, ready, errs), nil
}

// relayOf is what to gossip of a message of txs whose admission made
// ready executable, errs saying why the others were refused: ready, and
// with it the message's transactions refused only because this node
// already holds or has committed them (already_known, bad_nonce) and
// whose signatures it verified before, when every other transaction of
// the message is in ready and those are no more than the message's ready
// ones. The message then goes on as it came (p2p's relayBeyond): a peer
// that has it drops it by its id, unread, where ready alone, a new
// message, would be read whole by every peer and refused as known. That
// is the common case under load: a block that took part of a message
// reached this node before the message did (blocks travel apart from
// transactions), and a 4-node devnet refused over a million copies a
// 200,000-transfer load (docs/PERFORMANCE.md). Only verified signatures
// go on, so no peer can blame this node for one; at most as many as are
// new, so a message padded with old transactions (or one repeated) goes
// on at no more than twice the size of what it brings.
func (h p2pHandler) relayOf(txs, ready []chain.Transaction, errs []error) []chain.Transaction {
	if len(ready) == 0 {
		return nil
	}
	// Compared whole, as relayBeyond does: a transaction of the message
	// admitted and then evicted by a later one in the batch may share its
	// sender and nonce with one that is ready.
	isReady := make(map[chain.Transaction]bool, len(ready))
	for i := range ready {
		isReady[ready[i]] = true
	}
	var known []int
	fresh := 0 // the message's own ready transactions
	for i, err := range errs {
		switch {
		case err == nil && isReady[txs[i]]:
			fresh++
		case err == nil: // queued behind a gap: the message does not go on whole
			return ready
		case errors.Is(err, mempool.ErrAlreadyKnown), errors.Is(err, chain.ErrBadNonce):
			known = append(known, i)
		default:
			return ready
		}
	}
	if len(known) == 0 || len(known) > fresh {
		return ready
	}
	for _, i := range known {
		if !h.sigs.Cached(&txs[i]) {
			return ready
		}
	}
	relay := slices.Clip(ready)
	for _, i := range known {
		relay = append(relay, txs[i])
	}
	return relay
}

// handleTxs is HandleTxs that also returns the errors per transaction.
func (h p2pHandler) handleTxs(txs []chain.Transaction) ([]chain.Transaction, []error, error) {
	errs, ready := h.admit.Admit(txs, mempool.Relayed) // as the API admits; never waits for an import
	h.txm.Admitted(metrics.SourceP2P, errs)
	for _, err := range errs {
		if isTxRuleBreak(err) {
			return nil, nil, p2p.Reject(err)
		}
	}
	if len(ready) > 0 {
		h.poke()
	}
	return ready, errs, nil
}

// isTxRuleBreak reports whether err is a rule a transaction breaks by
// itself, whatever the state: its sender had to know.
func isTxRuleBreak(err error) bool {
	if err == nil {
		return false
	}
	switch chain.CodeOf(err) { // one walk of err's chain, not one a rule
	case chain.ErrUnknownType.Code, chain.ErrZeroAmount.Code, chain.ErrBadAddress.Code,
		chain.ErrBadPublicKey.Code, chain.ErrFromMismatch.Code, chain.ErrBadSignature.Code, chain.ErrWrongChain.Code,
		chain.ErrStakeNotSelf.Code, chain.ErrTxTooLarge.Code:
		return true
	}
	return false
}

// HandleBlock imports a gossiped or synced block.
func (h p2pHandler) HandleBlock(b *chain.Block) error {
	return h.mapBlockErr(h.chain.ProcessBlock(b))
}

// mapBlockErr translates import outcomes into the network's terms: only a
// block that breaks a rule is the sender's fault (rejected, the peer
// penalised). Our disk, our clock, our halted state, a shutdown or a branch
// forking too deep for us are ignored: not forwarded, nobody penalised.
func (h p2pHandler) mapBlockErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrKnownBlock), errors.Is(err, ErrSideBlock):
		return p2p.ErrIgnore
	case errors.Is(err, ErrUnknownParent):
		return p2p.ErrUnknownParent
	case chainmgr.IsPeerFault(err):
		return p2p.Reject(err)
	}
	return fmt.Errorf("%w: %v", p2p.ErrIgnore, err)
}

// HasBlock tells gossip whether a block is stored (p2p.BlockKnower): a
// peer that keeps sending blocks on parents it cannot serve is penalised.
func (h p2pHandler) HasBlock(hash chain.Hash) bool {
	if k, ok := h.chain.(p2p.BlockKnower); ok {
		return k.HasBlock(hash)
	}
	return true // cannot tell: nobody is blamed
}

// HandleBlocks imports a synced range in one commit.
func (h p2pHandler) HandleBlocks(blocks []*chain.Block) (int, error) {
	n, err := h.chain.ProcessBlocks(blocks)
	return n, h.mapBlockErr(err)
}

func (h p2pHandler) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	return h.chain.Blocks(from, limit)
}
