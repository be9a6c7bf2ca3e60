// Package chainmgr is the one owner of a node's chain: the store, the head
// and the state after it, the block tree in memory (blocktree.go: which
// blocks are on the main chain or kept on a side branch, their ancestry;
// and which are known invalid), the decisions of fork choice through its
// seam (forkchoice.go), the election cache and the signature verifier.
// Everything else in the node talks to it through ProcessBlock(s) to
// change the chain, Snapshot to read it, and Subscribe to hear about
// changes; Observers (the evidence pool first, evidence.go) hear
// synchronously of every checked block. It knows nothing of the node.
//
// Two kinds of callers, two paths:
//   - Readers (API handlers, gossip admission, the forger) load the current
//     *Snapshot, an immutable value swapped in atomically after each
//     commit. They never take a lock an import holds.
//   - Importers are serialised by one lock, held for validation against the
//     state, the disk commit and the snapshot swap. Context-free checks
//     (signatures, tx root) and the election for the head run before it.
//
// The models are btcd's blockchain.BlockChain (block index with stored
// statuses, BestSnapshot) and go-ethereum's core.BlockChain (the head as an
// atomic pointer, stored only after the database commit).
package chainmgr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/evidencepool"
	"github.com/poslab/posd/daemon/feed"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/store"
)

// MaxReorgDepth is the deepest reorg a node accepts: a branch forking
// further back is refused, so a long-absent peer cannot rewrite history.
// Side blocks and undo records deeper than this are pruned.
const MaxReorgDepth = 64

// pruneEvery is how many heights the head moves between two prunings (each
// costs one disk sync).
const pruneEvery = 16

// maxInvalid bounds the invalid blocks remembered (pruned by height too).
const maxInvalid = 10000

// Store is what the manager needs of the node's database (*store.Store).
// The manager is its only writer.
type Store interface {
	Head() (*chain.Block, error)
	LoadState() (*chain.State, error)
	Switch(revert int, blocks []*chain.Block, undos []*chain.Undo, st *chain.State) error
	PutBlock(b *chain.Block) error
	HasBlock(h chain.Hash) (bool, error)
	BlockByHash(h chain.Hash) (*chain.Block, error)
	BlockByHeight(h uint64) (*chain.Block, error)
	HashAt(h uint64) (chain.Hash, error)
	Blocks(from uint64, limit int) ([]*chain.Block, error)
	Headers(from uint64, limit int) ([]*chain.Header, error)
	Undo(h uint64) (*chain.Undo, error)
	TxLocation(id chain.Hash) (height uint64, index int, err error)
	SideBlocks() ([]store.BlockRef, error)
	InvalidBlocks() ([]store.BlockRef, error)
	PutInvalid(ref store.BlockRef) error
	Prune(below uint64) ([]store.BlockRef, error)
	Meta(key string) ([]byte, error)
	PutMeta(key string, v []byte) error
	Close() error
}

var _ Store = (*store.Store)(nil)

// Config configures New.
type Config struct {
	Genesis *chain.Genesis
	// Store holds the chain of Genesis (already initialised); the manager
	// owns it from now on and closes it.
	Store Store
	// Sigs, if set, is a cache of verified signatures shared with other
	// nodes of the process (posd devnet); nil: the node's own.
	Sigs   *SigCache
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// Metrics receives import, election and commit times; nil records nothing.
	Metrics *metrics.Chain
	// ForkChoice decides every switch of branch (forkchoice.go); nil: V3
	// with Checkpoint (forkchoice_v3.go), which the manager also makes
	// one of its Observers.
	ForkChoice ForkChoice
	// Checkpoint, if set, is the node's weak-subjectivity checkpoint
	// (`posd start --checkpoint HEIGHT:HASH`): every block at its height
	// with another hash is refused (ErrConflictsWithCheckpoint, a peer
	// fault), so a fresh node never syncs another chain past it; and New
	// refuses a stored chain with another block there (*CheckpointError).
	Checkpoint *chain.Checkpoint
	// Observers hear of every checked block and every move of the main
	// chain, after the evidence pool (evidence.go).
	Observers []Observer
}

// Manager is the chain manager. Its methods are safe for concurrent use.
type Manager struct {
	Reads  // reads.go
	g      *chain.Genesis
	st     Store
	verify *Verifier
	txv    chain.TxVerifier
	cost   importCost // ImportCostPerTx
	elect  *elections
	log    *slog.Logger
	now    func() time.Time
	met    *metrics.Chain // nil-safe

	// mu serialises importers; readers never take it.
	mu        sync.Mutex
	state     *chain.State // after head; changed only under mu
	head      *chain.Block
	lastPrune uint64

	snap atomic.Pointer[Snapshot]
	// seq is odd while a write that moves the main chain (commit, snapshot
	// swap, pruning) is in progress, and counts them: work done off the
	// lock from a snapshot is trusted only if seq did not change meanwhile.
	seq    atomic.Uint64
	ix     index            // the block tree (blocktree.go)
	fc     ForkChoice       // forkchoice.go
	cp     *checkpointGuard // Config.Checkpoint; nil: none (checkpoint.go)
	final  *nodeFinal       // the node's final checkpoint (finality.go)
	halted atomic.Pointer[HaltedError]
	closed atomic.Bool

	feed            *feed.Feed[Event] // feed.go
	*finalityEvents                   // SubscribeFinality (finality.go)

	ev      *evidencepool.Pool // evidence.go
	obs     observers          // the pool and Config.Observers
	caps    sideCaps           // bounds of side blocks (sidecap.go)
	*future                    // blocks from a little ahead of our clock: ClockBehind, FutureBlocks (future.go)

	stats stats
}

type stats struct {
	blocks, txs, reorgs, pruned, branchChecks, knownInvalid atomic.Int64
	checkpointRefused                                       atomic.Int64
}

// Stats are the manager's counters.
type Stats struct {
	BlocksImported int64 // blocks that joined the main chain
	TxsCommitted   int64 // their transactions, less those reverted
	Reorgs         int64
	SidePruned     int64 // side blocks removed below the reorg limit
	BranchChecks   int64 // side-branch states computed to validate or switch
	KnownInvalid   int64 // blocks refused at once as known invalid
	EventsDropped  int64 // events coalesced away for a slow subscriber
	// CheckpointRefused counts blocks refused for another hash at the
	// checkpoint's height (Config.Checkpoint).
	CheckpointRefused int64
}

// New loads the head and state from cfg.Store and the block index.
func New(cfg Config) (*Manager, error) {
	if cfg.Genesis == nil || cfg.Store == nil {
		return nil, errors.New("chainmgr: genesis and store are required")
	}
	alg, err := cfg.Genesis.Algorithm()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		g: cfg.Genesis, st: cfg.Store, log: cfg.Logger, now: cfg.Now,
		elect: newElections(cfg.Genesis, alg),
		feed:  newEventFeed(), future: newFuture(),
		met: cfg.Metrics, caps: defaultSideCaps, fc: cfg.ForkChoice,
	}
	obs := cfg.Observers
	if m.fc == nil {
		// v3 is the default: with no votes every branch's justified
		// checkpoint stays at genesis and it decides as v2.
		v3 := NewV3(cfg.Checkpoint)
		m.fc = v3
		obs = append(obs[:len(obs):len(obs)], v3)
	}
	if cfg.Metrics != nil {
		m.st = timedStore{Store: cfg.Store, met: cfg.Metrics}
		m.elect.met = cfg.Metrics
	}
	m.Reads = Reads{st: m.st}
	if cfg.Sigs == nil {
		cfg.Sigs = NewSigCache(0)
	}
	m.verify = NewSharingVerifier(cfg.Genesis.ChainID, cfg.Sigs)
	m.txv = m.verify.TxVerifier()
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.cp = newCheckpointGuard(cfg.Checkpoint, &m.stats.checkpointRefused, m.log)
	m.finalityEvents = newFinalityEvents(m.now, m.log)
	if m.state, err = m.st.LoadState(); err != nil {
		return nil, err
	}
	if m.head, err = m.st.Head(); err != nil {
		return nil, err
	}
	m.ev = evidencepool.New(evidencepool.Config{Genesis: m.g, Blocks: m.st, Logger: m.log, Now: m.now, Metrics: cfg.Metrics.Evidence(),
		Head: func() (uint64, *chain.State) { s := m.snap.Load(); return s.Height(), s.state }})
	if err := m.cp.checkStored(m.st, m.head.Height); err != nil {
		return nil, err
	}
	if m.final, err = loadNodeFinal(m.st, m.state.Finality().Finalized); err != nil {
		return nil, err
	}
	if v3, ok := m.fc.(*V3); ok {
		v3.raise(m.final.cp) // before Started: a restarted node keeps its final block
	}
	m.obs = append(observers{m.ev}, obs...)
	if err := m.ix.load(m.st, m.log, &m.stats.knownInvalid, m.head, m.state); err != nil {
		return nil, err
	}
	m.lastPrune = m.head.Height
	chain.ElectionTable(m.g, m.state) // kept up to date from here on (publishLocked)
	snap := newSnapshot(1, m.head, m.state.Clone(), m.elect, m.final.cp)
	m.snap.Store(snap)
	if err := m.obs.started(m.head, snap.state); err != nil {
		return nil, err
	}
	go snap.warm()
	m.future.slotMs, m.future.now, m.future.log = m.g.SlotMs, m.now, m.log
	m.future.closed = m.closed.Load
	m.future.process = func(b *chain.Block) error { return m.processBlock(b, true) }
	go m.future.loop()
	return m, nil
}

// Genesis is the chain's genesis.
func (m *Manager) Genesis() *chain.Genesis { return m.g }

// Verifier is the node's signature verifier, shared with the mempool.
func (m *Manager) Verifier() *Verifier { return m.verify }

// Snapshot is the chain as the last commit left it. It never waits.
func (m *Manager) Snapshot() *Snapshot { return m.snap.Load() }

// Account reads a's account in the newest snapshot at the moment of the
// call (successive calls may read successive snapshots; the mempool admits
// against Snapshot's Versioned views instead).
func (m *Manager) Account(a chain.Address) chain.Account { return m.snap.Load().Account(a) }

// Head is the head block (Snapshot().Head()).
func (m *Manager) Head() *chain.Block { return m.snap.Load().head }

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	return Stats{
		BlocksImported: m.stats.blocks.Load(), TxsCommitted: m.stats.txs.Load(), Reorgs: m.stats.reorgs.Load(),
		SidePruned: m.stats.pruned.Load(), BranchChecks: m.stats.branchChecks.Load(),
		KnownInvalid: m.stats.knownInvalid.Load(), EventsDropped: m.feed.Stats().Coalesced,
		CheckpointRefused: m.stats.checkpointRefused.Load(),
	}
}

// Halt stops every import after an error the manager cannot recover from;
// reads go on. A restart reloads state from disk.
func (m *Manager) Halt(cause error) {
	m.log.Error("chain halted: restart the node", "err", cause.Error())
	m.halted.CompareAndSwap(nil, &HaltedError{Cause: cause})
}

// Halted is the reason imports stopped, or nil.
func (m *Manager) Halted() error {
	if h := m.halted.Load(); h != nil {
		return h
	}
	return nil
}

func (m *Manager) usable() error {
	if m.closed.Load() {
		return ErrClosed
	}
	if h := m.halted.Load(); h != nil {
		return h
	}
	return nil
}

// CloseTimeout is how long Close waits for an import in progress.
const CloseTimeout = 5 * time.Second

// Close is CloseWithin(CloseTimeout).
func (m *Manager) Close() error { return m.CloseWithin(CloseTimeout) }

// CloseWithin stops imports and closes the store. An import in progress is
// given d to finish; after it CloseWithin returns an error without closing
// the store (an import stuck on a dead disk would hold it), and the
// process's exit releases it. Imports refuse with ErrClosed from the start.
func (m *Manager) CloseWithin(d time.Duration) error {
	if m.closed.Swap(true) {
		return nil
	}
	close(m.future.stopped)
	deadline := time.Now().Add(d)
	for !m.mu.TryLock() {
		if time.Now().After(deadline) {
			m.feed.Close()
			m.finalityEvents.close()
			return fmt.Errorf("chainmgr: an import is still running after %v; store left open", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer m.mu.Unlock()
	m.feed.Close()
	m.finalityEvents.close()
	return m.st.Close()
}

// Event tells subscribers the chain moved: Added joined the main chain
// (oldest first), Reverted left it (newest first), and Snapshot is the
// chain after the change; Prev was the head before it. A slow subscriber
// may get several changes coalesced into one (see Subscribe): Prev is
// then the head before the oldest of them, and MissedBlocks and
// MissedReverted count the added and reverted blocks it was not given.
// Whoever must know every block a change reverted or added walks from
// Prev to Snapshot.Head() through the stored blocks (mempool.Pool.Reset
// does), rather than trusting the lists to be whole.
type Event struct {
	Snapshot       *Snapshot
	Prev           *chain.Block
	Added          []*chain.Block
	Reverted       []*chain.Block
	MissedBlocks   int
	MissedReverted int
}

// Subscribe delivers an Event per chain change, in commit order, until
// cancel is called or the manager closes (the channel is closed then;
// events still queued are dropped). Imports never wait for a subscriber:
// its queue is bounded by maxBytes (at least MinEventBytes) of estimated
// memory, and a subscriber that falls that far behind gets the queued
// events coalesced into one (feed.Coalesce, coalesceEvents): the newest
// snapshot, the head before them, and the blocks that fit
// (Stats.EventsDropped counts the events merged away). Past
// maxSubscribers the channel is closed at once.
func (m *Manager) Subscribe(maxBytes int) (<-chan Event, func()) {
	s, err := m.subscribe(max(maxBytes, MinEventBytes))
	if err != nil {
		m.log.Error("chain events: subscription refused", "err", err.Error())
		ch := make(chan Event)
		close(ch)
		return ch, func() {}
	}
	return s.C(), s.Cancel
}

// CachedCandidates returns the election for the child of parent if it was
// computed recently; it never runs an election.
func (m *Manager) CachedCandidates(parent chain.Hash) ([]chain.Address, bool) {
	return m.elect.cached(parent)
}

// CheckDisk compares the state stored on disk with the current snapshot's;
// they must agree after every commit. It reads the whole state (slow).
func (m *Manager) CheckDisk() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	onDisk, err := m.st.LoadState()
	if err != nil {
		return err
	}
	if !onDisk.Equal(m.state) || !m.snap.Load().state.Equal(m.state) {
		return errors.New("chainmgr: the state on disk differs from the state in memory")
	}
	return nil
}

// Status is what the manager knows of a block.
type Status int

// Block statuses.
const (
	StatusUnknown Status = iota
	StatusMain           // on the main chain (fully valid)
	StatusSide           // fully valid, stored, on a side branch
	StatusInvalid        // broke a rule (see the code); never stored
)

func (s Status) String() string {
	return [...]string{"unknown", "main", "side", "invalid"}[s]
}

// BlockStatus reports what is known of the block with hash h, and the rule
// it broke when invalid.
func (m *Manager) BlockStatus(h chain.Hash) (Status, chain.ErrorCode, error) {
	if ref, ok := m.ix.invalidRef(h); ok {
		return StatusInvalid, ref.Code, nil
	}
	if m.ix.isSide(h) {
		return StatusSide, "", nil
	}
	b, err := m.st.BlockByHash(h)
	if errors.Is(err, store.ErrNotFound) {
		return StatusUnknown, "", nil
	} else if err != nil {
		return StatusUnknown, "", err
	}
	if mh, err := m.st.HashAt(b.Height); err == nil && mh == h {
		return StatusMain, "", nil
	}
	return StatusSide, "", nil
}
