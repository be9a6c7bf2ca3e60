package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// State diffs: why the accounts bucket is not written at every block.
//
// The accounts bucket is a B+tree keyed by address. A block of 1000
// transfers to recipients spread over a million accounts lands on about a
// thousand different leaf pages, and bbolt rewrites every dirty page at
// commit: the cost of a block's commit grew with the number of accounts
// (BenchmarkCommitOnStateSize: 10 ms at 10^3 accounts, 120 ms at 10^6).
// So a block's account changes are written as one record of the diffs
// bucket, keyed by height: the new value of every account the block
// touched (its undo record names them). Those keys only grow, so the
// record is an append at the right edge of its tree, whatever the state's
// size. The accounts bucket is the base: the state after the height kept
// in meta "base". The state after the head is the base with the diffs of
// (base, head] applied in height order (readState).
//
// Compaction folds the oldest diffs into the base, run in the background
// once compactAfter blocks are pending, off the commit that triggered it.
// Folding many blocks at once is what saves page writes: the accounts the
// blocks touched are put once each, in key order, and the pages they share
// are written once. A fold writes the base in chunks of key order, each a
// write transaction, and then moves the base and removes the folded diffs
// in one more (keyFoldTo says why a crash between them leaves base +
// diffs equal to the same state).
//
// A reorg that reverts only blocks above the base deletes their diffs. One
// that reaches below the base (their diffs are folded in already) writes
// the final value of every account any pending diff, reverted or new
// block touched straight into the base, drops every diff and moves the
// base to the new head, in the reorg's own transaction: the base then
// holds the whole state again.
var bucketDiffs = []byte("diffs")

// keyBase (meta) holds the height (8 bytes) of the state the accounts
// bucket holds. A format-3 store has none: its base is its head.
const keyBase = "base"

// diffVersion is the first byte of a diff record.
const diffVersion = 1

// Compaction thresholds (variables so tests can move them).
var (
	// compactAfter pending blocks start a background fold.
	//
	// A fold of k blocks of c changes each writes at most min(k·c, P)
	// pages of a base of P pages: at 10^6 accounts P is about 30,000, so
	// once k·c passes P a fold rewrites nearly the whole base whatever k
	// is, and each block's share of that rewrite is P/k page writes. The
	// more blocks a fold takes, the less each pays: the 448 blocks of a
	// fold here (compactAfter−keepRecent) make a block of 1000 changes
	// pay about 70 page writes at 10^6 accounts, where writing it into
	// the base alone (format 3) cost 1000, and 192 (256 pending, until
	// 2026-12-07) made it pay 160: BenchmarkCommitOnStateSize over 1024
	// blocks, 10^6 against 10^3 accounts, went from 2.0× to 1.36–1.45×.
	// What bounds k:
	//   - LoadState replays the pending diffs (fewer than compactAfter
	//     plus the blocks of one fold);
	//   - maxFoldEntries bounds what a fold holds in memory, and a fold
	//     stops at it (448 blocks of 1000 changes fit);
	//   - a fold writes the base in chunks (foldChunkEntries), so how
	//     long a commit may wait for it follows a chunk, not k. (Before
	//     the chunks, 448 blocks a fold held the writer lock for the
	//     whole rewrite, 3.4–4.2 s, and 256 pending was kept.)
	compactAfter uint64 = 512
	// keepRecent is how many of the newest blocks a background fold
	// leaves as diffs: a reorg reverts recent blocks, and reverting a
	// block still in the diffs only drops its record, where reverting one
	// folded in makes the reorg rewrite every pending account (Switch).
	keepRecent uint64 = 64
	// maxFold bounds the blocks one Compact takes.
	maxFold uint64 = 512
)

var (
	// maxFoldEntries bounds the diff entries one fold holds in memory
	// (32 bytes each, foldEntry; the entries point into the records): it
	// stops after the block that reaches it. 2^19 entries hold the 448
	// blocks of 1000 changes a background fold takes; of blocks of 2000
	// changes it takes 262.
	maxFoldEntries = 1 << 19
)

// testHookFold, when set (by tests only), runs inside the fold's last
// write transaction, after the chunks are written and before the base
// moves; an error aborts the transaction, as a crash at that instant would.
var testHookFold func() error

// testHookChunk, when set (by tests only), runs after each chunk of a fold
// is committed.
var testHookChunk func()

// diffEntry is an account's value after a block.
type diffEntry struct {
	addr chain.Address
	acc  chain.Account
}

// encodeDiff is: version 1 byte, entry count uvarint, per entry the
// address (uvarint length + bytes) and the account (40 bytes; all zero
// when the block left the account empty: the base deletes it).
func encodeDiff(es []diffEntry) ([]byte, error) {
	n := 1 + binary.MaxVarintLen64
	for _, e := range es {
		if len(e.addr) > maxAddressLen {
			return nil, fmt.Errorf("store: diff: address of %d bytes", len(e.addr))
		}
		n += 2 + len(e.addr) + accountLen
	}
	out := make([]byte, 0, n)
	out = append(out, diffVersion)
	out = binary.AppendUvarint(out, uint64(len(es)))
	for _, e := range es {
		out = binary.AppendUvarint(out, uint64(len(e.addr)))
		out = append(out, e.addr...)
		out = appendAccount(out, e.acc)
	}
	return out, nil
}

// decodeDiff calls fn with each entry of a diff record, in order. The
// address is a copy (bbolt's value bytes die with the transaction).
func decodeDiff(v []byte, fn func(chain.Address, chain.Account)) error {
	return scanDiff(v, func(a, acc []byte) error {
		dec, err := decodeAccount(acc)
		if err != nil {
			return err
		}
		fn(chain.Address(a), dec)
		return nil
	})
}

// scanDiff calls fn with each entry of a diff record, in order: the
// address and the 40-byte account, both slices of v (the account follows
// the address there, and addr's capacity reaches over it). An error of fn
// ends the scan.
func scanDiff(v []byte, fn func(addr, acc []byte) error) error {
	if len(v) < 1 || v[0] != diffVersion {
		return fmt.Errorf("%w: diff record of version %v", errMalformed, v[:min(len(v), 1)])
	}
	v = v[1:]
	count, n := binary.Uvarint(v)
	if n <= 0 || count > uint64(len(v))/(1+accountLen) {
		return fmt.Errorf("%w: diff record: bad entry count", errMalformed)
	}
	v = v[n:]
	for i := uint64(0); i < count; i++ {
		l, n := binary.Uvarint(v)
		if n <= 0 {
			return fmt.Errorf("%w: diff entry %d: bad address length", errMalformed, i)
		}
		v = v[n:]
		if l > maxAddressLen || l+accountLen > uint64(len(v)) {
			return fmt.Errorf("%w: diff entry %d: address of %d bytes in %d remaining", errMalformed, i, l, len(v))
		}
		if err := fn(v[:l:l+accountLen], v[l:l+accountLen:l+accountLen]); err != nil {
			return err
		}
		v = v[l+accountLen:]
	}
	if len(v) != 0 {
		return fmt.Errorf("%w: diff record: %d trailing bytes", errMalformed, len(v))
	}
	return nil
}

// blockDiffs encodes the diff record of each new block: the value after
// block i of every account it touched. Only the final state is given, so
// the values are found backwards: after the last block they are st's;
// after block i, an account that a later block touches has the value the
// first such later block's undo record says it had before.
func blockDiffs(undos []*chain.Undo, st *chain.State) ([][]byte, error) {
	out := make([][]byte, len(undos))
	later := make(map[chain.Address]chain.Account)
	var es []diffEntry
	for i := len(undos) - 1; i >= 0; i-- {
		es = es[:0]
		for _, e := range undos[i].Entries {
			acc, ok := later[e.Address]
			if !ok {
				acc = st.Account(e.Address)
			}
			es = append(es, diffEntry{e.Address, acc})
		}
		enc, err := encodeDiff(es)
		if err != nil {
			return nil, err
		}
		out[i] = enc
		if i > 0 {
			for _, e := range undos[i].Entries {
				later[e.Address] = e.Account
			}
		}
	}
	return out, nil
}

// readBase returns the base height; a store without one (format 3) has
// its base at its head.
func readBase(tx *bolt.Tx, head uint64) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get([]byte(keyBase))
	if v == nil {
		return head, nil
	}
	h, err := decodeHeightKey(v)
	if err != nil {
		return 0, corrupt(bucketMeta, []byte(keyBase), err)
	}
	if h > head {
		return 0, corrupt(bucketMeta, []byte(keyBase), fmt.Errorf("base %d above the head %d", h, head))
	}
	return h, nil
}

// putAccounts writes each address's value in vals into the base, in key
// order (consecutive puts share pages); zero accounts are deleted.
func putAccounts(tx *bolt.Tx, vals map[chain.Address]chain.Account) error {
	addrs := make([]chain.Address, 0, len(vals))
	for a := range vals {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	accounts := tx.Bucket(bucketAccounts)
	slab := make([]byte, 0, len(addrs)*accountLen)
	for _, a := range addrs {
		var err error
		if acc := vals[a]; acc == (chain.Account{}) {
			err = accounts.Delete([]byte(a))
		} else {
			start := len(slab)
			slab = appendAccount(slab, acc)
			err = accounts.Put([]byte(a), slab[start:len(slab):len(slab)])
		}
		if err != nil {
			return fmt.Errorf("store: account %s: %w", a, err)
		}
	}
	return nil
}

// maybeCompact starts a background fold when enough blocks are pending and
// none is running. Called after a commit, outside its transaction.
func (s *Store) maybeCompact(head, base uint64) {
	if head-base < compactAfter {
		return
	}
	s.bg.start(&s.folding, false, func() {
		// A failure leaves base and diffs as they were (one transaction);
		// the next commit tries again, and the write health tells of a
		// disk fault.
		_, _ = s.fold(maxFold, keepRecent)
	})
}

// Compact folds the diffs of up to max blocks above the base into the
// accounts bucket, oldest first, and returns the new base height. The
// state the store holds does not change. A fold stops early after the
// block that brings it to maxFoldEntries entries.
func (s *Store) Compact(max uint64) (uint64, error) { return s.fold(max, 0) }

// keyFoldTo (meta) holds, while a fold is under way, the height (8 bytes)
// it brings the base to.
//
// A fold writes the base in chunks of key order, each in a write
// transaction of its own, so a commit waits for one chunk and not for a
// rewrite of the whole base (1–5 s at 10^6 accounts), and the pages one
// transaction holds dirty in memory are a chunk's, not the base's. Between
// chunks the accounts of the chunks done hold their values after fold_to
// and the others after base. The diffs of (base, fold_to] stay until the
// last step, and a diff holds an account's value, not a change to it, so
// replaying them over such a base gives the same state: readers, a
// restart and a crash at any instant see the head's state. Only a revert
// below fold_to could leave a chunk's account at a value a reverted block
// made; Switch treats that as a revert below the base (it rewrites every
// pending account and ends the fold). A fold a crash interrupted is taken
// up again to the same fold_to.
const keyFoldTo = "fold_to"

// foldChunkEntries bounds the diff entries one chunk of a fold writes
// (each dirties at most one leaf page of the base; at 10^6 accounts a
// chunk of 2^15 entries spread over the key space rewrites about a
// twelfth of the base's 30,000 leaves).
var foldChunkEntries = 1 << 15

// errFoldMoved ends a fold whose base or fold_to changed under it (a
// Switch below the base ended it); nothing is wrong with the store.
var errFoldMoved = errors.New("store: the base moved under the fold")

// fold is Compact leaving the keep newest blocks as diffs.
func (s *Store) fold(max, keep uint64) (uint64, error) {
	var plan *foldPlan
	err := s.view(func(tx *bolt.Tx) (err error) {
		plan, err = planFold(tx, max, keep)
		return err
	})
	if err != nil || plan == nil {
		return plan.baseOr(s), err
	}
	// The plan made in a read transaction is taken only if the base and
	// the main chain up to plan.to are still what it read.
	err = s.updateBackground(func(tx *bolt.Tx) error {
		if err := plan.check(tx, false); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte(keyFoldTo), heightKey(plan.to))
	})
	if err != nil {
		return plan.base, foldErr(err)
	}
	for i := 0; i <= len(plan.bounds); i++ {
		var lo, hi []byte
		if i > 0 {
			lo = plan.bounds[i-1]
		}
		if i < len(plan.bounds) {
			hi = plan.bounds[i]
		}
		err := s.updateBackground(func(tx *bolt.Tx) error {
			if err := plan.check(tx, true); err != nil {
				return err
			}
			return foldChunk(tx, plan.base, plan.to, lo, hi)
		})
		if err != nil {
			return plan.base, foldErr(err)
		}
		if testHookChunk != nil {
			testHookChunk()
		}
		trimMapping(s.db)
	}
	err = s.updateBackground(func(tx *bolt.Tx) error {
		if err := plan.check(tx, true); err != nil {
			return err
		}
		diffs := tx.Bucket(bucketDiffs)
		for h := plan.base + 1; h <= plan.to; h++ {
			if err := diffs.Delete(heightKey(h)); err != nil {
				return err
			}
		}
		if testHookFold != nil {
			if err := testHookFold(); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete([]byte(keyFoldTo)); err != nil {
			return err
		}
		return meta.Put([]byte(keyBase), heightKey(plan.to))
	})
	trimMapping(s.db)
	if err != nil {
		return plan.base, foldErr(err)
	}
	return plan.to, nil
}

// foldErr is nil for a fold that a Switch ended.
func foldErr(err error) error {
	if errors.Is(err, errFoldMoved) {
		return nil
	}
	return err
}

// foldPlan is a fold's range of heights and its chunks: chunk i holds the
// addresses in [bounds[i-1], bounds[i]), the first from the start and the
// last to the end of the key space.
type foldPlan struct {
	base, to uint64
	toHash   chain.Hash
	bounds   [][]byte
}

// baseOr is the plan's base, or the store's when there is no plan.
func (p *foldPlan) baseOr(s *Store) uint64 {
	if p != nil {
		return p.base
	}
	var base uint64
	_ = s.view(func(tx *bolt.Tx) (err error) {
		_, base, _, err = foldState(tx)
		return err
	})
	return base
}

// foldState reads the head, the base and the height of the fold under
// way (0: none); base and to are 0 before Init.
func foldState(tx *bolt.Tx) (head headRef, base, to uint64, err error) {
	if head, err = readHead(tx); err != nil || !head.ok {
		return head, 0, 0, err
	}
	if base, err = readBase(tx, head.height); err != nil {
		return head, 0, 0, err
	}
	to, err = readFoldTo(tx, base)
	return head, base, to, err
}

// check returns errFoldMoved unless the base, the main chain's block at
// p.to and (once set) fold_to are as the plan has them.
func (p *foldPlan) check(tx *bolt.Tx, started bool) error {
	head, base, to, err := foldState(tx)
	if err != nil {
		return err
	}
	if !head.ok || head.height < p.to || base != p.base || (started && to != p.to) || (!started && to != 0 && to != p.to) {
		return errFoldMoved
	}
	if h, err := hashAt(tx, p.to); err != nil || h != p.toHash {
		return errFoldMoved
	}
	return nil
}

// readFoldTo is the height of the fold under way, 0 if none (a fold_to at
// or below the base is a fold that ended).
func readFoldTo(tx *bolt.Tx, base uint64) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get([]byte(keyFoldTo))
	if v == nil {
		return 0, nil
	}
	h, err := decodeHeightKey(v)
	if err != nil {
		return 0, corrupt(bucketMeta, []byte(keyFoldTo), err)
	}
	if h <= base {
		return 0, nil
	}
	return h, nil
}

// planFold reads, in a read transaction (no commit waits for it), the
// heights a fold takes and where its chunks divide the key space; nil if
// there is nothing to fold. A fold under way is taken up to its fold_to.
func planFold(tx *bolt.Tx, max, keep uint64) (*foldPlan, error) {
	head, base, to, err := foldState(tx)
	if err != nil || !head.ok {
		return nil, err
	}
	if to > head.height {
		return nil, corrupt(bucketMeta, []byte(keyFoldTo), fmt.Errorf("fold to %d above the head %d", to, head.height))
	}
	resumed := to != 0
	if !resumed {
		if head.height < base+keep {
			return nil, nil
		}
		to = min(head.height-keep, base+max)
	}
	if to <= base {
		return nil, nil
	}
	// The entries of the folded diffs, in height order, as slices of the
	// records (valid while the transaction is open).
	var es []foldEntry
	diffs := tx.Bucket(bucketDiffs)
	for h := base + 1; h <= to; h++ {
		v, key, err := diffRecord(diffs, h)
		if err != nil {
			return nil, err
		}
		if es, err = appendFold(es, v); err != nil {
			return nil, corrupt(bucketDiffs, key, err)
		}
		if len(es) >= maxFoldEntries && !resumed {
			to = h
			break
		}
	}
	plan := &foldPlan{base: base, to: to}
	if plan.toHash, err = hashAt(tx, to); err != nil {
		return nil, err
	}
	sortFold(es)
	for i := foldChunkEntries; i < len(es); i += foldChunkEntries {
		b := es[i].addr()
		if len(plan.bounds) > 0 && bytes.Equal(plan.bounds[len(plan.bounds)-1], b) {
			continue
		}
		plan.bounds = append(plan.bounds, bytes.Clone(b))
	}
	return plan, nil
}

// diffRecord is the diff record of height h, above the base, and its key.
func diffRecord(diffs *bolt.Bucket, h uint64) (v, key []byte, err error) {
	key = heightKey(h)
	if v = diffs.Get(key); v == nil {
		return nil, key, corrupt(bucketDiffs, key, errors.New("diff record missing above the base"))
	}
	return v, key, nil
}

// foldChunk writes into the base the newest value in the diffs of
// (base, to] of each address in [lo, hi) (nil: no bound).
func foldChunk(tx *bolt.Tx, base, to uint64, lo, hi []byte) error {
	var es []foldEntry
	diffs := tx.Bucket(bucketDiffs)
	for h := base + 1; h <= to; h++ {
		v, key, err := diffRecord(diffs, h)
		if err != nil {
			return err
		}
		err = scanDiff(v, func(a, acc []byte) error {
			if (lo != nil && bytes.Compare(a, lo) < 0) || (hi != nil && bytes.Compare(a, hi) >= 0) {
				return nil
			}
			es = append(es, foldEntry{rec: a[:len(a)+accountLen], alen: uint16(len(a)), seq: uint32(len(es))})
			return nil
		})
		if err != nil {
			return corrupt(bucketDiffs, key, err)
		}
	}
	return putFolded(tx.Bucket(bucketAccounts), es)
}

// foldEntry is an account's value after a block, as its diff record
// holds it: rec is the address (alen bytes) followed by the 40-byte
// account; seq is the entry's place in the fold's height order. 32 bytes.
type foldEntry struct {
	rec  []byte
	seq  uint32
	alen uint16
}

func (e *foldEntry) addr() []byte { return e.rec[:e.alen] }
func (e *foldEntry) acc() []byte  { return e.rec[e.alen:] }

// appendFold appends the entries of the diff record v to es.
func appendFold(es []foldEntry, v []byte) ([]foldEntry, error) {
	err := scanDiff(v, func(a, acc []byte) error {
		if _, err := decodeAccount(acc); err != nil {
			return err
		}
		es = append(es, foldEntry{rec: a[:len(a)+accountLen], alen: uint16(len(a)), seq: uint32(len(es))})
		return nil
	})
	return es, err
}

// sortFold sorts es by address, then in height order.
func sortFold(es []foldEntry) {
	slices.SortFunc(es, func(a, b foldEntry) int {
		if c := bytes.Compare(a.addr(), b.addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

// putFolded writes the newest value of each address in es (in height
// order) into the base, in key order, so consecutive puts share pages;
// zero accounts are deleted.
func putFolded(accounts *bolt.Bucket, es []foldEntry) error {
	sortFold(es)
	var zero [accountLen]byte
	for i := range es {
		e := &es[i]
		if i+1 < len(es) && bytes.Equal(e.addr(), es[i+1].addr()) {
			continue // a later block set it again
		}
		var err error
		if bytes.Equal(e.acc(), zero[:]) {
			err = accounts.Delete(e.addr())
		} else {
			err = accounts.Put(e.addr(), e.acc())
		}
		if err != nil {
			return fmt.Errorf("store: account %s: %w", e.addr(), err)
		}
	}
	return nil
}

// applyDiffs replays the diffs of (base, head] onto st's accounts.
func applyDiffs(tx *bolt.Tx, st *chain.State, base, head uint64, bad func(bucket, k []byte, err error) error) error {
	diffs := tx.Bucket(bucketDiffs)
	if diffs == nil {
		// A format-3 store opened read-only: no diffs, base at the head.
		if base != head {
			return bad(bucketMeta, []byte(keyBase), fmt.Errorf("base %d below the head %d and no diffs bucket", base, head))
		}
		return nil
	}
	c := diffs.Cursor()
	want := base + 1
	for k, v := c.Seek(heightKey(base + 1)); k != nil; k, v = c.Next() {
		h, err := decodeHeightKey(k)
		if err != nil {
			if err := bad(bucketDiffs, k, err); err != nil {
				return err
			}
			continue
		}
		if h != want {
			if err := bad(bucketDiffs, k, fmt.Errorf("diff at height %d, want %d (base %d, head %d)", h, want, base, head)); err != nil {
				return err
			}
		}
		want = h + 1
		if err := decodeDiff(v, func(a chain.Address, acc chain.Account) { st.SetAccount(a, acc) }); err != nil {
			if err := bad(bucketDiffs, k, err); err != nil {
				return err
			}
		}
	}
	if want != head+1 {
		return bad(bucketDiffs, heightKey(want), fmt.Errorf("diffs end at height %d, the head is %d (base %d)", want-1, head, base))
	}
	return nil
}

// pendingAccounts is every address a diff above the base names, with its
// newest value there.
func pendingAccounts(tx *bolt.Tx, base uint64, fn func(chain.Address, chain.Account)) error {
	diffs := tx.Bucket(bucketDiffs)
	if diffs == nil {
		return nil // a format-3 store opened read-only
	}
	c := diffs.Cursor()
	for k, v := c.Seek(heightKey(base + 1)); k != nil; k, v = c.Next() {
		if err := decodeDiff(v, fn); err != nil {
			return corrupt(bucketDiffs, k, err)
		}
	}
	return nil
}

// accountsWithPrefix is the base's addresses that start with p merged
// with the pending diffs' (newer, so they win): up to max, in order.
func accountsWithPrefix(tx *bolt.Tx, p []byte, max int) ([]chain.Address, error) {
	head, err := readHead(tx)
	if err != nil || !head.ok {
		return nil, err
	}
	base, err := readBase(tx, head.height)
	if err != nil {
		return nil, err
	}
	over := make(map[chain.Address]bool) // address → non-zero after the head
	err = pendingAccounts(tx, base, func(a chain.Address, acc chain.Account) {
		if bytes.HasPrefix([]byte(a), p) {
			over[a] = acc != (chain.Account{})
		}
	})
	if err != nil {
		return nil, err
	}
	// The diffs can empty at most len(over) of the base's first ones.
	set := make(map[chain.Address]bool)
	c := tx.Bucket(bucketAccounts).Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p) && len(set) < max+len(over); k, _ = c.Next() {
		set[chain.Address(k)] = true
	}
	for a, live := range over {
		set[a] = live
	}
	out := make([]chain.Address, 0, len(set))
	for a, live := range set {
		if live {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), max)], nil
}
