package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/poslab/posd/chain"
)

// Block bodies by height (store format 5): why blocks are not kept under
// their hash.
//
// A block's encoding weighs hundreds of KB to MB. bbolt keeps a value inline
// in its leaf, and a leaf holds at least two keys (a node of four keys or
// fewer is never split): up to format 4 the blocks bucket, keyed by block
// hash, held its blocks two to four to a leaf, so storing a block rewrote
// a leaf that held earlier blocks: their bytes read through the mmap (they
// then stay resident in the process), copied into a new page buffer and
// written again. A sync of a 468 MB chain read nearly the whole file that
// way. Keys that follow the height alone do not change that (the last leaf
// still holds the previous blocks), so each body is the one value of a
// bucket of its own, nested in bodies under height ‖ hash: the leaves of
// bodies hold only the nested buckets' 16-byte headers (or a small
// block's whole bucket, inline), and storing a block writes its own page
// run once plus the last leaf of bodies, an append. The height first
// keeps the keys in chain order; the hash after it keeps side blocks at
// the same height apart. blockheight maps a hash to that height, for
// lookups by hash (BlockByHash, HasBlock, prefix search).
var (
	bucketBodies      = []byte("bodies")
	bucketBlockHeight = []byte("blockheight")
	// bucketBlocks is the format-4 layout (block hash → encoding): Open
	// moves it into bodies and removes it (moveBodies); readers still
	// look there on a store opened read-only.
	bucketBlocks = []byte("blocks")
)

// bodyValue is the key of the one value of a block's nested bucket.
var bodyValue = []byte("b")

// bodyKeyLen is the length of a key of bodies: height (8) ‖ hash (32).
const bodyKeyLen = 8 + len(chain.Hash{})

// bodyKey is the key of bodies under which the block hash at height is.
func bodyKey(height uint64, h chain.Hash) []byte {
	k := make([]byte, 0, bodyKeyLen)
	k = binary.BigEndian.AppendUint64(k, height)
	return append(k, h[:]...)
}

// decodeBodyKey splits a key of bodies.
func decodeBodyKey(k []byte) (uint64, chain.Hash, error) {
	if len(k) != bodyKeyLen {
		return 0, chain.Hash{}, fmt.Errorf("%w: body key of %d bytes, want %d", errMalformed, len(k), bodyKeyLen)
	}
	return binary.BigEndian.Uint64(k), chain.Hash(k[8:]), nil
}

// blockBody returns the stored encoding of block h (nil when there is none)
// and where it lies, for an error naming the record. The bytes are bbolt's:
// valid until the transaction ends.
func blockBody(tx *bolt.Tx, h chain.Hash) (v, bucket, key []byte, err error) {
	if idx := tx.Bucket(bucketBlockHeight); idx != nil {
		if hv := idx.Get(h[:]); hv != nil {
			if len(hv) != 8 {
				return nil, bucketBlockHeight, h[:], corrupt(bucketBlockHeight, h[:], fmt.Errorf("height of %d bytes", len(hv)))
			}
			key := bodyKey(binary.BigEndian.Uint64(hv), h)
			var body *bolt.Bucket
			if bodies := tx.Bucket(bucketBodies); bodies != nil {
				body = bodies.Bucket(key)
			}
			if body == nil {
				return nil, bucketBodies, key, corrupt(bucketBodies, key, errors.New("the block is indexed but its body is missing"))
			}
			if v = body.Get(bodyValue); v == nil {
				return nil, bucketBodies, key, corrupt(bucketBodies, key, errors.New("the block's bucket holds no body"))
			}
			return v, bucketBodies, key, nil
		}
	}
	if old := tx.Bucket(bucketBlocks); old != nil {
		return old.Get(h[:]), bucketBlocks, h[:], nil
	}
	return nil, bucketBodies, h[:], nil
}

// hasBlock reports whether block h is stored (main chain or side).
func hasBlock(tx *bolt.Tx, h chain.Hash) bool {
	if idx := tx.Bucket(bucketBlockHeight); idx != nil && idx.Get(h[:]) != nil {
		return true
	}
	old := tx.Bucket(bucketBlocks)
	return old != nil && old.Get(h[:]) != nil
}

// putBody stores the encoding of block h at height (a block not stored
// yet: the caller checks with hasBlock). enc must stay unchanged until the
// transaction ends.
func putBody(tx *bolt.Tx, height uint64, h chain.Hash, enc []byte) error {
	key := bodyKey(height, h)
	body, err := tx.Bucket(bucketBodies).CreateBucketIfNotExists(key)
	if err != nil {
		return fmt.Errorf("store: body of block %s: %w", h, err)
	}
	if err := body.Put(bodyValue, enc); err != nil {
		return err
	}
	return tx.Bucket(bucketBlockHeight).Put(bytes.Clone(h[:]), heightKey(height))
}

// deleteBody removes the stored encoding of block h, wherever it lies; a
// block not stored is no error.
func deleteBody(tx *bolt.Tx, h chain.Hash) error {
	if old := tx.Bucket(bucketBlocks); old != nil {
		if err := old.Delete(h[:]); err != nil {
			return err
		}
	}
	idx := tx.Bucket(bucketBlockHeight)
	hv := idx.Get(h[:])
	if hv == nil {
		return nil
	}
	if len(hv) != 8 {
		return corrupt(bucketBlockHeight, h[:], fmt.Errorf("height of %d bytes", len(hv)))
	}
	key := bodyKey(binary.BigEndian.Uint64(hv), h)
	if err := tx.Bucket(bucketBodies).DeleteBucket(key); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("store: body of block %s: %w", h, err)
	}
	return idx.Delete(h[:])
}

// The format-4 → 5 move (moveBodies). Each step is one write transaction
// that copies some blocks into bodies; blocks itself is left alone until
// the last step deletes it whole and sets the format. Deleting each block
// as it moved would rewrite the leaf of blocks it shared with two or three
// other blocks (and read those through the mmap, and copy them to the
// heap): a move of a 468 MB store that did so peaked at 1.2 GB of
// anonymous memory. Until the end a moved block is in both places, with
// the same bytes; readers look in bodies first. A crash between steps
// leaves a format-4 store in which some blocks are copied already, and the
// next Open goes on, skipping those (the file holds both copies meanwhile:
// up to twice the bodies' size).
var (
	// moveStepBytes bounds the bytes of bodies one step copies: the step's
	// pages are held in memory until it commits.
	moveStepBytes = 32 << 20
	// moveStepBlocks bounds the blocks one step copies.
	moveStepBlocks = 100_000
	// testHookMoveStep, when set (by tests only), runs at the end of each
	// step's transaction; an error aborts it, as a crash would.
	testHookMoveStep func() error
)

// moveBodies moves a format-4 store to format 5: every block of the
// format-4 bucket blocks into bodies, main-chain blocks first in height
// order (their heights come from main), then the others in key order (side
// holds the heights of side blocks; a block in neither is decoded for its
// height). Then it deletes blocks and sets the format, in one transaction.
// A store of another format is left alone.
func (s *Store) moveBodies() error {
	var (
		from     uint64 // the next main-chain height to look at
		mainDone bool
		after    []byte // the last key of blocks looked at after the main chain
	)
	for {
		done := false
		err := s.update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if string(meta.Get([]byte(keyFormat))) != format4 {
				done = true
				return nil
			}
			old := tx.Bucket(bucketBlocks)
			n, size := 0, 0
			full := func() bool { return n >= moveStepBlocks || size >= moveStepBytes }
			copyBody := func(height uint64, h chain.Hash, v []byte) error {
				if hasBlockIn(tx, h) {
					return nil // copied by an earlier step
				}
				// v lies in the mmap; bbolt copies it before a remap, and
				// blocks is not written until its pages are freed whole.
				n, size = n+1, size+len(v)
				return putBody(tx, height, h, v)
			}
			if old != nil && !mainDone {
				c := tx.Bucket(bucketMain).Cursor()
				k, hv := c.Seek(heightKey(from))
				for ; k != nil && !full(); k, hv = c.Next() {
					height, err := decodeHeightKey(k)
					if err != nil {
						return corrupt(bucketMain, k, err)
					}
					from = height + 1
					if len(hv) != len(chain.Hash{}) {
						continue // readers name it
					}
					if v := old.Get(hv); v != nil {
						if err := copyBody(height, chain.Hash(hv), v); err != nil {
							return err
						}
					}
				}
				mainDone = k == nil
			}
			if old != nil && mainDone {
				side := tx.Bucket(bucketSide)
				oc := old.Cursor()
				k, v := oc.First()
				if after != nil {
					if k, v = oc.Seek(after); k != nil && bytes.Equal(k, after) {
						k, v = oc.Next()
					}
				}
				for ; k != nil && !full(); k, v = oc.Next() {
					after = bytes.Clone(k)
					if len(k) != len(chain.Hash{}) {
						return corrupt(bucketBlocks, k, fmt.Errorf("key of %d bytes", len(k)))
					}
					h := chain.Hash(k)
					if hasBlockIn(tx, h) {
						continue
					}
					var height uint64
					if sv := side.Get(k); len(sv) == 8 {
						height = binary.BigEndian.Uint64(sv)
					} else {
						b, err := chain.DecodeBlock(v)
						if err != nil {
							return corrupt(bucketBlocks, k, fmt.Errorf("a block in no index that does not decode: %w", err))
						}
						height = b.Height
					}
					if err := copyBody(height, h, v); err != nil {
						return err
					}
				}
				if k == nil {
					if err := tx.DeleteBucket(bucketBlocks); err != nil {
						return err
					}
					old = nil
				}
			}
			if old == nil {
				done = true
				if err := meta.Put([]byte(keyFormat), []byte(currentFormat)); err != nil {
					return err
				}
			}
			if testHookMoveStep != nil {
				return testHookMoveStep()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: moving block bodies to store format %s: %w", currentFormat, err)
		}
		if done {
			return nil
		}
	}
}

// hasBlockIn reports whether block h has a body in bodies.
func hasBlockIn(tx *bolt.Tx, h chain.Hash) bool {
	return tx.Bucket(bucketBlockHeight).Get(h[:]) != nil
}

// verifyBodies checks that bodies and blockheight name the same blocks.
func verifyBodies(tx *bolt.Tx, problem func(string, ...any)) {
	bodies, idx := tx.Bucket(bucketBodies), tx.Bucket(bucketBlockHeight)
	if bodies == nil || idx == nil {
		return // a format-3 or 4 store opened read-only
	}
	n := 0
	c := bodies.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n++
		height, h, err := decodeBodyKey(k)
		if err != nil {
			problem("%s %x: %v", bucketBodies, k, err)
			continue
		}
		if v != nil || bodies.Bucket(k) == nil || bodies.Bucket(k).Get(bodyValue) == nil {
			problem("%s %x: no block body", bucketBodies, k)
		}
		switch hv := idx.Get(h[:]); {
		case hv == nil:
			problem("block %s: a body at height %d, not in %s", h, height, bucketBlockHeight)
		case len(hv) != 8 || binary.BigEndian.Uint64(hv) != height:
			problem("block %s: a body at height %d, %s says %x", h, height, bucketBlockHeight, hv)
		}
	}
	m := 0
	_ = idx.ForEach(func(_, _ []byte) error { m++; return nil })
	if m != n {
		problem("%s names %d blocks, %s holds %d", bucketBlockHeight, m, bucketBodies, n)
	}
}
