package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// maxCheckErrors bounds the problems Verify reports from bbolt's check.
const maxCheckErrors = 20

// VerifyReport is what Verify found.
type VerifyReport struct {
	Height    uint64 // of the head
	Blocks    uint64 // main-chain blocks walked, genesis included
	Accounts  int    // accounts in the stored state
	Slashings int    // slashing records in the stored state
	Problems  []string
}

// OK reports whether Verify found nothing wrong.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Verify checks the whole database on demand (posd check): bbolt's own
// page consistency check, then the main chain from genesis to the head
// (every block decodes, hashes to its key, links to its parent; undo
// records and the transaction index agree), then replays every block on
// the genesis state and compares the result with the stored state: the
// accounts (unbonding included), the slashings and the finality record. It
// reads only; each problem is one line of the report. The error is for a
// database Verify could not read at all.
//
// Undo records are demanded only for the undoWindow newest heights: the
// chain manager prunes those a reorg can no longer reach (Prune), so their
// absence further down is by design. A record still present down there
// must decode all the same.
//
// bbolt's page check reads the file's free list without a lock, so Verify
// runs on a store no one writes to: one opened read-only (posd check), or
// in tests after the background fold and merge ended (Store.bg).
func (s *Store) Verify(undoWindow uint64) (*VerifyReport, error) {
	r := &VerifyReport{}
	// bbolt's check reads pages in a goroutine of its own, out of reach of
	// faultSafe: a file shorter than its meta page must stop it first.
	if err := CheckFile(s.path); err != nil {
		return r, err
	}
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	err := s.view(func(tx *bolt.Tx) error {
		n := 0
		for err := range tx.Check() {
			if n++; n <= maxCheckErrors {
				problem("bbolt: %v", err)
			}
		}
		if n > maxCheckErrors {
			problem("bbolt: %d more problems", n-maxCheckErrors)
		}
		if n > 0 {
			return nil // the pages are damaged: walking them would only repeat it
		}
		return verifyChain(tx, r, undoWindow, problem)
	})
	return r, err
}

func verifyChain(tx *bolt.Tx, r *VerifyReport, undoWindow uint64, problem func(string, ...any)) error {
	// A format-3 store opened read-only has no diffs bucket yet, and a
	// format-3 or 4 one keeps its blocks in blocks, not bodies, and has no
	// txseg.
	var format string
	if m := tx.Bucket(bucketMeta); m != nil {
		format = string(m.Get([]byte(keyFormat)))
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) != nil {
			continue
		}
		old := format == format3 || format == format4
		if format == format3 && bytes.Equal(name, bucketDiffs) || old && (bytes.Equal(name, bucketBodies) || bytes.Equal(name, bucketBlockHeight) || bytes.Equal(name, bucketTxSeg)) {
			continue
		}
		problem("bucket %s is missing", name)
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get([]byte(keyGenesisHash)) == nil {
		if k, _ := tx.Bucket(bucketMain).Cursor().First(); k != nil {
			problem("main chain present but no genesis")
		}
		return nil // a new, empty database
	}
	if have := string(meta.Get([]byte(keyFormat))); !readableFormat(have) {
		// Its records are of another layout: reading them would only
		// report each as damaged.
		if have == "" {
			have = "1"
		}
		problem("store format %s, this posd reads format %s: move that home away or start over (posd devnet --reset for a devnet)", have, currentFormat)
		return nil
	}
	js := meta.Get([]byte(keyGenesis))
	g, err := chain.ParseGenesis(js)
	if err != nil {
		problem("stored genesis: %v", err)
		return nil
	}
	if h := g.Hash(); !bytes.Equal(h[:], meta.Get([]byte(keyGenesisHash))) {
		problem("stored genesis hashes to %s, the stored hash is %x", h, meta.Get([]byte(keyGenesisHash)))
	}
	head, err := readHead(tx)
	if err != nil {
		problem("head: %v", err)
		return nil
	}
	r.Height = head.height
	state := g.State()
	var prev chain.Hash
	for h := uint64(0); h <= head.height; h++ {
		hash, err := hashAt(tx, h)
		if err != nil {
			problem("height %d: %v", h, err)
			return nil
		}
		b, err := getMainBlock(tx, hash)
		if err != nil {
			problem("height %d: %v", h, err)
			return nil
		}
		r.Blocks++
		if got := b.Hash(); got != hash {
			problem("height %d: block hashes to %s, indexed as %s", h, got, hash)
		}
		if b.Height != h {
			problem("height %d: block says height %d", h, b.Height)
		}
		if h == 0 {
			if hash != g.Block().Hash() {
				problem("block 0 is not the genesis block")
			}
			prev = hash
			continue
		}
		if b.PrevHash != prev {
			problem("height %d: prev_hash %s, parent is %s", h, b.PrevHash, prev)
		}
		prev = hash
		if _, err := getUndo(tx, h); err != nil {
			// A reorg reverts at most the undoWindow newest blocks: below
			// them a missing record was pruned, not lost.
			pruned := errors.Is(err, ErrNotFound) && head.height >= undoWindow && h <= head.height-undoWindow
			if !pruned {
				problem("height %d: undo record: %v", h, err)
			}
		}
		for i := range b.Transactions {
			id := b.Transactions[i].ID()
			v, _, _, err := txLoc(tx, id)
			if err != nil {
				problem("%v", err)
				return nil
			}
			at, idx, derr := decodeTxLoc(v)
			if v == nil || derr != nil || at != h || idx != i {
				problem("height %d: transaction %s is not indexed at (%d, %d)", h, id, h, i)
			}
		}
		if _, err := state.Apply(b, g); err != nil {
			problem("height %d: replaying the block: %v", h, err)
			return nil
		}
	}
	verifyBodies(tx, problem)
	verifyTxSegs(tx, problem)
	stored, err := readState(tx, problem)
	if err != nil {
		return err
	}
	r.Accounts = stored.Len()
	r.Slashings = len(stored.Slashings())
	if !stored.Equal(state) {
		diff := 0
		for _, e := range state.Accounts() {
			if stored.Account(e.Address) != e.Account {
				if diff++; diff <= 5 {
					problem("account %s: stored %+v, replaying the chain gives %+v", e.Address, stored.Account(e.Address), e.Account)
				}
			}
		}
		for _, e := range stored.Accounts() {
			if state.Account(e.Address) == (chain.Account{}) {
				if diff++; diff <= 5 {
					problem("account %s is stored but replaying the chain never makes it", e.Address)
				}
			}
		}
		if diff > 0 {
			problem("state: %d accounts differ from a replay of the chain", diff)
		}
		if !slices.Equal(stored.Slashings(), state.Slashings()) {
			problem("state: stored slashings %+v, replaying the chain gives %+v", head5(stored.Slashings()), head5(state.Slashings()))
		}
		a, _ := stored.Finality().MarshalBinary()
		b, _ := state.Finality().MarshalBinary()
		if !bytes.Equal(a, b) {
			problem("state: stored finality record %+v, replaying the chain gives %+v", *stored.Finality(), *state.Finality())
		}
	}
	return nil
}

// head5 is at most the first five records, for a one-line problem.
func head5(rs []chain.Slashing) []chain.Slashing { return rs[:min(len(rs), 5)] }

// IsDamaged reports whether err says the file is damaged (empty,
// truncated, corrupt or faulting), as opposed to in use or missing.
func IsDamaged(err error) bool {
	return errors.Is(err, ErrEmpty) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrFault)
}
