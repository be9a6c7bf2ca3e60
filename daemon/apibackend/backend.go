// Package apibackend is the HTTP API's view of the node: a small adapter
// that answers api.Backend and its optional interfaces (health, evidence,
// search, summaries, passed-over) from the node's parts. It owns only the
// API's stream fan-outs (new blocks, evidence events) and the lock that
// gives the node key's own transactions their nonces; the chain, the pool,
// the forger and the network stay with their owners.
package apibackend

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/feed"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/readmodel"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// Chain is what the API reads of the chain manager (a StateView too: the
// pool's pending nonces are counted on it).
type Chain interface {
	mempool.StateView
	readmodel.Chain
	Head() *chain.Block
	Snapshot() *chainmgr.Snapshot
	BlockByHeight(h uint64) (*chain.Block, error)
	Blocks(from uint64, limit int) ([]*chain.Block, error)
	TxLocation(id chain.Hash) (uint64, int, error)
	ClockBehind() (time.Duration, bool)
	Halted() error
}

// Evidence is what the API reads of the evidence pool.
type Evidence interface {
	Records() []chainmgr.EvidenceRecord
}

// Pool is what the API reads and sets of the mempool.
type Pool interface {
	readmodel.Pool
	Get(id chain.Hash) (chain.Transaction, bool)
	PendingNonce(a chain.Address, st mempool.StateView) uint64
	Limit() int
	SetLimit(n int)
}

// Admitter is the node's one door for transactions (daemon/txadmit).
type Admitter interface {
	Admit(txs []chain.Transaction, from mempool.Origin) ([]error, []chain.Transaction)
}

// Forger is the forging policy and the forger's wake-up.
type Forger interface {
	Policy() (int, time.Duration)
	SetPolicy(size int, interval time.Duration)
	Poke()
}

// Network is what the API reads of the peer-to-peer side, and where
// accepted transactions are gossiped.
type Network interface {
	ID() string
	Addrs() []string
	Peers() []rpc.Peer
	PublishTxs(txs []chain.Transaction)
}

// Store is the store's part the API reads directly: its indexes (search)
// and the last failed commit (health).
type Store interface {
	readmodel.Index
	WriteErr() error
}

// Parts are the node's parts the backend answers from.
type Parts struct {
	Genesis   *chain.Genesis
	Key       *keystore.Key
	Chain     Chain
	Evidence  Evidence
	Pool      Pool
	Admit     Admitter
	Forger    Forger
	Store     Store
	Metrics   *metrics.Txs
	Log       *slog.Logger
	Version   string
	Byzantine string // the lab behaviour this node runs, "" when honest
	// SaveConfig records the forging policy after a runtime change.
	SaveConfig func(rpc.Config)
}

// Backend implements api.Backend over Parts.
type Backend struct {
	p       Parts
	genesis chain.Hash
	net     Network // nil: no network

	sums readmodel.Summaries

	// The API's streams: new heads and evidence events, each subscriber
	// lossy (feed.DropNewest): a stream too slow to keep up misses events
	// rather than slowing the node.
	blocks   *feed.Feed[*chain.Block]
	evidence *feed.Feed[rpc.EvidenceEvent]

	ownMu sync.Mutex // serialises transactions signed with the node key
}

var (
	_ api.Backend         = (*Backend)(nil)
	_ api.HealthChecker   = (*Backend)(nil)
	_ api.EvidenceBackend = (*Backend)(nil)
	_ api.PrefixSearcher  = (*Backend)(nil)
	_ api.BlockSummarizer = (*Backend)(nil)
	_ api.PassedOverer    = (*Backend)(nil)
)

// New returns the backend over p.
func New(p Parts) *Backend {
	return &Backend{p: p, genesis: p.Genesis.Hash(),
		blocks:   feed.New[*chain.Block](feed.Options{MaxSubscribers: maxStreamSubscribers}),
		evidence: feed.New[rpc.EvidenceEvent](feed.Options{MaxSubscribers: maxStreamSubscribers})}
}

// SetNetwork gives the backend the started network; call it before the
// API serves.
func (b *Backend) SetNetwork(n Network) { b.net = n }

// Status reports the chain head and the node's policy.
func (b *Backend) Status() rpc.Status {
	head := b.p.Chain.Head()
	blockSize, interval := b.p.Forger.Policy()
	s := rpc.Status{
		ChainID:         b.p.Genesis.ChainID,
		GenesisHash:     b.genesis,
		Height:          head.Height,
		HeadHash:        head.Hash(),
		HeadTimestamp:   head.Timestamp,
		Address:         string(b.p.Key.Address()),
		Election:        b.p.Genesis.Election,
		BlockSize:       blockSize,
		BlockIntervalMs: interval.Milliseconds(),
		Pending:         b.p.Pool.Len(),
		P2PAddrs:        []string{},
		Version:         b.p.Version,
		Byzantine:       b.p.Byzantine,
	}
	if behind, ok := b.p.Chain.ClockBehind(); ok {
		s.ClockBehindMs = behind.Milliseconds()
	}
	if b.net != nil {
		s.PeerID = b.net.ID()
		s.P2PAddrs = b.net.Addrs()
		s.Peers = len(b.net.Peers())
	}
	b.finalityFields(&s)
	return s
}

// Genesis is the network's genesis.
func (b *Backend) Genesis() *chain.Genesis { return b.p.Genesis }

// Height is the head's height.
func (b *Backend) Height() uint64 { return b.p.Chain.Head().Height }

// Head is the head block.
func (b *Backend) Head() *chain.Block { return b.p.Chain.Head() }

// Accounts lists every account in address order, from the current
// snapshot: it never waits for an import.
func (b *Backend) Accounts() []rpc.Account {
	entries := b.p.Chain.Snapshot().Accounts()
	out := make([]rpc.Account, len(entries))
	for i, e := range entries {
		out[i] = rpc.Account{Address: e.Address, Balance: e.Balance, Stake: e.Stake, Nonce: e.Nonce, Unbonding: e.Unbonding, ReleaseHeight: e.Release}
	}
	return out
}

// Account returns one account with its pending nonce.
func (b *Backend) Account(a chain.Address) rpc.Account {
	acc := b.p.Chain.Account(a)
	pending := b.p.Pool.PendingNonce(a, b.p.Chain)
	return rpc.Account{Address: a, Balance: acc.Balance, Stake: acc.Stake, Nonce: acc.Nonce,
		Unbonding: acc.Unbonding, ReleaseHeight: acc.Release, PendingNonce: &pending}
}

// Stakes lists stakers, largest first, with their share of all stake.
func (b *Backend) Stakes() []rpc.Stake {
	stakers, total := b.p.Chain.Snapshot().Stakers()
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
func (b *Backend) BlockByHeight(h uint64) (*chain.Block, error) {
	blk, err := b.p.Chain.BlockByHeight(h)
	return blk, notFound(err)
}

// BlockByHash returns any stored block, main chain or side branch.
func (b *Backend) BlockByHash(h chain.Hash) (*chain.Block, error) {
	blk, err := b.p.Chain.BlockByHash(h)
	return blk, notFound(err)
}

// Blocks returns main-chain blocks ascending from `from`.
func (b *Backend) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	return b.p.Chain.Blocks(from, limit)
}

// PendingTxs lists the pool.
func (b *Backend) PendingTxs() []chain.Transaction { return b.p.Pool.All() }

// TxInfo finds a transaction in the pool or the chain.
func (b *Backend) TxInfo(id chain.Hash) (rpc.TxInfo, error) {
	if tx, ok := b.p.Pool.Get(id); ok {
		return rpc.TxInfo{ID: id, Status: rpc.TxPending, Transaction: &tx}, nil
	}
	height, index, err := b.p.Chain.TxLocation(id)
	if err != nil {
		return rpc.TxInfo{}, notFound(err)
	}
	blk, err := b.p.Chain.BlockByHeight(height)
	if err != nil {
		return rpc.TxInfo{}, notFound(err)
	}
	// The index and the block are two reads: a reorg between them could
	// put another transaction at that place.
	if index >= len(blk.Transactions) || blk.Transactions[index].ID() != id {
		return rpc.TxInfo{}, api.ErrNotFound
	}
	hash := blk.Hash()
	tx := blk.Transactions[index]
	var conf uint64
	snap := b.p.Chain.Snapshot()
	if head := snap.Height(); head >= height {
		conf = head - height + 1
	}
	// Final: at or below the node's final checkpoint, on the main chain
	// the block was read from (a block read before a reorg is not on it).
	final := snap.IsFinal(height)
	if final {
		if mb, err := b.p.Chain.BlockByHeight(height); err != nil || mb.Hash() != hash {
			final = false
		}
	}
	return rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: &height, BlockHash: &hash, Index: &index, Confirmations: &conf, Final: final, Transaction: &tx}, nil
}

// SubmitTx admits one transaction to the pool and gossips it.
func (b *Backend) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	ids, errs := b.SubmitTxs([]chain.Transaction{tx})
	return ids[0], errs[0]
}

// SubmitTxs admits transactions (signatures verified in parallel) against
// the current snapshot, without waiting for any import, and gossips the
// accepted ones in one message.
func (b *Backend) SubmitTxs(txs []chain.Transaction) ([]chain.Hash, []error) {
	ids := make([]chain.Hash, len(txs))
	for i := range txs {
		ids[i] = txs[i].ID()
	}
	// One door with gossip (txadmit): a stake change the chain would refuse
	// on the head (stake_limit, stake_floor) is refused with its code, the
	// rest is pooled against the newest snapshot.
	errs, ready := b.p.Admit.Admit(txs, mempool.Local)
	for i, err := range errs {
		// A replay of a committed transaction says so, rather than bad_nonce.
		if errors.Is(err, chain.ErrBadNonce) {
			if _, _, lerr := b.p.Chain.TxLocation(ids[i]); lerr == nil {
				errs[i] = &chain.RuleError{Code: mempool.ErrAlreadyKnown.Code, Message: "transaction " + ids[i].String() + " is already committed"}
			}
		}
	}
	b.p.Metrics.Admitted(metrics.SourceAPI, errs)
	// Only what became executable is gossiped; gapped ones wait here.
	if len(ready) > 0 {
		if b.net != nil {
			b.net.PublishTxs(ready)
		}
		b.p.Forger.Poke()
	}
	return ids, errs
}

// SubmitOwn signs tx with the node key at the next pending nonce and
// submits it. ownMu keeps two calls from taking the same nonce.
func (b *Backend) SubmitOwn(tx chain.Transaction) (chain.Transaction, error) {
	b.ownMu.Lock()
	defer b.ownMu.Unlock()
	tx.Nonce = b.p.Pool.PendingNonce(b.p.Key.Address(), b.p.Chain) + 1
	b.p.Key.SignTx(&tx)
	_, err := b.SubmitTx(tx)
	return tx, err
}

// Config is the forging policy.
func (b *Backend) Config() rpc.Config {
	blockSize, interval := b.p.Forger.Policy()
	return rpc.Config{
		BlockSize:       blockSize,
		BlockIntervalMs: interval.Milliseconds(),
		PoolLimit:       b.p.Pool.Limit(),
	}
}

// SetConfig changes the forging policy at runtime.
func (b *Backend) SetConfig(p rpc.ConfigPatch) (rpc.Config, error) {
	bad := func(msg string) error { return &chain.RuleError{Code: "bad_request", Message: msg} }
	if p.BlockSize != nil && (*p.BlockSize < 1 || *p.BlockSize > b.p.Genesis.MaxBlockTxs) {
		return rpc.Config{}, bad("block_size must be between 1 and max_block_txs")
	}
	if p.BlockIntervalMs != nil && (*p.BlockIntervalMs < 1 || *p.BlockIntervalMs > 24*3600*1000) {
		return rpc.Config{}, bad("block_interval_ms must be between 1 and 86400000")
	}
	if p.PoolLimit != nil && *p.PoolLimit < 1 {
		return rpc.Config{}, bad("pool_limit must be at least 1")
	}
	if p.PoolLimit != nil {
		b.p.Pool.SetLimit(*p.PoolLimit)
	}
	var size int
	var interval time.Duration
	if p.BlockSize != nil {
		size = *p.BlockSize
	}
	if p.BlockIntervalMs != nil {
		interval = time.Duration(*p.BlockIntervalMs) * time.Millisecond
	}
	b.p.Forger.SetPolicy(size, interval)
	size, interval = b.p.Forger.Policy()
	b.p.Log.Info("forging policy changed", "block_size", size, "block_interval", interval.String())
	if b.p.SaveConfig != nil {
		b.p.SaveConfig(b.Config())
	}
	return b.Config(), nil
}

// StakeFromNode stakes amount from the node's own key.
func (b *Backend) StakeFromNode(amount uint64) (chain.Hash, error) {
	tx, err := b.SubmitOwn(chain.Transaction{Type: chain.TxStake, ChainID: b.p.Genesis.ChainID, To: b.p.Key.Address(), Amount: amount})
	return tx.ID(), err
}

// NodeKey is the node's public key.
func (b *Backend) NodeKey() rpc.NodeKey {
	pemBytes, _ := keystore.PublicKeyPEM(b.p.Key.PublicKey())
	return rpc.NodeKey{PublicKeyPEM: string(pemBytes), PublicKey: hex.EncodeToString(b.p.Key.PublicKey()), Address: b.p.Key.Address()}
}

// Peers lists connected peers.
func (b *Backend) Peers() []rpc.Peer {
	out := []rpc.Peer{}
	if b.net == nil {
		return out
	}
	if peers := b.net.Peers(); peers != nil {
		return peers
	}
	return out
}

// Queues of the API's stream subscribers.
const (
	// maxStreamSubscribers bounds each stream feed's subscribers: the
	// API's hub subscribes once to blocks, each /v1/events stream to
	// evidence (the API bounds those first, api.Limits.MaxEventStreams).
	maxStreamSubscribers = 1024
	blockQueue           = 64 // new heads a block subscriber may hold
	evidenceQueue        = 16 // evidence events an evidence subscriber may hold
)

// subscribe is f's lossy subscription of n values; past the bound, a
// channel that is already closed (api.Backend: the stream ends).
func subscribe[T any](f *feed.Feed[T], n int) (<-chan T, func()) {
	s, err := f.Subscribe(feed.DropNewest[T](n))
	if err != nil {
		ch := make(chan T)
		close(ch)
		return ch, func() {}
	}
	return s.C(), s.Cancel
}

// SubscribeBlocks delivers new heads until cancel (the channel closes
// then, or when the backend closes).
func (b *Backend) SubscribeBlocks() (<-chan *chain.Block, func()) {
	return subscribe(b.blocks, blockQueue)
}

// Notify hands blk to every block subscriber; a subscriber too slow to
// keep up misses blocks rather than stalling the node.
func (b *Backend) Notify(blk *chain.Block) { b.blocks.Send(blk) }

// Close ends every block and evidence stream (their channels close).
func (b *Backend) Close() {
	b.blocks.Close()
	b.evidence.Close()
}

// Health is the head's height and nil while the node can work, or the
// error that halted it, or the last failed commit of the store until a
// commit succeeds again: /healthz answers 503 while it is set. It reads
// the chain's snapshot, never a lock, so health answers while a block or
// a batch of transactions is being imported.
func (b *Backend) Health() (uint64, error) {
	height := b.p.Chain.Snapshot().Height()
	if err := b.p.Chain.Halted(); err != nil {
		return height, err
	}
	if err := b.p.Store.WriteErr(); err != nil {
		return height, fmt.Errorf("commits fail: %w", err)
	}
	return height, nil
}

// SearchPrefix implements api.PrefixSearcher (readmodel.Search).
func (b *Backend) SearchPrefix(prefix string, max int) (api.SearchResult, error) {
	return readmodel.Search(b.p.Store, b.p.Pool, prefix, max)
}

// BlockSummaries implements api.BlockSummarizer (readmodel.Summaries).
func (b *Backend) BlockSummaries(from uint64, limit int) ([]api.BlockSummary, error) {
	return b.sums.Range(b.p.Chain, from, limit)
}

// PassedOver implements api.PassedOverer (readmodel.PassedOver).
func (b *Backend) PassedOver(parent chain.Hash, rank uint32) []chain.Address {
	return readmodel.PassedOver(b.p.Chain, parent, rank)
}
