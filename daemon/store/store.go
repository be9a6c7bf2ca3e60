// Package store keeps the node's chain on disk: one bbolt file holding the
// blocks (main chain and side blocks), the main chain's height index, the
// account state after the head, an undo record per main-chain block, a
// transaction index and the genesis. That is its one job; it validates
// nothing and trusts its callers to pass blocks they have checked.
//
// # Crash safety
//
// Every change that moves the chain is exactly one bbolt write transaction:
// Commit writes the block, its main-chain entry, its undo record, its
// transaction index entries, the diff of the accounts it touched and the
// new head together (a background fold of diffs into the accounts is one
// transaction too, see diff.go), and Switch does the same for a whole reorg (revert k blocks and
// apply the new branch). bbolt commits copy-on-write: the new pages are
// written and fsynced first, and only then is the meta page that points at
// the new root written and fsynced (NoSync stays false). A crash before that
// last write leaves the previous meta page, hence the previous root, in
// force; a crash after it leaves the new one. So at any instant the file
// holds some committed head together with exactly the state after that head,
// its undo records and its index, never a mixture. The head is read from the
// file on open, never from anywhere else.
//
// Layout (buckets):
//
//	bodies    height (8 bytes big endian) ‖ block hash → a nested bucket
//	          whose one key "b" holds chain.EncodeBlock, for every stored
//	          block, main chain or side (bodies.go)
//	blockheight block hash → height (8): where its body is in bodies
//	main      height (8 bytes big endian) → block hash
//	accounts  address → balance, stake, nonce, unbonding, release height
//	          (40 bytes); zero accounts are absent. The base: the
//	          accounts after the height in meta "base" (diff.go)
//	diffs     height → the values after that main-chain block of the
//	          accounts it touched, for every height above the base
//	slashings offence (class, height, offender) → kind, included_in, burned
//	undo      height → undo record of the main-chain block at that height
//	txseg     segment (4 bytes big endian) ‖ transaction id → height (8),
//	          index in block (4): the transaction index of the main chain,
//	          in segments of at most txSegSize entries (txindex.go)
//	txs       transaction id → height (8), index in block (4): the index
//	          a format-4 store had, read and never grown
//	meta      "genesis" (JSON), "genesis_hash", "head" (block hash),
//	          "format", "finality" (the finality record after the head),
//	          "base" (height of the accounts bucket's state), "txseg"
//	          (the newest segment and its entries), and free-form keys
//	          written with PutMeta
//
// Up to format 4, bucket blocks held block hash → chain.EncodeBlock; Open
// moves it into bodies (moveBodies).
//
// The state after the head is the accounts with the diffs above the base
// applied, the slashings and the finality record; the release queue of unbonding stake is an index of
// the accounts that chain.State rebuilds as LoadState sets them.
//
//	side      block hash → height, for every stored block off the main chain
//	invalid   block hash → height (8), rule code: blocks found invalid
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/poslab/posd/chain"
)

// Errors of the store. Compare with errors.Is; returned errors wrap them
// with detail.
var (
	// ErrNotFound: no such block, height, transaction, undo record or meta
	// key; also returned for reads of a store that has not been initialized.
	ErrNotFound = errors.New("store: not found")
	// ErrNotHead: the blocks given to Commit or Switch do not extend the
	// chain where they were meant to. Nothing was written.
	ErrNotHead = errors.New("store: block does not extend the head")
	// ErrGenesisMismatch: the database belongs to another network.
	ErrGenesisMismatch = errors.New("store: genesis mismatch")
	// ErrOldFormat: the database was written by an older posd whose blocks
	// this one cannot read (the protocol changed the block format).
	ErrOldFormat = errors.New("store: written by an older posd")
	// ErrCorrupt: a stored record does not decode or the records disagree.
	ErrCorrupt = errors.New("store: corrupt database")
	// ErrInUse: another process (or another Store in this one) holds the file.
	ErrInUse = errors.New("store: database in use")
)

var (
	bucketMain      = []byte("main")
	bucketAccounts  = []byte("accounts")
	bucketSlashings = []byte("slashings")
	bucketUndo      = []byte("undo")
	bucketTxs       = []byte("txs")
	bucketMeta      = []byte("meta")

	allBuckets = [][]byte{bucketBodies, bucketBlockHeight, bucketMain, bucketAccounts, bucketSlashings, bucketUndo, bucketTxs, bucketTxSeg, bucketMeta, bucketSide, bucketInvalid, bucketDiffs}
)

// Meta keys the store owns; PutMeta refuses them.
const (
	keyGenesis     = "genesis"
	keyGenesisHash = "genesis_hash"
	keyHead        = "head"
	keyFinality    = "finality"
	// keyFormat holds the store format. Format 5 keeps block bodies under
	// their height (bodies.go) and writes the transaction index in
	// segments (txindex.go); a format-4 store holds bodies in bucket
	// blocks under their hash, and Open moves them (moveBodies, in steps a
	// crash may interrupt: the next Open goes on), keeping its index in
	// txs as it is. Format 4 writes each block's
	// account changes as a diff over a base (diff.go); a format-3 store
	// is format 4 with its base at its head and no diffs, so Open moves
	// it to 4 in place (an older posd then refuses it rather than read
	// its accounts bucket as the state after the head). Format 3 is protocol v3 (typed
	// state: unbonding in the accounts, slashings in a bucket of their
	// own, the finality record; undo records of version 2); format 2 is
	// protocol v2 (blocks carry a VRF seed, genesis v2 parameters); stores
	// of format 1 have no key. A store of another format is refused with
	// ErrOldFormat.
	keyFormat     = "format"
	currentFormat = "5"
	// format4 and format3 are the formats Open moves to currentFormat.
	format4 = "4"
	format3 = "3"
)

// readableFormat reports whether a store of format f can be read: the
// current one, or one Open upgrades (read-only, as it is).
func readableFormat(f string) bool { return f == currentFormat || f == format4 || f == format3 }

func reservedMeta(key string) bool {
	return key == keyGenesis || key == keyGenesisHash || key == keyHead || key == keyFormat || key == keyFinality || key == keyBase || key == keyTxSeg || key == keyFoldTo || key == keyTxSegs || key == keyTxMerge
}

// errNotInitialized is returned by reads and writes before Init.
var errNotInitialized = fmt.Errorf("%w: store is not initialized (no genesis)", ErrNotFound)

// testHookBeforeHead, when set (by tests only), runs inside Switch's write
// transaction after every bucket is written and before the head moves;
// an error aborts the transaction, as a crash at that instant would.
var testHookBeforeHead func() error

// lockTimeout is how long Open waits for the file lock.
const lockTimeout = time.Second

// Store is an open chain database. Its methods are safe for concurrent use:
// reads run in bbolt read transactions alongside the single writer.
type Store struct {
	db   *bolt.DB
	path string

	// wmu serializes the writers that move the head, so the cached head
	// follows commit order.
	wmu sync.Mutex

	mu   sync.RWMutex // guards head
	head headRef

	health writeHealth

	// Work no commit waits for (background.go): the fold of diffs into
	// the base (maybeCompact) and the merge of the transaction index
	// (maybeMergeTx).
	bg               background
	folding, merging bgJob

	recent recentBlocks // the newest blocks appended, for Blocks
}

// headRef is the cached head.
type headRef struct {
	height uint64
	hash   chain.Hash
	ok     bool
}

type inUseError struct{ path string }

func (e *inUseError) Error() string {
	return fmt.Sprintf("store: %s is in use by another process (is another posd running with this home?)", e.path)
}

func (e *inUseError) Is(target error) bool { return target == ErrInUse }

// Open opens or creates the database at path. If another process holds it,
// Open gives up after a second with an error matching ErrInUse. A file that
// is empty (ErrEmpty), shorter than its meta page says (ErrTruncated) or
// without a valid meta page (ErrCorrupt) is refused before bbolt maps it.
func Open(path string) (*Store, error) {
	if err := CheckFile(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	err := faultSafe(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &inUseError{path}
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	err = s.update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", name, err)
			}
		}
		head, err := readHead(tx)
		s.head = head
		if err != nil {
			return err
		}
		return upgradeFormat(tx, head)
	})
	if err == nil {
		err = s.moveBodies()
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	s.maybeMergeTx() // one a crash or a Close interrupted goes on
	return s, nil
}

// Close closes the database file, waiting for reads in progress and for
// a background fold of diffs.
func (s *Store) Close() error {
	s.bg.close()
	return s.db.Close()
}

// upgradeFormat moves a format-3 store to format 4: its base is its head.
// Open then moves a format-4 store to format 5 (moveBodies).
func upgradeFormat(tx *bolt.Tx, head headRef) error {
	meta := tx.Bucket(bucketMeta)
	if string(meta.Get([]byte(keyFormat))) != format3 || !head.ok {
		return nil
	}
	if err := meta.Put([]byte(keyBase), heightKey(head.height)); err != nil {
		return err
	}
	return meta.Put([]byte(keyFormat), []byte(format4))
}

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// HeadInfo returns the cached head's height and hash without touching the
// file; ok is false before Init.
func (s *Store) HeadInfo() (height uint64, hash chain.Hash, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head.height, s.head.hash, s.head.ok
}

func (s *Store) setHead(h headRef) {
	s.mu.Lock()
	s.head = h
	s.mu.Unlock()
}

// Init writes the genesis into an empty database: its JSON and hash, block 0,
// the genesis state, main[0] and the head. On a database already initialized
// it only checks that the stored genesis is g, else ErrGenesisMismatch.
func (s *Store) Init(g *chain.Genesis) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("store: init: %w", err)
	}
	want := g.Hash()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var head headRef
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if have := meta.Get([]byte(keyGenesisHash)); have != nil {
			if !bytes.Equal(have, want[:]) {
				return fmt.Errorf("%w: the database at %s holds genesis %x, the configured genesis is %s", ErrGenesisMismatch, s.path, have, want)
			}
			h, err := readHead(tx)
			if err == nil && !h.ok {
				err = corrupt(bucketMeta, []byte(keyHead), errors.New("genesis present but no head"))
			}
			head = h
			if err == nil {
				err = s.checkFormat(meta)
			}
			return err
		}
		if k, _ := tx.Bucket(bucketMain).Cursor().First(); k != nil {
			return corrupt(bucketMain, k, errors.New("main chain present but no genesis"))
		}
		js, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("store: encode genesis: %w", err)
		}
		if err := meta.Put([]byte(keyFormat), []byte(currentFormat)); err != nil {
			return err
		}
		b0 := g.Block()
		h0 := b0.Hash()
		if err := putBody(tx, 0, h0, chain.EncodeBlock(b0)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMain).Put(heightKey(0), bytes.Clone(h0[:])); err != nil {
			return err
		}
		st := g.State()
		accounts := tx.Bucket(bucketAccounts)
		for _, e := range st.Accounts() {
			if err := accounts.Put([]byte(e.Address), encodeAccount(e.Account)); err != nil {
				return err
			}
		}
		if err := putFinality(meta, st); err != nil {
			return err
		}
		for k, v := range map[string][]byte{keyGenesis: js, keyGenesisHash: bytes.Clone(want[:]), keyHead: bytes.Clone(h0[:]), keyBase: heightKey(0)} {
			if err := meta.Put([]byte(k), v); err != nil {
				return err
			}
		}
		head = headRef{height: 0, hash: h0, ok: true}
		return nil
	})
	if err != nil {
		return err
	}
	s.setHead(head)
	return nil
}

// checkFormat refuses a chain written in another store format: decoding
// its blocks would fail later, record by record, as "corrupt".
func (s *Store) checkFormat(meta *bolt.Bucket) error {
	have := string(meta.Get([]byte(keyFormat)))
	if readableFormat(have) {
		// A format-3 or 4 store opened read-only: the same state, its
		// base at its head (format 3), its blocks under their hash (3 and
		// 4); Open would move it to format 5.
		return nil
	}
	if have == "" {
		have = "1"
	}
	return fmt.Errorf("%w: %s holds a chain in store format %s and this posd reads format %s "+
		"(protocol v3 changed the state: unbonding, slashings, finality): move that home away or start over "+
		"(posd devnet --reset for a devnet)", ErrOldFormat, s.path, have, currentFormat)
}

// Initialized reports whether Init has written a genesis.
func (s *Store) Initialized() (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketMeta).Get([]byte(keyGenesisHash)) != nil
		return nil
	})
	return ok, err
}

// Genesis returns the stored genesis.
func (s *Store) Genesis() (*chain.Genesis, error) {
	var g *chain.Genesis
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		js, want := meta.Get([]byte(keyGenesis)), meta.Get([]byte(keyGenesisHash))
		if js == nil || want == nil {
			return errNotInitialized
		}
		if err := s.checkFormat(meta); err != nil {
			return err
		}
		var err error
		if g, err = chain.ParseGenesis(js); err != nil {
			return corrupt(bucketMeta, []byte(keyGenesis), err)
		}
		if h := g.Hash(); !bytes.Equal(h[:], want) {
			return corrupt(bucketMeta, []byte(keyGenesis), fmt.Errorf("genesis hashes to %s, stored hash is %x", h, want))
		}
		return nil
	})
	return g, err
}

// Head returns the head block of the main chain.
func (s *Store) Head() (*chain.Block, error) {
	var b *chain.Block
	err := s.view(func(tx *bolt.Tx) error {
		h, err := readHead(tx)
		if err != nil {
			return err
		}
		if !h.ok {
			return errNotInitialized
		}
		b, err = getMainBlock(tx, h.hash)
		return err
	})
	return b, err
}

// LoadState reads the state after the head: every account, every
// slashing and the finality record.
func (s *Store) LoadState() (*chain.State, error) {
	var st *chain.State
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		st, err = readState(tx, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// readState reads the stored state. problem, when not nil, is told of each
// record that does not decode and the read goes on (Verify); when nil, the
// first such record is the error.
func readState(tx *bolt.Tx, problem func(string, ...any)) (*chain.State, error) {
	st := chain.NewState()
	bad := func(bucket, k []byte, err error) error {
		if problem == nil {
			return corrupt(bucket, k, err)
		}
		problem("%s %x: %v", bucket, k, err)
		return nil
	}
	err := tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
		acc, err := decodeAccount(v)
		if err != nil {
			return bad(bucketAccounts, k, err)
		}
		st.SetAccount(chain.Address(k), acc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	head, err := readHead(tx)
	if err != nil {
		return nil, err
	}
	if head.ok {
		base, err := readBase(tx, head.height)
		if err == nil {
			err = applyDiffs(tx, st, base, head.height, bad)
		} else if problem != nil {
			problem("%v", err)
			err = nil
		}
		if err != nil {
			return nil, err
		}
	}
	err = tx.Bucket(bucketSlashings).ForEach(func(k, v []byte) error {
		r, err := decodeSlashing(k, v)
		if err != nil {
			return bad(bucketSlashings, k, err)
		}
		st.SetSlashing(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if v := tx.Bucket(bucketMeta).Get([]byte(keyFinality)); v != nil {
		f := new(chain.Finality)
		if len(v) > maxFinalityLen {
			err = fmt.Errorf("%w: finality record of %d bytes", errMalformed, len(v))
		} else {
			err = f.UnmarshalBinary(v)
		}
		if err != nil {
			if err := bad(bucketMeta, []byte(keyFinality), err); err != nil {
				return nil, err
			}
		} else {
			st.SetFinality(f)
		}
	}
	return st, nil
}

// putFinality writes st's finality record.
func putFinality(meta *bolt.Bucket, st *chain.State) error {
	enc, err := st.Finality().MarshalBinary()
	if err != nil {
		return fmt.Errorf("store: encode finality record: %w", err)
	}
	return meta.Put([]byte(keyFinality), enc)
}

// Commit appends b to the main chain: b must extend the head (else
// ErrNotHead). It writes b, main[height], undo, b's transaction index
// entries, the diff record of the accounts in undo.Touched() and the
// slashings in undo.Slashings with their values in st (the state after
// applying b, which must be exactly that: the diff records it; absent
// slashings are deleted), st's finality record and the head, in one
// transaction.
func (s *Store) Commit(b *chain.Block, undo *chain.Undo, st *chain.State) error {
	return s.Switch(0, []*chain.Block{b}, []*chain.Undo{undo}, st)
}

// prepared is a block to append, encoded before the write transaction so
// the writer holds the file for as short a time as possible.
type prepared struct {
	block *chain.Block
	hash  chain.Hash
	enc   []byte
	undo  []byte
	ids   []chain.Hash
	touch []chain.Address
	slash []chain.Slashing
	diff  []byte // the diff record (diff.go)
}

// Switch moves the head in one transaction: it removes the top revert
// main-chain entries (main[h], undo[h] and their transaction index entries;
// the block bytes stay in bodies, retrievable by hash), appends blocks with
// their undos as Commit does, writes every account touched by the reverted
// undo records and by the new undos with its value in st (the final state),
// and sets the head to the last block (or to the new top after a pure
// revert). The accounts go into diff records of the new blocks (their
// values after each block are found from st and the later blocks' undo
// records), the reverted blocks' diff records are deleted, and a revert
// below the base writes the touched accounts into the base instead
// (diff.go). If the new blocks do not chain onto the remaining main chain and
// onto each other, it returns ErrNotHead and writes nothing.
//
// The transaction index reads each transaction's cached id (computed when
// it was decoded or signed), so no transaction is hashed again here.
func (s *Store) Switch(revert int, blocks []*chain.Block, undos []*chain.Undo, st *chain.State) error {
	if revert < 0 {
		return fmt.Errorf("store: switch: negative revert %d", revert)
	}
	if len(blocks) != len(undos) {
		return fmt.Errorf("store: switch: %d blocks but %d undo records", len(blocks), len(undos))
	}
	if st == nil {
		return errors.New("store: switch: nil state")
	}
	if revert == 0 && len(blocks) == 0 {
		return nil
	}
	prep := make([]prepared, len(blocks))
	diffs, err := blockDiffs(undos, st)
	if err != nil {
		return err
	}
	for i, b := range blocks {
		u := undos[i]
		if b == nil || u == nil {
			return fmt.Errorf("store: switch: nil block or undo record at %d", i)
		}
		if u.Height != b.Height {
			return fmt.Errorf("store: switch: undo record of height %d for block at height %d", u.Height, b.Height)
		}
		enc, err := encodeUndo(u)
		if err != nil {
			return err
		}
		p := &prep[i]
		p.block, p.hash, p.enc, p.undo, p.touch, p.slash, p.diff = b, b.Hash(), chain.EncodeBlock(b), enc, u.Touched(), u.Slashings, diffs[i]
		p.ids = make([]chain.Hash, len(b.Transactions))
		for j := range b.Transactions {
			p.ids[j] = b.Transactions[j].ID()
		}
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	var head headRef
	var baseH uint64
	var sealed bool       // a segment of the transaction index filled up
	var wrote []*prepared // the new blocks whose bodies this wrote
	err = s.update(func(tx *bolt.Tx) error {
		cur, err := readHead(tx)
		if err != nil {
			return err
		}
		if !cur.ok {
			return errNotInitialized
		}
		if uint64(revert) > cur.height {
			return fmt.Errorf("%w: cannot revert %d blocks from height %d", ErrNotHead, revert, cur.height)
		}
		mainB, undoB := tx.Bucket(bucketMain), tx.Bucket(bucketUndo)
		sideB := tx.Bucket(bucketSide)

		// Continuity, before anything is written.
		base := headRef{height: cur.height - uint64(revert), hash: cur.hash, ok: true}
		if revert > 0 {
			if base.hash, err = hashAt(tx, base.height); err != nil {
				if errors.Is(err, ErrNotFound) {
					err = corrupt(bucketMain, heightKey(base.height), err)
				}
				return err
			}
		}
		top := base
		for i := range prep {
			b := prep[i].block
			if b.Height != top.height+1 || b.PrevHash != top.hash {
				return fmt.Errorf("%w: block %s at height %d on %s, the chain needs height %d on %s",
					ErrNotHead, prep[i].hash, b.Height, b.PrevHash, top.height+1, top.hash)
			}
			top = headRef{height: b.Height, hash: prep[i].hash, ok: true}
		}

		if baseH, err = readBase(tx, cur.height); err != nil {
			return err
		}
		foldTo, err := readFoldTo(tx, baseH)
		if err != nil {
			return err
		}
		diffsB := tx.Bucket(bucketDiffs)
		// A revert below the base, or below a fold under way (keyFoldTo):
		// the base takes the whole new state (diff.go), so it needs every
		// account any pending diff names.
		deep := base.height < baseH || (foldTo != 0 && base.height < foldTo)
		touched := make(map[chain.Address]struct{})
		if deep {
			err := pendingAccounts(tx, baseH, func(a chain.Address, _ chain.Account) { touched[a] = struct{}{} })
			if err != nil {
				return err
			}
		}
		// The slashings the reverted and new blocks added, by bucket key.
		slashed := make(map[string]chain.Slashing)
		// Revert the top blocks, newest first.
		for h := cur.height; h > base.height; h-- {
			key := heightKey(h)
			hv := mainB.Get(key)
			if len(hv) != len(chain.Hash{}) {
				return corrupt(bucketMain, key, fmt.Errorf("hash of %d bytes", len(hv)))
			}
			b, err := getMainBlock(tx, chain.Hash(hv))
			if err != nil {
				return err
			}
			u, err := getUndo(tx, h)
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					err = corrupt(bucketUndo, key, err)
				}
				return err
			}
			for _, a := range u.Touched() {
				touched[a] = struct{}{}
			}
			for _, r := range u.Slashings {
				slashed[string(slashingKey(r))] = r
			}
			for i := range b.Transactions {
				// An entry at another height is not ours to remove.
				if err := deleteTxAt(tx, b.Transactions[i].ID(), h); err != nil {
					return err
				}
			}
			if err := mainB.Delete(key); err != nil {
				return err
			}
			if err := undoB.Delete(key); err != nil {
				return err
			}
			if err := diffsB.Delete(key); err != nil {
				return err
			}
			// A reverted block stays, as a side block.
			if err := sideB.Put(bytes.Clone(hv), heightKey(h)); err != nil {
				return err
			}
		}
		// Append the new blocks.
		for i := range prep {
			p := &prep[i]
			if err := sideB.Delete(p.hash[:]); err != nil {
				return err
			}
			if !hasBlock(tx, p.hash) {
				if err := putBody(tx, p.block.Height, p.hash, p.enc); err != nil {
					return err
				}
				wrote = append(wrote, p)
			}
			key := heightKey(p.block.Height)
			if err := mainB.Put(key, bytes.Clone(p.hash[:])); err != nil {
				return err
			}
			if err := undoB.Put(key, p.undo); err != nil {
				return err
			}
			if deep {
				for _, a := range p.touch {
					touched[a] = struct{}{}
				}
			} else if err := diffsB.Put(key, p.diff); err != nil {
				return err
			}
			for _, r := range p.slash {
				slashed[string(slashingKey(r))] = r
			}
		}
		if sealed, err = putTxIndex(tx, prep); err != nil {
			return err
		}
		if deep {
			// The touched accounts, with their final values, into the
			// base, which then holds the state after the new top.
			vals := make(map[chain.Address]chain.Account, len(touched))
			for a := range touched {
				vals[a] = st.Account(a)
			}
			if err := putAccounts(tx, vals); err != nil {
				return err
			}
			c := diffsB.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.First() {
				if err := diffsB.Delete(k); err != nil {
					return err
				}
			}
			baseH = top.height
			if err := tx.Bucket(bucketMeta).Put([]byte(keyBase), heightKey(baseH)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketMeta).Delete([]byte(keyFoldTo)); err != nil {
				return err
			}
		}
		// The touched slashings: written if the final state holds them,
		// deleted if not (a reverted block's).
		keys := make([]string, 0, len(slashed))
		for k := range slashed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		slashB := tx.Bucket(bucketSlashings)
		for _, k := range keys {
			r := slashed[k]
			if cur, ok := st.SlashingOf(r.Kind, r.Forger, r.Height); ok {
				err = slashB.Put([]byte(k), appendSlashingValue(nil, cur))
			} else {
				err = slashB.Delete([]byte(k))
			}
			if err != nil {
				return fmt.Errorf("store: slashing of %s at %d: %w", r.Forger, r.Height, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := putFinality(meta, st); err != nil {
			return err
		}
		if testHookBeforeHead != nil {
			if err := testHookBeforeHead(); err != nil {
				return err
			}
		}
		if err := meta.Put([]byte(keyHead), bytes.Clone(top.hash[:])); err != nil {
			return err
		}
		head = top
		return nil
	})
	if err != nil {
		return err
	}
	s.setHead(head)
	for _, p := range wrote {
		s.recent.add(p.hash, p.block, len(p.enc))
	}
	s.maybeCompact(head.height, baseH)
	if sealed {
		s.maybeMergeTx()
	}
	trimMapping(s.db)
	return nil
}

// PutBlock stores a block by hash only, off the main chain (a fork
// candidate). Storing a block twice is harmless.
func (s *Store) PutBlock(b *chain.Block) error {
	h := b.Hash()
	enc := chain.EncodeBlock(b)
	return s.update(func(tx *bolt.Tx) error {
		if hasBlock(tx, h) {
			return nil
		}
		if err := tx.Bucket(bucketSide).Put(bytes.Clone(h[:]), heightKey(b.Height)); err != nil {
			return err
		}
		return putBody(tx, b.Height, h, enc)
	})
}

// HasBlock reports whether a block with hash h is stored (main chain or side).
func (s *Store) HasBlock(h chain.Hash) (bool, error) {
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		ok = hasBlock(tx, h)
		return nil
	})
	return ok, err
}

// BlockByHash returns any stored block, main chain or side.
func (s *Store) BlockByHash(h chain.Hash) (*chain.Block, error) {
	var b *chain.Block
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		b, err = getBlock(tx, h)
		return err
	})
	return b, err
}

// BlockByHeight returns the main-chain block at height h.
func (s *Store) BlockByHeight(h uint64) (*chain.Block, error) {
	var b *chain.Block
	err := s.view(func(tx *bolt.Tx) error {
		hash, err := hashAt(tx, h)
		if err != nil {
			return err
		}
		b, err = getMainBlock(tx, hash)
		return err
	})
	return b, err
}

// HashAt returns the hash of the main-chain block at height h.
func (s *Store) HashAt(h uint64) (chain.Hash, error) {
	var hash chain.Hash
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		hash, err = hashAt(tx, h)
		return err
	})
	return hash, err
}

// Blocks returns up to limit main-chain blocks in ascending height from
// from; fewer when the head comes first, none when from is above the head.
//
// The newest blocks come from memory (recentBlocks), shared with every
// reader of them: a caller must not change a block it gets.
func (s *Store) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	return mainRange(s, from, limit, func(tx *bolt.Tx, h chain.Hash) (*chain.Block, error) {
		if b := s.recent.get(h); b != nil {
			return b, nil
		}
		return getMainBlock(tx, h)
	})
}

// Headers is Blocks for the headers alone: each stored block's header is
// decoded and its transactions are neither read nor decoded, so a reader
// of heights, hashes and links (the chain manager's block tree at start)
// pays for the headers only, in time, in memory and in pages of the file.
func (s *Store) Headers(from uint64, limit int) ([]*chain.Header, error) {
	return mainRange(s, from, limit, getMainHeader)
}

// mainRange reads up to limit main-chain blocks from height from with get.
func mainRange[T any](s *Store, from uint64, limit int, get func(*bolt.Tx, chain.Hash) (T, error)) ([]T, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []T
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMain).Cursor()
		want := from
		for k, v := c.Seek(heightKey(from)); k != nil && len(out) < limit; k, v = c.Next() {
			h, err := decodeHeightKey(k)
			if err != nil {
				return corrupt(bucketMain, k, err)
			}
			if h != want {
				return corrupt(bucketMain, k, fmt.Errorf("main chain skips from height %d to %d", want, h))
			}
			if len(v) != len(chain.Hash{}) {
				return corrupt(bucketMain, k, fmt.Errorf("hash of %d bytes", len(v)))
			}
			b, err := get(tx, chain.Hash(v))
			if err != nil {
				return err
			}
			out = append(out, b)
			want++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Undo returns the undo record of the main-chain block at height h (there
// is none for genesis).
func (s *Store) Undo(h uint64) (*chain.Undo, error) {
	var u *chain.Undo
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, err = getUndo(tx, h)
		return err
	})
	return u, err
}

// TxLocation returns the main-chain height and the index within its block of
// the transaction with the given id.
func (s *Store) TxLocation(id chain.Hash) (height uint64, index int, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v, bucket, key, err := txLoc(tx, id)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("%w: transaction %s is not on the main chain", ErrNotFound, id)
		}
		var derr error
		if height, index, derr = decodeTxLoc(v); derr != nil {
			return corrupt(bucket, key, derr)
		}
		return nil
	})
	return height, index, err
}

// Meta returns the value stored under key in the meta bucket (a copy).
func (s *Store) Meta(key string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%w: meta key %q", ErrNotFound, key)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// PutMeta stores a free-form value in the meta bucket. The store's own keys
// ("genesis", "genesis_hash", "head") cannot be written this way.
func (s *Store) PutMeta(key string, v []byte) error {
	if key == "" {
		return errors.New("store: empty meta key")
	}
	if reservedMeta(key) {
		return fmt.Errorf("store: meta key %q belongs to the store", key)
	}
	v = bytes.Clone(v)
	if v == nil {
		v = []byte{}
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), v)
	})
}

// corrupt wraps ErrCorrupt with where the bad record is.
func corrupt(bucket, key []byte, err error) error {
	return fmt.Errorf("%w: bucket %s key %x: %v", ErrCorrupt, bucket, key, err)
}

// readHead reads the head from meta and checks it against the top of main.
func readHead(tx *bolt.Tx) (headRef, error) {
	v := tx.Bucket(bucketMeta).Get([]byte(keyHead))
	if v == nil {
		return headRef{}, nil
	}
	if len(v) != len(chain.Hash{}) {
		return headRef{}, corrupt(bucketMeta, []byte(keyHead), fmt.Errorf("hash of %d bytes", len(v)))
	}
	k, mv := tx.Bucket(bucketMain).Cursor().Last()
	if k == nil {
		return headRef{}, corrupt(bucketMeta, []byte(keyHead), errors.New("head set but the main chain is empty"))
	}
	h, err := decodeHeightKey(k)
	if err != nil {
		return headRef{}, corrupt(bucketMain, k, err)
	}
	if !bytes.Equal(mv, v) {
		return headRef{}, corrupt(bucketMeta, []byte(keyHead), fmt.Errorf("head %x is not the top of the main chain (%x at %d)", v, mv, h))
	}
	return headRef{height: h, hash: chain.Hash(v), ok: true}, nil
}

func hashAt(tx *bolt.Tx, h uint64) (chain.Hash, error) {
	key := heightKey(h)
	v := tx.Bucket(bucketMain).Get(key)
	if v == nil {
		return chain.Hash{}, fmt.Errorf("%w: no main-chain block at height %d", ErrNotFound, h)
	}
	if len(v) != len(chain.Hash{}) {
		return chain.Hash{}, corrupt(bucketMain, key, fmt.Errorf("hash of %d bytes", len(v)))
	}
	return chain.Hash(v), nil
}

func getBlock(tx *bolt.Tx, h chain.Hash) (*chain.Block, error) {
	v, bucket, key, err := blockBody(tx, h)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: block %s", ErrNotFound, h)
	}
	b, err := chain.DecodeBlock(v)
	if err != nil {
		return nil, corrupt(bucket, key, err)
	}
	return b, nil
}

// getMainHeader is getMainBlock for the header alone (chain.DecodeHeader).
func getMainHeader(tx *bolt.Tx, h chain.Hash) (*chain.Header, error) {
	v, bucket, key, err := blockBody(tx, h)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, corrupt(bucketBlockHeight, h[:], errors.New("main-chain block missing"))
	}
	hdr, err := chain.DecodeHeader(v)
	if err != nil {
		return nil, corrupt(bucket, key, err)
	}
	return hdr, nil
}

// getMainBlock is getBlock for a hash the main chain names: absence there is
// corruption, not a miss.
func getMainBlock(tx *bolt.Tx, h chain.Hash) (*chain.Block, error) {
	b, err := getBlock(tx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, corrupt(bucketBlockHeight, h[:], errors.New("main-chain block missing"))
	}
	return b, err
}

func getUndo(tx *bolt.Tx, h uint64) (*chain.Undo, error) {
	key := heightKey(h)
	v := tx.Bucket(bucketUndo).Get(key)
	if v == nil {
		return nil, fmt.Errorf("%w: no undo record at height %d", ErrNotFound, h)
	}
	u, err := decodeUndo(v)
	if err != nil {
		return nil, corrupt(bucketUndo, key, err)
	}
	if u.Height != h {
		return nil, corrupt(bucketUndo, key, fmt.Errorf("undo record of height %d", u.Height))
	}
	return u, nil
}
