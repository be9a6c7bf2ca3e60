package chainmgr

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// testChain is a manager on a real bbolt store in dir whose genesis makes
// forger the only staker, and rich (an account with coins to spend).
type testChain struct {
	t      *testing.T
	fc     ForkChoice // nil: the default
	cp     *chain.Checkpoint
	dir    string
	g      *chain.Genesis
	forger *keystore.Key
	rich   *keystore.Key
	m      *Manager
}

func newTestChain(t *testing.T) *testChain {
	t.Helper()
	return newChainWithStake(t, 1)
}

// newChainWithStake is a test chain whose forger stakes stake.
func newChainWithStake(t *testing.T, stake uint64) *testChain {
	t.Helper()
	forger, _ := keystore.Generate()
	rich, _ := keystore.Generate()
	g := chain.DefaultGenesis()
	g.ChainID = "chainmgr-test"
	g.Timestamp = time.Now().Add(-time.Hour).UnixMilli()
	g.Allocations = []chain.Allocation{
		{Address: forger.Address(), Balance: 1000, Stake: stake},
		{Address: rich.Address(), Balance: 1000},
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	tc := &testChain{t: t, dir: t.TempDir(), g: g, forger: forger, rich: rich}
	tc.open(nil)
	return tc
}

// open (re)opens the manager on the store, wrapped by wrap if not nil.
func (tc *testChain) open(wrap func(Store) Store) {
	tc.t.Helper()
	st, err := store.Open(filepath.Join(tc.dir, "chain.db"))
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := st.Init(tc.g); err != nil {
		tc.t.Fatal(err)
	}
	var s Store = st
	if wrap != nil {
		s = wrap(s)
	}
	tc.m, err = New(Config{Genesis: tc.g, Store: s, ForkChoice: tc.fc, Checkpoint: tc.cp})
	if err != nil {
		tc.t.Fatal(err)
	}
	m := tc.m
	tc.t.Cleanup(func() { m.Close() })
}

func (tc *testChain) restart() {
	tc.t.Helper()
	if err := tc.m.Close(); err != nil {
		tc.t.Fatal(err)
	}
	tc.open(nil)
}

// block makes a block on parent signed by k, dt ms after it.
func (tc *testChain) block(k *keystore.Key, parent *chain.Block, dt int64, txs ...chain.Transaction) *chain.Block {
	b := chain.NewBlock(tc.g, &parent.Header, 0, parent.Timestamp+dt, txs)
	k.SignHeader(&b.Header)
	return b
}

// chainOf makes count blocks on parent.
func (tc *testChain) chainOf(parent *chain.Block, count int, dt int64) []*chain.Block {
	var out []*chain.Block
	for range count {
		parent = tc.block(tc.forger, parent, dt)
		out = append(out, parent)
	}
	return out
}

func (tc *testChain) transfer(from *keystore.Key, amount, nonce uint64) chain.Transaction {
	tx := chain.Transaction{Type: chain.TxTransfer, ChainID: tc.g.ChainID, To: tc.forger.Address(), Amount: amount, Nonce: nonce}
	from.SignTx(&tx)
	return tx
}

func (tc *testChain) stored(h chain.Hash) bool {
	_, err := tc.m.BlockByHash(h)
	return err == nil
}

func mustImport(t *testing.T, m *Manager, blocks []*chain.Block) {
	t.Helper()
	if n, err := m.ProcessBlocks(blocks); err != nil || n != len(blocks) {
		t.Fatalf("imported %d of %d: %v", n, len(blocks), err)
	}
}

// TestRestartedNodeRefusesJunkSideBranches: after a restart no election
// is cached; side blocks from a key with no stake, or with a transaction
// that cannot apply on their branch, are refused without being stored.
func TestRestartedNodeRefusesJunkSideBranches(t *testing.T) {
	tc := newTestChain(t)
	genesis := tc.m.Head()
	main := tc.chainOf(genesis, 5, 1)
	mustImport(t, tc.m, main)
	tc.restart()

	stranger, _ := keystore.Generate()
	junk := tc.block(stranger, main[1], 2)
	if err := tc.m.ProcessBlock(junk); chain.CodeOf(err) != chain.ErrWrongForger.Code {
		t.Fatalf("stranger's side block: %v, want wrong_forger", err)
	}
	poor, _ := keystore.Generate()
	overdraft := tc.block(tc.forger, main[1], 2, tc.transfer(poor, 5, 1))
	if err := tc.m.ProcessBlock(overdraft); chain.CodeOf(err) != chain.ErrInsufficientFunds.Code {
		t.Fatalf("side block with an overdraft: %v, want insufficient_funds", err)
	}
	for _, b := range []*chain.Block{junk, overdraft} {
		if tc.stored(b.Hash()) {
			t.Fatalf("junk block %s was stored", b.Hash())
		}
		if s, code, _ := tc.m.BlockStatus(b.Hash()); s != StatusInvalid || code == "" {
			t.Fatalf("junk block status %s %q, want invalid with a code", s, code)
		}
	}
	// A valid side block is checked in full on its parent's state and kept.
	good := tc.block(tc.forger, main[1], 2, tc.transfer(tc.rich, 5, 1))
	if err := tc.m.ProcessBlock(good); !errors.Is(err, ErrSideBlock) {
		t.Fatalf("valid side block: %v, want ErrSideBlock", err)
	}
	if s, _, _ := tc.m.BlockStatus(good.Hash()); s != StatusSide {
		t.Fatalf("valid side block status %s", s)
	}
	if tc.m.Head().Hash() != main[4].Hash() {
		t.Fatal("the head moved")
	}
	// And a restart remembers the junk.
	tc.restart()
	before := tc.m.Stats().BranchChecks
	if err := tc.m.ProcessBlock(overdraft); !errors.Is(err, ErrKnownInvalid) || chain.CodeOf(err) != chain.ErrInsufficientFunds.Code {
		t.Fatalf("junk again after restart: %v", err)
	}
	if tc.m.Stats().BranchChecks != before {
		t.Fatal("a known invalid block was validated again")
	}
}

// TestKnownInvalidBlockRefusedWithoutReorg: a branch that would win the
// fork choice but holds an invalid block is refused; when that block, or
// a child of it, comes again it is refused at once: no branch state is
// computed, no reorg attempted.
func TestKnownInvalidBlockRefusedWithoutReorg(t *testing.T) {
	tc := newTestChain(t)
	genesis := tc.m.Head()
	mustImport(t, tc.m, tc.chainOf(genesis, 2, 1))
	b1 := tc.block(tc.forger, genesis, 3)
	if err := tc.m.ProcessBlock(b1); err != nil && !errors.Is(err, ErrSideBlock) {
		t.Fatal(err)
	}
	poor, _ := keystore.Generate()
	b2 := tc.block(tc.forger, b1, 1, tc.transfer(poor, 1, 1))
	b3 := tc.block(tc.forger, b2, 1)
	head := tc.m.Head().Hash()
	if err := tc.m.ProcessBlock(b2); chain.CodeOf(err) != chain.ErrInsufficientFunds.Code {
		t.Fatalf("invalid branch block: %v", err)
	}
	st := tc.m.Stats()
	if err := tc.m.ProcessBlock(b2); !errors.Is(err, ErrKnownInvalid) {
		t.Fatalf("second time: %v, want ErrKnownInvalid", err)
	}
	if n, err := tc.m.ProcessBlocks([]*chain.Block{b2, b3}); n != 0 || !errors.Is(err, ErrKnownInvalid) {
		t.Fatalf("in a batch: %d %v", n, err)
	}
	if err := tc.m.ProcessBlock(b3); chain.CodeOf(err) != ErrInvalidAncestor.Code {
		t.Fatalf("child of an invalid block: %v, want invalid_ancestor", err)
	}
	after := tc.m.Stats()
	if after.BranchChecks != st.BranchChecks || after.Reorgs != st.Reorgs {
		t.Fatalf("known invalid blocks cost work: branch checks %d → %d, reorgs %d → %d", st.BranchChecks, after.BranchChecks, st.Reorgs, after.Reorgs)
	}
	if after.KnownInvalid < 3 {
		t.Fatalf("known-invalid refusals counted %d, want ≥ 3", after.KnownInvalid)
	}
	if tc.m.Head().Hash() != head || tc.stored(b2.Hash()) || tc.stored(b3.Hash()) {
		t.Fatal("the chain changed")
	}
	if err := tc.m.CheckDisk(); err != nil {
		t.Fatal(err)
	}
}

// TestMalleatedCopyIsNotRememberedInvalid: block hashes leave signatures
// out, so a garbled copy of a good block must not condemn the good one.
func TestMalleatedCopyIsNotRememberedInvalid(t *testing.T) {
	tc := newTestChain(t)
	b := tc.block(tc.forger, tc.m.Head(), 1, tc.transfer(tc.rich, 5, 1))
	garbled := *b
	garbled.Transactions = append([]chain.Transaction(nil), b.Transactions...)
	garbled.Transactions[0].Signature[0] ^= 0x10 // well-formed, wrong
	if err := tc.m.ProcessBlock(&garbled); chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Fatalf("garbled copy: %v", err)
	}
	badHeader := *b
	flip := "0"
	if b.Signature[0] == '0' {
		flip = "1"
	}
	badHeader.Signature = flip + b.Signature[1:] // R changed: never verifies
	if err := tc.m.ProcessBlock(&badHeader); chain.CodeOf(err) != chain.ErrBadBlockSig.Code {
		t.Fatalf("bad header signature: %v", err)
	}
	if err := tc.m.ProcessBlock(b); err != nil {
		t.Fatalf("the real block: %v", err)
	}
}

// TestSideBlocksBelowTheReorgLimitArePruned: once the head is more than
// MaxReorgDepth above them, side blocks, their index entries and the undo
// records no reorg can use are removed, on disk too.
func TestSideBlocksBelowTheReorgLimitArePruned(t *testing.T) {
	tc := newTestChain(t)
	genesis := tc.m.Head()
	main := tc.chainOf(genesis, 3, 1)
	mustImport(t, tc.m, main)
	side := tc.block(tc.forger, main[0], 5)
	if err := tc.m.ProcessBlock(side); !errors.Is(err, ErrSideBlock) {
		t.Fatalf("side block: %v", err)
	}
	recent := tc.chainOf(main[2], MaxReorgDepth+pruneEvery+2, 1)
	mustImport(t, tc.m, recent)
	if tc.stored(side.Hash()) {
		t.Fatal("a side block below the reorg limit is still stored")
	}
	if s, _, _ := tc.m.BlockStatus(side.Hash()); s != StatusUnknown {
		t.Fatalf("pruned side block status %s", s)
	}
	if tc.m.Stats().SidePruned != 1 {
		t.Fatalf("SidePruned = %d, want 1", tc.m.Stats().SidePruned)
	}
	if _, err := tc.m.st.Undo(2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("undo record of height 2: %v, want pruned", err)
	}
	head := tc.m.Head().Height
	if _, err := tc.m.st.Undo(head - MaxReorgDepth + 1); err != nil {
		t.Fatalf("undo record a reorg may need: %v", err)
	}
	tc.restart()
	if refs, _ := tc.m.st.SideBlocks(); len(refs) != 0 {
		t.Fatalf("side index after restart: %v", refs)
	}
	// A reorg within the limit still works after pruning.
	fork := recent[len(recent)-3]
	branch := tc.chainOf(fork, 3, 2)
	mustImport(t, tc.m, branch)
	if tc.m.Head().Hash() != branch[2].Hash() {
		t.Fatal("a longer branch within the limit did not win")
	}
	if err := tc.m.CheckDisk(); err != nil {
		t.Fatal(err)
	}
}

// failingStore fails every commit while fail is set: a full disk.
type failingStore struct {
	Store
	fail bool
}

var errDisk = errors.New("no space left on device")

func (f *failingStore) Switch(revert int, blocks []*chain.Block, undos []*chain.Undo, st *chain.State) error {
	if f.fail {
		return errDisk
	}
	return f.Store.Switch(revert, blocks, undos, st)
}

// TestDiskFailureIsOurs: a commit that fails is a local error (never the
// sender's fault), leaves state and head as they were, and does not mark
// the block: it imports once the disk is back.
func TestDiskFailureIsOurs(t *testing.T) {
	tc := newTestChain(t)
	tc.m.Close()
	var fs *failingStore
	tc.open(func(s Store) Store { fs = &failingStore{Store: s}; return fs })
	b := tc.block(tc.forger, tc.m.Head(), 1, tc.transfer(tc.rich, 5, 1))
	fs.fail = true
	err := tc.m.ProcessBlock(b)
	var le *LocalError
	if !errors.As(err, &le) || !errors.Is(err, errDisk) || IsPeerFault(err) {
		t.Fatalf("commit failure: %v (peer fault %v), want a local error", err, IsPeerFault(err))
	}
	if n, err := tc.m.ProcessBlocks([]*chain.Block{b}); n != 0 || IsPeerFault(err) {
		t.Fatalf("batch commit failure: %d %v", n, err)
	}
	if tc.m.Head().Height != 0 || tc.m.Snapshot().Account(tc.rich.Address()).Nonce != 0 {
		t.Fatal("a failed commit moved the chain")
	}
	fs.fail = false
	if err := tc.m.ProcessBlock(b); err != nil {
		t.Fatalf("after the disk came back: %v", err)
	}
	if err := tc.m.CheckDisk(); err != nil {
		t.Fatal(err)
	}
}

func TestIsPeerFault(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&chain.RuleError{Code: chain.ErrWrongForger.Code}, true},
		{&chain.BlockTxError{Err: &chain.RuleError{Code: chain.ErrBadSignature.Code}}, true},
		{knownInvalid(chain.Hash{}, chain.ErrBadNonce.Code), true},
		{&chain.RuleError{Code: chain.ErrFutureBlock.Code}, false},
		{&chain.RuleError{Code: ErrReorgTooDeep.Code}, false},
		{&LocalError{Op: "commit", Err: errDisk}, false},
		{&HaltedError{Cause: errDisk}, false},
		{ErrClosed, false},
		{ErrKnownBlock, false},
		{ErrSideBlock, false},
		{ErrUnknownParent, false},
		{errors.New("anything else"), false},
	} {
		if got := IsPeerFault(c.err); got != c.want {
			t.Errorf("IsPeerFault(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestSubscribeAndSnapshot: events come in commit order with the snapshot
// after the change; a snapshot taken earlier does not change.
func TestSubscribeAndSnapshot(t *testing.T) {
	tc := newTestChain(t)
	events, cancel := tc.m.Subscribe(16)
	defer cancel()
	before := tc.m.Snapshot()
	b := tc.block(tc.forger, tc.m.Head(), 1, tc.transfer(tc.rich, 5, 1))
	if err := tc.m.ProcessBlock(b); err != nil {
		t.Fatal(err)
	}
	ev := <-events
	if len(ev.Added) != 1 || ev.Added[0] != b || ev.Snapshot.Head() != b {
		t.Fatalf("event %+v", ev)
	}
	if before.Account(tc.rich.Address()).Nonce != 0 || ev.Snapshot.Account(tc.rich.Address()).Nonce != 1 {
		t.Fatal("snapshots are not immutable views of their commit")
	}
	if ev.Snapshot.Version() != before.Version()+1 {
		t.Fatalf("versions %d then %d: a commit must make the next one", before.Version(), ev.Snapshot.Version())
	}
	if stakers, total := ev.Snapshot.Stakers(); len(stakers) != 1 || total != 1 {
		t.Fatalf("stakers %v total %d", stakers, total)
	}
	if ev.Snapshot.RankOf(tc.forger.Address()) != 0 {
		t.Fatal("the only staker is not elected")
	}
	tc.m.Close()
	if _, ok := <-events; ok {
		t.Fatal("the event channel stayed open after Close")
	}
	if err := tc.m.ProcessBlock(b); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestCloseIsBounded: Close returns within its 5 s deadline even when an
// import never ends, and later imports are refused at once.
func TestCloseIsBounded(t *testing.T) {
	tc := newTestChain(t)
	tc.m.mu.Lock() // an import stuck for ever
	defer tc.m.mu.Unlock()
	start := time.Now()
	err := tc.m.Close()
	if took := time.Since(start); err == nil || took > 7*time.Second {
		t.Fatalf("Close with a stuck import: %v after %v; want an error within ~5 s", err, took)
	}
	b := tc.block(tc.forger, tc.m.Head(), 1)
	if err := tc.m.ProcessBlock(b); !errors.Is(err, ErrClosed) {
		t.Fatalf("import after Close: %v", err)
	}
}

// TestProcessBlocksRun: a synced run is validated off the lock and
// committed at once; the first block breaking a rule stops it, with the
// blocks before it committed and the bad one remembered.
func TestProcessBlocksRun(t *testing.T) {
	tc := newTestChain(t)
	genesis := tc.m.Head()
	good := tc.chainOf(genesis, 3, 1)
	poor, _ := keystore.Generate()
	bad := tc.block(tc.forger, good[2], 1, tc.transfer(poor, 1, 1))
	after := tc.block(tc.forger, bad, 1)
	n, err := tc.m.ProcessBlocks(append(append([]*chain.Block{}, good...), bad, after))
	if n != 3 || chain.CodeOf(err) != chain.ErrInsufficientFunds.Code {
		t.Fatalf("got %d, %v; want 3 and insufficient_funds", n, err)
	}
	if tc.m.Head() != good[2] {
		t.Fatal("the good prefix was not committed")
	}
	if s, _, _ := tc.m.BlockStatus(bad.Hash()); s != StatusInvalid {
		t.Fatalf("bad block status %s", s)
	}
	// The bad block first: nothing committed.
	if n, err := tc.m.ProcessBlocks([]*chain.Block{after}); n != 0 || chain.CodeOf(err) != ErrInvalidAncestor.Code {
		t.Fatalf("child of the bad block: %d %v", n, err)
	}
	if err := tc.m.CheckDisk(); err != nil {
		t.Fatal(err)
	}
}

// TestUnelectedBlockRefusedBeforeSignatures: a block on the head whose
// forger is not elected is refused as wrong_forger before its
// transactions' signatures are checked (a bad one would say bad_signature),
// so a stranger's key buys no verification work.
func TestUnelectedBlockRefusedBeforeSignatures(t *testing.T) {
	tc := newTestChain(t)
	stranger, _ := keystore.Generate()
	tx := tc.transfer(tc.rich, 5, 1)
	tx.Amount = 6 // the signature no longer verifies
	b := tc.block(stranger, tc.m.Head(), 1, tx)
	if err := tc.m.ProcessBlock(b); chain.CodeOf(err) != chain.ErrWrongForger.Code {
		t.Fatalf("stranger's block with a bad signature: %v, want wrong_forger", err)
	}
	// The elected forger's block with the same transaction: bad_signature.
	good := tc.block(tc.forger, tc.m.Head(), 1, tx)
	if err := tc.m.ProcessBlock(good); chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Fatalf("elected forger's block with a bad signature: %v, want bad_signature", err)
	}
}
