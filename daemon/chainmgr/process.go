package chainmgr

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/store"
)

// precheck runs every rule that needs neither state nor election, off
// every lock: the header signature, the transaction count and root, and
// each transaction's stateless rules and signature (batch-verified,
// skipping those the pool cached at admission; the full validation under
// the lock costs no signature).
//
// Consensus hook: header checks that need no parent state (VRF proof
// verification of v2) belong here.
func (m *Manager) precheck(b *chain.Block, peer bool) (*prechecked, error) {
	start := time.Now()
	if err := b.Header.VerifySignature(); err != nil {
		return nil, err
	}
	if len(b.Transactions) > m.g.MaxBlockTxs {
		return nil, &chain.RuleError{Code: chain.ErrTooManyTxs.Code, Message: fmt.Sprintf("%d transactions, at most %d", len(b.Transactions), m.g.MaxBlockTxs)}
	}
	// The ids were computed once, when the transactions were decoded or
	// signed; the root, the signature cache and the store's index read them.
	if root := chain.TxRoot(b.Transactions); root != b.TxRoot {
		return nil, &chain.RuleError{Code: chain.ErrBadTxRoot.Code, Message: fmt.Sprintf("tx_root %s, transactions hash to %s", b.TxRoot, root)}
	}
	if err := m.verify.CheckBlockTxs(m.g, b); err != nil {
		return nil, err
	}
	return &prechecked{peer: peer, took: time.Since(start)}, nil
}

// prechecked is what precheck learnt of a block in this call: its tx root
// matches and every transaction passed its stateless rules and signature.
// Validating the block on the head under the lock need not look at its
// transactions again.
type prechecked struct {
	// peer: a block from a peer, not this forger's; took: how long precheck took. Extending the head with a
	// peer's block measures ImportCostPerTx from them.
	peer bool
	took time.Duration
}

// ProcessBlock validates b and adds it to the chain: it extends the head,
// is kept on a side branch (ErrSideBlock), or its branch wins the fork
// choice and the chain reorganises. Other outcomes: ErrKnownBlock,
// ErrUnknownParent, a rule error (see IsPeerFault), a *LocalError, a
// *HaltedError or ErrClosed. A block is fully validated on its parent's
// state before it is stored, whatever branch it is on.
//
// A block refused only for a timestamp a little ahead of our clock is kept
// and offered again when due (future.go).
func (m *Manager) ProcessBlock(b *chain.Block) error {
	return m.processBlock(b, true)
}

// HasBlock reports whether a block with hash h is stored (main chain or
// side) or kept until due (future.go). A store it cannot read counts as
// holding it: callers use a false answer against a peer.
func (m *Manager) HasBlock(h chain.Hash) bool {
	if m.future.has(h) {
		return true
	}
	ok, err := m.st.HasBlock(h)
	return ok || err != nil
}

// ProcessOwnBlock is ProcessBlock for the forger's own block: validated
// the same way, but its cost is not taken as what a peer's block costs to
// import (ImportCostPerTx), since its signatures were cached at admission.
func (m *Manager) ProcessOwnBlock(b *chain.Block) error {
	return m.processBlock(b, false)
}

// processBlock is ProcessBlock (peer: a peer's block) and
// ProcessOwnBlock: the import, timed, and the block kept until due if it
// came from a little ahead of our clock.
func (m *Manager) processBlock(b *chain.Block, peer bool) (err error) {
	start := time.Now()
	defer func() {
		m.met.ObserveImport(metrics.PathBlock, importOutcome(err), time.Since(start))
		m.future.holdIfEarly(b, err)
	}()
	if err := m.usable(); err != nil {
		return err
	}
	hash := b.Hash()
	if err := m.cp.check(b, hash); err != nil {
		return err
	}
	if err := m.ix.check(b, hash); err != nil {
		m.ix.judge(b, hash, err)
		return err
	}
	// pre: this call ran precheck on b (nil: b is stored already, or it
	// is a side block, prechecked by validateSide once elected, which
	// hands its findings back).
	var pre *prechecked
	known, err := m.st.HasBlock(hash)
	if err != nil {
		return local("read store", err)
	}
	if !known {
		// Cheap checks first, costly ones last, for every block: the parent
		// is known, the forger elected on it, the header's signature and
		// seed; only then the transactions' signatures (up to
		// max_block_txs, ahead of every admission). Otherwise a peer could
		// buy that work with a key of its own, or a random parent.
		if snap := m.snap.Load(); b.PrevHash == snap.headHash {
			if err := chain.CheckElected(&b.Header, snap.Candidates()); err != nil {
				m.ix.judge(b, hash, err)
				return err
			}
			if pre, err = m.precheck(b, peer); err != nil {
				m.ix.judge(b, hash, err)
				return err
			}
		} else if err := m.checkOffHead(b, hash); err != nil {
			m.ix.judge(b, hash, err)
			return err
		}
	}
	// Off the lock: the election on the head (usually cached already), or
	// the full validation of a side block on its parent's state, computed
	// from the snapshot. Under the lock the work is used if the head has
	// not moved meanwhile, and done again if it has.
	seq := m.seq.Load()
	snap := m.snap.Load()
	var cands []chain.Address
	var work *sideWork
	if b.PrevHash == snap.headHash {
		cands = snap.Candidates()
		if !known && pre == nil {
			// The head moved onto b's parent since the checks above.
			if pre, err = m.precheck(b, peer); err != nil {
				m.ix.judge(b, hash, err)
				return err
			}
		}
	} else if ok, _ := m.st.HasBlock(b.PrevHash); ok && !known {
		// (A stored block is answered by knownLocked from the tree, which
		// computes a branch's state only if fork choice wants it.)
		// Run even while a write is under way (seq odd): the verdict may
		// not be trusted then, but the signatures it verified are cached,
		// so the validation under the lock costs none.
		work, err = m.validateSide(b, snap.head, snap.state, pre)
		if work != nil && pre == nil {
			// Precheck's findings depend on b alone: kept even if the
			// work is not, so signatures are not checked again under the lock.
			pre = work.pre
		}
		// The store was read piece by piece: trust the verdict only if no
		// write moved the main chain meanwhile.
		if seq%2 != 0 || m.seq.Load() != seq {
			work, err = nil, nil
		}
		if IsPeerFault(err) {
			m.ix.judge(b, hash, err)
			return err
		}
	}
	m.mu.Lock()
	// The head moved meanwhile and b extends the new head (concurrent
	// imports, the common case): take the new head's election off the
	// lock, from its snapshot, rather than run it under the lock.
	for try := 0; try < 3 && m.head != snap.head && b.PrevHash == m.head.Hash(); try++ {
		m.mu.Unlock()
		snap, work = m.snap.Load(), nil
		if b.PrevHash == snap.headHash {
			cands = snap.Candidates()
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	if m.head != snap.head {
		cands, work = nil, nil // the head moved meanwhile
	}
	err = m.processLocked(b, hash, cands, work, pre, true)
	m.ix.judge(b, hash, err)
	return err
}

// checkOffHead runs the cheap checks on a block that does not extend the
// head, before anything costly: its parent is stored (else
// ErrUnknownParent, and sync may bring the parent), its forger is elected
// on the parent when that election is at hand (cached; otherwise
// validateSide runs it before the transactions), and its header's
// signature and seed verify. Then the side-block caps: a block below the
// head cannot win the fork choice as it comes, and one over a cap only
// feeds the evidence pool (sidecap.go).
func (m *Manager) checkOffHead(b *chain.Block, hash chain.Hash) error {
	parent, err := m.st.BlockByHash(b.PrevHash)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownParent
	} else if err != nil {
		return local("read parent", err)
	}
	if cands, ok := m.elect.cached(b.PrevHash); ok {
		if err := chain.CheckElected(&b.Header, cands); err != nil {
			return err
		}
	}
	if err := chain.CheckHeaderUnelected(m.g, &parent.Header, b, m.now().UnixMilli()); err != nil {
		return err
	}
	if b.Height < m.snap.Load().Height() {
		if why := m.sideRefusal(b, 0); why != "" {
			m.obs.checked(b, hash)
			return errNotStored(why)
		}
	}
	return nil
}

// processLocked imports b; cands (the election on the head), work (b
// validated as a side block) and pre (precheck's findings) are used when
// not nil. capped: a side block is stored only within the caps
// (sidecap.go).
func (m *Manager) processLocked(b *chain.Block, hash chain.Hash, cands []chain.Address, work *sideWork, pre *prechecked, capped bool) error {
	if known, err := m.st.HasBlock(hash); err != nil {
		return local("read store", err)
	} else if known {
		return m.knownLocked(b, hash)
	}
	if b.PrevHash == m.head.Hash() {
		if cands == nil {
			cands = m.elect.candidates(m.head, m.state)
		}
		return m.extendLocked(b, cands, pre)
	}
	if ok, err := m.st.HasBlock(b.PrevHash); err != nil {
		return local("read store", err)
	} else if !ok {
		return ErrUnknownParent
	}
	return m.sideLocked(b, work, pre, capped)
}

// extendLocked validates b on the head, applies and commits it. When
// prechecked (in this call) the per-tx stateless and signature checks are
// not run again under the lock (they depend on the block alone, not on the
// head); the tx root and the store's index read the cached ids.
//
// Consensus hook: chain.ValidateAndApply is where header rules that need
// the parent (and its seed) run.
func (m *Manager) extendLocked(b *chain.Block, cands []chain.Address, pre *prechecked) error {
	start := time.Now()
	undo, err := validateApply(m.g, m.txv, m.head, b, pre, cands, m.state, m.now().UnixMilli())
	if err != nil {
		return err
	}
	m.seq.Add(1)
	defer m.seq.Add(1)
	if err := m.st.Switch(0, []*chain.Block{b}, []*chain.Undo{undo}, m.state); err != nil {
		if rerr := m.state.Revert(undo); rerr != nil {
			m.Halt(fmt.Errorf("the state in memory cannot be restored after a failed commit of block %d: %w", b.Height, rerr))
		}
		return local(fmt.Sprintf("commit block %d", b.Height), err)
	}
	m.head = b
	if pre != nil && pre.peer {
		// The work a peer's block cost: no lock wait, no reorg.
		m.cost.observe(len(b.Transactions), pre.took+time.Since(start))
	}
	m.publishLocked([]*chain.Block{b}, nil)
	return nil
}

// validateApply validates b on parent (cands elected on it) and applies it
// to st, checking again only what precheck did not (all of it when pre is
// nil).
func validateApply(g *chain.Genesis, txv chain.TxVerifier, parent, b *chain.Block, pre *prechecked, cands []chain.Address, st *chain.State, nowMs int64) (*chain.Undo, error) {
	if pre != nil {
		return chain.ValidatePrecheckedAndApply(g, &parent.Header, b, cands, st, nowMs)
	}
	return chain.ValidateAndApply(g, &parent.Header, b, cands, st, nowMs, txv)
}

// publishLocked swaps in the snapshot of the new head, tells subscribers,
// and prunes what fell below the reorg limit.
func (m *Manager) publishLocked(added, reverted []*chain.Block) {
	// Subscribers read the lists after we return, while callers reuse
	// theirs (sync refills one batch slice): the event gets copies.
	added, reverted = slices.Clone(added), slices.Clone(reverted)
	// The election table is kept on the manager's state, so each
	// snapshot's copy inherits it and updates it by the stake changes of
	// the blocks since (none, usually) instead of rebuilding it.
	chain.ElectionTable(m.g, m.state)
	prev := m.snap.Load()
	m.final.raise(m.state.Finality().Finalized) // never lowered (finality.go)
	snap := newSnapshot(prev.version+1, m.head, m.state.Clone(), m.elect, m.final.cp)
	m.snap.Store(snap)
	go snap.warm()
	m.ix.connect(added, reverted, m.state)
	for _, b := range reverted {
		m.stats.txs.Add(-int64(len(b.Transactions)))
	}
	for _, b := range added {
		m.stats.blocks.Add(1)
		m.stats.txs.Add(int64(len(b.Transactions)))
	}
	m.obs.moved(m.head, added, reverted, snap.state)
	m.feed.Send(Event{Snapshot: snap, Prev: prev.head, Added: added, Reverted: reverted})
	m.finalityEvents.emit(prev, snap)
	if m.head.Height >= m.lastPrune+pruneEvery && m.head.Height > MaxReorgDepth {
		m.pruneLocked()
	}
}

// pruneLocked removes side blocks, invalid records and undo records that
// no reorg within the limit can reach.
func (m *Manager) pruneLocked() {
	below := m.head.Height - MaxReorgDepth
	removed, err := m.st.Prune(below)
	if err != nil {
		m.log.Warn("pruning failed", "below", below, "err", err.Error())
		return
	}
	m.lastPrune = m.head.Height
	m.ix.prune(below, removed)
	m.stats.pruned.Add(int64(len(removed)))
	if len(removed) > 0 {
		m.log.Debug("pruned side blocks", "count", len(removed), "below", below)
	}
}

// sideWork is a side block validated in full on its parent's state, with
// what a switch to its branch needs.
type sideWork struct {
	head     *chain.Block   // the head it was computed against
	branch   []*chain.Block // from the fork (excluded) to the block
	fork     *Node          // the main-chain block the branch forks from
	st       *chain.State   // the state after the block
	reverted []*chain.Block // main-chain blocks above fork, newest first
	undos    []*chain.Undo  // the branch's undo records
	pre      *prechecked    // what precheck found of the block
}

// validateSide validates b, whose parent is stored but is not head, in
// full: on its parent's state, computed on a copy of base (the state after
// head, which it does not change) from the main chain's undo records and
// the stored branch, with the parent's election. It takes no lock: under
// the import lock it is called with the manager's head and state; off it,
// with a snapshot's, and the result is used only if the head is the same.
// pre is what precheck found of b in this call (nil: validateSide runs it,
// once the forger is found elected).
func (m *Manager) validateSide(b *chain.Block, head *chain.Block, base *chain.State, pre *prechecked) (*sideWork, error) {
	parent, err := m.st.BlockByHash(b.PrevHash)
	if err != nil {
		return nil, local("read parent", err)
	}
	if _, ok := m.ix.node(b.PrevHash); !ok && parent.Height+MaxReorgDepth < head.Height {
		// Below the tree's window: on the main chain, out of reach.
		return nil, &chain.RuleError{Code: ErrReorgTooDeep.Code, Message: fmt.Sprintf("parent at height %d, more than %d blocks below the head", parent.Height, MaxReorgDepth)}
	}
	nodes, fork, err := m.ix.branch(b.PrevHash)
	if err != nil {
		return nil, err
	}
	if depth := int64(head.Height) - int64(fork.Height); depth > MaxReorgDepth {
		return nil, &chain.RuleError{Code: ErrReorgTooDeep.Code, Message: fmt.Sprintf("branch forks at height %d, %d blocks below the head (limit %d)", fork.Height, depth, MaxReorgDepth)}
	}
	// The walk read only the tree; the branch's bodies are read now, to
	// apply them (the parent's is at hand).
	var branch []*chain.Block
	if len(nodes) > 0 {
		if branch, err = blocksOf(m.st, nodes[:len(nodes)-1]); err != nil {
			return nil, err
		}
		branch = append(branch, parent)
	}
	st, reverted, undos, err := m.stateOn(head, base, fork, branch)
	if err != nil {
		return nil, err
	}
	cands := m.elect.candidates(parent, st)
	// The election before the transactions' signatures (batch-verified
	// and cached by precheck; ValidatePrecheckedAndApply checks the rest
	// of the header).
	if err := chain.CheckElected(&b.Header, cands); err != nil {
		return nil, err
	}
	if pre == nil {
		if pre, err = m.precheck(b, true); err != nil {
			return nil, err
		}
	}
	undo, err := chain.ValidatePrecheckedAndApply(m.g, &parent.Header, b, cands, st, m.now().UnixMilli())
	if err != nil {
		return nil, err
	}
	return &sideWork{head: head, branch: append(branch, b), fork: fork, st: st, reverted: reverted, undos: append(undos, undo), pre: pre}, nil
}

// sideLocked stores a block whose parent is stored but is not the head,
// once validated (work, or now), or switches to its branch if it wins the
// fork choice. capped: it is stored only within the caps (sidecap.go).
func (m *Manager) sideLocked(b *chain.Block, work *sideWork, pre *prechecked, capped bool) error {
	if work == nil || work.head != m.head {
		if pre == nil && work != nil {
			pre = work.pre // stateless: it holds whatever the head
		}
		var err error
		if work, err = m.validateSide(b, m.head, m.state, pre); err != nil {
			return err
		}
	}
	hash := b.Hash()
	better, err := m.chooses(m.ix.candidate(b, hash, work.st))
	if err != nil {
		return err
	}
	if !better {
		var size int64
		if capped {
			// The caps again, under the lock: concurrent imports of one
			// slot's variants all passed them off it. (Only a capped
			// block is encoded to be sized.)
			size = int64(len(chain.EncodeBlock(b)))
			if why := m.sideRefusal(b, size); why != "" {
				m.obs.checked(b, hash)
				return errNotStored(why)
			}
		}
		if err := m.st.PutBlock(b); err != nil {
			return local("store side block", err)
		}
		// Stored uncapped (synced, size 0): not counted, like the
		// blocks a reorg leaves.
		m.ix.addSide(b, hash, size, work.st)
		m.obs.checked(b, hash)
		return ErrSideBlock
	}
	return m.switchLocked(work.reverted, work.branch, work.undos, work.st, work.fork)
}

// knownLocked answers a block already stored. On the main chain it is just
// known; on a side branch the fork choice runs again, since what kept the
// branch off the main chain may have been passing (a failed disk write).
func (m *Manager) knownLocked(b *chain.Block, hash chain.Hash) error {
	if mh, err := m.st.HashAt(b.Height); err == nil && mh == hash {
		return ErrKnownBlock
	}
	if _, ok := m.ix.node(hash); !ok {
		// Stored but not in the tree: on the main chain below its window.
		return ErrKnownBlock
	}
	nodes, fork, err := m.ix.branch(hash)
	if err != nil {
		return err
	}
	if len(nodes) == 0 || m.head.Height-fork.Height > MaxReorgDepth {
		return ErrKnownBlock
	}
	tip := nodes[len(nodes)-1]
	var branch []*chain.Block
	var st *chain.State
	var reverted []*chain.Block
	var undos []*chain.Undo
	compute := func() error {
		if branch, err = blocksOf(m.st, nodes); err != nil {
			return err
		}
		st, reverted, undos, err = m.stateOn(m.head, m.state, fork, branch)
		return err
	}
	if _, v2 := m.fc.(V2); !v2 && !tip.JustifiedKnown {
		// A side block loaded at a restart: fork choice compares
		// justified checkpoints, so the branch's state is computed first
		// (once: the node keeps it), or a longer branch that lost on
		// justification would win after a restart.
		if err := compute(); err != nil {
			return err
		}
		m.ix.setJustified(tip, st)
	}
	if better, err := m.chooses(tip); err != nil || !better {
		if err == nil {
			err = ErrKnownBlock
		}
		return err
	}
	if st == nil {
		if err := compute(); err != nil {
			return err
		}
	}
	return m.switchLocked(reverted, branch, undos, st, fork)
}

// switchLocked makes branch the main chain in one store transaction; st
// is the state after it. m.state is untouched until the commit succeeded.
func (m *Manager) switchLocked(reverted, branch []*chain.Block, undos []*chain.Undo, st *chain.State, fork *Node) error {
	// A branch may hold the node's final block with a record that proves
	// less: the node's final checkpoint is stored first, so that a restart
	// after the switch still knows it (finality.go).
	if err := m.final.keep(st.Finality().Finalized); err != nil {
		return local("store the node's final checkpoint", err)
	}
	m.seq.Add(1)
	defer m.seq.Add(1)
	if err := m.st.Switch(len(reverted), branch, undos, st); err != nil {
		return local("switch to branch", err)
	}
	old := m.head
	m.state, m.head = st, branch[len(branch)-1]
	m.stats.reorgs.Add(1)
	m.log.Info("reorganised", "fork_height", fork.Height, "reverted", len(reverted), "applied", len(branch),
		"old_head", old.Hash().String(), "new_head", m.head.Hash().String())
	m.publishLocked(branch, reverted)
	return nil
}

// stateOn computes, on a copy of base (the state after head), the state
// after branch (stored blocks, each validated when it was stored) forking
// from the main chain at fork. It returns that state, the main-chain blocks
// it reverted (newest first) and the branch's undo records.
func (m *Manager) stateOn(head *chain.Block, base *chain.State, fork *Node, branch []*chain.Block) (*chain.State, []*chain.Block, []*chain.Undo, error) {
	m.stats.branchChecks.Add(1)
	st := base.Clone()
	var reverted []*chain.Block
	for h := head.Height; h > fork.Height; h-- {
		blk, err := m.st.BlockByHeight(h)
		if err != nil {
			return nil, nil, nil, local("read main chain", err)
		}
		undo, err := m.st.Undo(h)
		if err != nil {
			return nil, nil, nil, local("read undo record", err)
		}
		if err := st.Revert(undo); err != nil {
			// The store is damaged: no reorg below this height can be
			// computed, and going on would build on a state no chain has.
			err = fmt.Errorf("store corruption: the undo record of main-chain block %d cannot be applied: %w", h, err)
			m.Halt(err)
			return nil, nil, nil, local("revert main chain", err)
		}
		reverted = append(reverted, blk)
	}
	undos := make([]*chain.Undo, 0, len(branch)+1)
	for _, blk := range branch {
		undo, err := st.Apply(blk, m.g)
		if err != nil {
			// Stored before blocks were validated in full (an older node):
			// it is invalid after all, and so is what builds on it.
			hash := blk.Hash()
			m.ix.judge(blk, hash, err)
			return nil, nil, nil, &chain.RuleError{Code: ErrInvalidAncestor.Code, Message: fmt.Sprintf("stored ancestor %s is invalid: %v", hash, err)}
		}
		undos = append(undos, undo)
	}
	return st, reverted, undos, nil
}

// ProcessBlocks imports consecutive blocks, as sync delivers them. Blocks
// that extend the head are validated one by one in memory and committed
// together in one store transaction (a crash keeps all or none). It returns
// how many blocks it got through and, if it stopped early, why: the error
// of blocks[accepted], with ProcessBlock's meanings. Known blocks and side
// blocks kept count as got through.
//
// A block refused only for a timestamp a little ahead of our clock is
// kept until due, with the blocks after it (future.go). The side blocks it
// stores are not capped (sidecap.go): it is for sync, whose sessions bound
// them, not for blocks a client or peer hands over one by one.
func (m *Manager) ProcessBlocks(blocks []*chain.Block) (n int, err error) {
	began := time.Now()
	defer func() {
		m.met.ObserveImport(metrics.PathRange, importOutcome(err), time.Since(began))
		if n < len(blocks) && m.future.holdIfEarly(blocks[n], err) {
			for _, b := range blocks[n+1:] {
				m.future.holdIfEarly(b, ErrUnknownParent) // its parent is kept: it waits too
			}
		}
	}()
	if err := m.usable(); err != nil {
		return 0, err
	}
	// Context-free checks first, off the lock; stop at the first failure.
	// A block whose parent is neither stored nor the block before it costs
	// no signature check.
	hashes := make([]chain.Hash, len(blocks))
	pres := make([]*prechecked, len(blocks))
	limit, stopErr := len(blocks), error(nil)
	for i, b := range blocks {
		hashes[i] = b.Hash()
		err := m.cp.check(b, hashes[i])
		if err == nil {
			err = m.ix.check(b, hashes[i])
		}
		if err == nil {
			if known, herr := m.st.HasBlock(hashes[i]); herr != nil {
				err = local("read store", herr)
			} else if !known {
				if i == 0 || b.PrevHash != hashes[i-1] {
					if ok, herr := m.st.HasBlock(b.PrevHash); herr != nil {
						err = local("read store", herr)
					} else if !ok {
						err = ErrUnknownParent
					}
				}
				if err == nil {
					pres[i], err = m.precheck(b, true)
				}
			}
		}
		if err != nil {
			m.ix.judge(b, hashes[i], err)
			limit, stopErr = i, err
			break
		}
	}
	// Off the lock: validate the run of blocks that extends the head, on a
	// copy of the snapshot's state, elections included.
	snap := m.snap.Load()
	run := m.validateRun(blocks[:limit], pres, snap)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return 0, err
	}
	first := 0 // blocks before it are done
	if run.n > 0 && m.head == snap.head {
		if err := m.commitRun(blocks[:run.n], pres[:run.n], run); err != nil {
			return 0, err
		}
		first = run.n
	}
	// A rule broken on the snapshot's head is broken on ours if the run
	// was committed (or was empty) on that same head.
	if run.err != nil && ((run.n == 0 && m.head == snap.head) || (run.n > 0 && first == run.n)) {
		m.ix.judge(blocks[run.n], hashes[run.n], run.err)
		return run.n, run.err
	}
	tip := m.head
	var batch []*chain.Block
	var undos []*chain.Undo
	var batchPres []*prechecked
	start := first // index of batch[0]: what a failed flush loses
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		m.seq.Add(1)
		defer m.seq.Add(1)
		if err := m.st.Switch(0, batch, undos, m.state); err != nil {
			for i := len(undos) - 1; i >= 0; i-- {
				if rerr := m.state.Revert(undos[i]); rerr != nil {
					m.Halt(fmt.Errorf("the state in memory cannot be restored after a failed commit of %d blocks: %w", len(batch), rerr))
					break
				}
			}
			n := len(batch)
			batch, undos, batchPres = nil, nil, nil
			return local(fmt.Sprintf("commit %d blocks", n), err)
		}
		m.head = batch[len(batch)-1]
		m.publishLocked(batch, nil)
		batch, undos, batchPres = nil, nil, nil
		return nil
	}
	now := m.now().UnixMilli()
	// Synced blocks are stored whatever the side caps say. Sync hands a
	// branch over in batches (4 MiB: about two full blocks), so a batch
	// cannot tell whether its branch will win: one that forks deeper than
	// a batch, or ties the head's height and wins on rank, would lose its
	// ancestors to a full cap, and the node would never take it. What sync
	// stores is bounded by the session (a range from one peer, forking
	// within the reorg limit) and freed by pruning (sidecap.go).
	const capped = false
	for i := first; i < limit; i++ {
		b := blocks[i]
		if b.PrevHash == tip.Hash() {
			cands := m.elect.candidates(tip, m.state)
			undo, err := validateApply(m.g, m.txv, tip, b, pres[i], cands, m.state, now)
			if err != nil {
				if ferr := flush(); ferr != nil {
					return start, ferr
				}
				m.ix.judge(b, hashes[i], err)
				return i, err
			}
			if len(batch) == 0 {
				start = i
			}
			batch, undos, tip = append(batch, b), append(undos, undo), b
			batchPres = append(batchPres, pres[i])
			continue
		}
		if err := flush(); err != nil {
			return start, err
		}
		err := m.processLocked(b, hashes[i], nil, nil, pres[i], capped)
		m.ix.judge(b, hashes[i], err)
		if err != nil && !errors.Is(err, ErrKnownBlock) && !errors.Is(err, ErrSideBlock) {
			return i, err
		}
		tip = m.head
	}
	if err := flush(); err != nil {
		return start, err
	}
	return limit, stopErr
}

// runWork is a run of blocks validated off the lock on a snapshot.
type runWork struct {
	n     int           // blocks that passed, from the first
	st    *chain.State  // the state after them
	undos []*chain.Undo // their undo records
	err   error         // why blocks[n] failed, if a rule refused it
}

// validateRun validates the blocks that extend snap's head one after the
// other, on a copy of its state, without any lock; it stops at the first
// block that does not extend the previous one or breaks a rule. The
// verdicts depend only on the snapshot, so they hold whatever happens
// meanwhile; the result is committed only if the head is still snap's.
// pres[i] is what precheck found of blocks[i] (nil: it did not run).
func (m *Manager) validateRun(blocks []*chain.Block, pres []*prechecked, snap *Snapshot) runWork {
	var w runWork
	if len(blocks) == 0 || blocks[0].PrevHash != snap.headHash {
		return w
	}
	w.st = snap.state.Clone()
	parent := snap.head
	now := m.now().UnixMilli()
	for i, b := range blocks {
		if b.PrevHash != parent.Hash() {
			break
		}
		cands := m.elect.candidates(parent, w.st)
		undo, err := validateApply(m.g, m.txv, parent, b, pres[i], cands, w.st, now)
		if err != nil {
			if IsPeerFault(err) {
				w.err = err
			}
			break
		}
		w.undos = append(w.undos, undo)
		parent = b
		w.n++
	}
	return w
}

// commitRun commits blocks (prechecked as pres) validated by validateRun
// on the current head.
func (m *Manager) commitRun(blocks []*chain.Block, pres []*prechecked, w runWork) error {
	m.seq.Add(1)
	defer m.seq.Add(1)
	if err := m.st.Switch(0, blocks, w.undos, w.st); err != nil {
		return local(fmt.Sprintf("commit %d blocks", len(blocks)), err)
	}
	m.state, m.head = w.st, blocks[len(blocks)-1]
	m.publishLocked(blocks, nil)
	return nil
}
