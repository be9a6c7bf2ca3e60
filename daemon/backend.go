package daemon

import (
	"encoding/hex"
	"errors"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// The methods below implement api.Backend.
var _ api.Backend = (*Node)(nil)

// Status reports the chain head and the node's policy.
func (n *Node) Status() rpc.Status {
	head := n.chain.Head()
	blockSize, interval := n.forger.policy()
	s := rpc.Status{
		ChainID:         n.g.ChainID,
		GenesisHash:     n.genesisHash(),
		Height:          head.Height,
		HeadHash:        head.Hash(),
		HeadTimestamp:   head.Timestamp,
		Address:         string(n.key.Address()),
		Election:        n.g.Election,
		BlockSize:       blockSize,
		BlockIntervalMs: interval.Milliseconds(),
		Pending:         n.pool.Len(),
		P2PAddrs:        []string{},
		Version:         Version,
		Byzantine:       n.Byzantine(),
	}
	if behind, ok := n.chain.ClockBehind(); ok {
		s.ClockBehindMs = behind.Milliseconds()
	}
	if n.net != nil {
		s.PeerID = n.net.ID()
		s.P2PAddrs = n.net.Addrs()
		s.Peers = len(n.net.Peers())
	}
	return s
}

// Genesis is the network's genesis.
func (n *Node) Genesis() *chain.Genesis { return n.g }

// Height is the head's height.
func (n *Node) Height() uint64 { return n.chain.Head().Height }

// Head is the head block.
func (n *Node) Head() *chain.Block { return n.chain.Head() }

// Accounts lists every account in address order, from the current
// snapshot: it never waits for an import.
func (n *Node) Accounts() []rpc.Account {
	entries := n.chain.Snapshot().Accounts()
	out := make([]rpc.Account, len(entries))
	for i, e := range entries {
		out[i] = rpc.Account{Address: e.Address, Balance: e.Balance, Stake: e.Stake, Nonce: e.Nonce, Unbonding: e.Unbonding, ReleaseHeight: e.Release}
	}
	return out
}

// Account returns one account with its pending nonce.
func (n *Node) Account(a chain.Address) rpc.Account {
	acc := n.chain.Account(a)
	pending := n.pool.PendingNonce(a, n.chain)
	return rpc.Account{Address: a, Balance: acc.Balance, Stake: acc.Stake, Nonce: acc.Nonce,
		Unbonding: acc.Unbonding, ReleaseHeight: acc.Release, PendingNonce: &pending}
}

// Stakes lists stakers, largest first, with their share of all stake.
func (n *Node) Stakes() []rpc.Stake {
	stakers, total := n.chain.Snapshot().Stakers()
	out := make([]rpc.Stake, len(stakers))
	for i, e := range stakers {
		out[i] = rpc.Stake{Address: e.Address, Stake: e.Stake, Share: float64(e.Stake) / float64(total),
			Unbonding: e.Unbonding, ReleaseHeight: e.Release}
	}
	return out
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return api.ErrNotFound
	}
	return err
}

// BlockByHeight returns a main-chain block.
func (n *Node) BlockByHeight(h uint64) (*chain.Block, error) {
	b, err := n.chain.BlockByHeight(h)
	return b, notFound(err)
}

// BlockByHash returns any stored block, main chain or side branch.
func (n *Node) BlockByHash(h chain.Hash) (*chain.Block, error) {
	b, err := n.chain.BlockByHash(h)
	return b, notFound(err)
}

// Blocks returns main-chain blocks ascending from `from`.
func (n *Node) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	return n.chain.Blocks(from, limit)
}

// PendingTxs lists the pool.
func (n *Node) PendingTxs() []chain.Transaction { return n.pool.All() }

// TxInfo finds a transaction in the pool or the chain.
func (n *Node) TxInfo(id chain.Hash) (rpc.TxInfo, error) {
	if tx, ok := n.pool.Get(id); ok {
		return rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx}, nil
	}
	height, index, err := n.chain.TxLocation(id)
	if err != nil {
		return rpc.TxInfo{}, notFound(err)
	}
	b, err := n.chain.BlockByHeight(height)
	if err != nil {
		return rpc.TxInfo{}, notFound(err)
	}
	// The index and the block are two reads: a reorg between them could
	// put another transaction at that place.
	if index >= len(b.Transactions) || b.Transactions[index].ID() != id {
		return rpc.TxInfo{}, api.ErrNotFound
	}
	hash := b.Hash()
	tx := b.Transactions[index]
	var conf uint64
	if head := n.chain.Snapshot().Height(); head >= height {
		conf = head - height + 1
	}
	return rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: &height, BlockHash: &hash, Index: &index, Confirmations: &conf, Transaction: &tx}, nil
}

// SubmitTx admits one transaction to the pool and gossips it.
func (n *Node) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	ids, errs := n.SubmitTxs([]chain.Transaction{tx})
	return ids[0], errs[0]
}

// SubmitTxs admits transactions (signatures verified in parallel) against
// the current snapshot, without waiting for any import, and gossips the
// accepted ones in one message.
func (n *Node) SubmitTxs(txs []chain.Transaction) ([]chain.Hash, []error) {
	ids := make([]chain.Hash, len(txs))
	for i := range txs {
		ids[i] = txs[i].ID()
	}
	// One door with gossip (txadmit): a stake change the chain would refuse
	// on the head (stake_limit, stake_floor) is refused with its code, the
	// rest is pooled against the newest snapshot; ids computed once.
	errs, ready := n.admit.Admit(txs, ids)
	for i, err := range errs {
		// A replay of a committed transaction says so, rather than bad_nonce.
		if errors.Is(err, chain.ErrBadNonce) {
			if _, _, lerr := n.chain.TxLocation(ids[i]); lerr == nil {
				errs[i] = &chain.RuleError{Code: mempool.ErrAlreadyKnown.Code, Message: "transaction " + ids[i].String() + " is already committed"}
			}
		}
	}
	n.prom.Txs.Admitted(metrics.SourceAPI, errs)
	// Only what became executable is gossiped; gapped ones wait here.
	if len(ready) > 0 {
		if n.net != nil {
			n.net.PublishTxs(ready)
		}
		n.forger.poke()
	}
	return ids, errs
}

// Config is the forging policy.
func (n *Node) Config() rpc.Config {
	blockSize, interval := n.forger.policy()
	return rpc.Config{
		BlockSize:       blockSize,
		BlockIntervalMs: interval.Milliseconds(),
		PoolLimit:       n.pool.Limit(),
	}
}

// SetConfig changes the forging policy at runtime.
func (n *Node) SetConfig(p rpc.ConfigPatch) (rpc.Config, error) {
	bad := func(msg string) error { return &chain.RuleError{Code: "bad_request", Message: msg} }
	if p.BlockSize != nil && (*p.BlockSize < 1 || *p.BlockSize > n.g.MaxBlockTxs) {
		return rpc.Config{}, bad("block_size must be between 1 and max_block_txs")
	}
	if p.BlockIntervalMs != nil && (*p.BlockIntervalMs < 1 || *p.BlockIntervalMs > 24*3600*1000) {
		return rpc.Config{}, bad("block_interval_ms must be between 1 and 86400000")
	}
	if p.PoolLimit != nil && *p.PoolLimit < 1 {
		return rpc.Config{}, bad("pool_limit must be at least 1")
	}
	if p.PoolLimit != nil {
		n.pool.SetLimit(*p.PoolLimit)
	}
	var size int
	var interval time.Duration
	if p.BlockSize != nil {
		size = *p.BlockSize
	}
	if p.BlockIntervalMs != nil {
		interval = time.Duration(*p.BlockIntervalMs) * time.Millisecond
	}
	n.forger.setPolicy(size, interval)
	size, interval = n.forger.policy()
	n.log.Info("forging policy changed", "block_size", size, "block_interval", interval.String())
	n.saveSettings()
	return n.Config(), nil
}

// StakeFromNode stakes amount from the node's own key.
func (n *Node) StakeFromNode(amount uint64) (chain.Hash, error) {
	tx, err := n.submitOwn(chain.Transaction{Type: chain.TxStake, ChainID: n.g.ChainID, To: n.key.Address(), Amount: amount})
	return tx.ID(), err
}

// NodeKey is the node's public key.
func (n *Node) NodeKey() rpc.NodeKey {
	pemBytes, _ := keystore.PublicKeyPEM(n.key.PublicKey())
	return rpc.NodeKey{PublicKeyPEM: string(pemBytes), PublicKey: hex.EncodeToString(n.key.PublicKey()), Address: n.key.Address()}
}

// Peers lists connected peers.
func (n *Node) Peers() []rpc.Peer {
	out := []rpc.Peer{}
	if n.net == nil {
		return out
	}
	if peers := n.net.Peers(); peers != nil {
		return peers
	}
	return out
}

// SubscribeBlocks delivers new heads until cancel.
func (n *Node) SubscribeBlocks() (<-chan *chain.Block, func()) {
	ch := make(chan *chain.Block, 64)
	n.subsMu.Lock()
	n.subs[ch] = struct{}{}
	n.subsMu.Unlock()
	return ch, func() {
		n.subsMu.Lock()
		if _, ok := n.subs[ch]; ok {
			delete(n.subs, ch)
			close(ch)
		}
		n.subsMu.Unlock()
	}
}

// notify hands b to every subscriber; a subscriber too slow to keep up
// misses blocks rather than stalling the node.
func (n *Node) notify(b *chain.Block) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- b:
		default:
		}
	}
}
