package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// Buckets of the block index: what the node knows about blocks beyond the
// main chain. A stored side block was fully validated before it was stored
// (the chain manager's rule), so "side" needs no status; an invalid block is
// never stored, only remembered, so that it is refused at once when it comes
// again, also after a restart.
var (
	bucketSide    = []byte("side")
	bucketInvalid = []byte("invalid")
)

// BlockRef names a block off the main chain: a stored side block, or an
// invalid block with the rule it broke.
type BlockRef struct {
	Hash   chain.Hash
	Height uint64
	Code   chain.ErrorCode // invalid blocks only
}

// SideBlocks lists the stored blocks that are not on the main chain.
func (s *Store) SideBlocks() ([]BlockRef, error) {
	var out []BlockRef
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSide).ForEach(func(k, v []byte) error {
			if len(k) != len(chain.Hash{}) || len(v) != 8 {
				return corrupt(bucketSide, k, fmt.Errorf("entry of %d+%d bytes", len(k), len(v)))
			}
			out = append(out, BlockRef{Hash: chain.Hash(k), Height: binary.BigEndian.Uint64(v)})
			return nil
		})
	})
	return out, err
}

// PutInvalid remembers that the block hash at height broke the rule code.
func (s *Store) PutInvalid(ref BlockRef) error {
	v := binary.BigEndian.AppendUint64(nil, ref.Height)
	v = append(v, ref.Code...)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvalid).Put(bytes.Clone(ref.Hash[:]), v)
	})
}

// InvalidBlocks lists the blocks remembered as invalid.
func (s *Store) InvalidBlocks() ([]BlockRef, error) {
	var out []BlockRef
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInvalid).ForEach(func(k, v []byte) error {
			if len(k) != len(chain.Hash{}) || len(v) < 8 {
				return corrupt(bucketInvalid, k, fmt.Errorf("entry of %d+%d bytes", len(k), len(v)))
			}
			out = append(out, BlockRef{Hash: chain.Hash(k), Height: binary.BigEndian.Uint64(v), Code: chain.ErrorCode(v[8:])})
			return nil
		})
	})
	return out, err
}

// Prune forgets what lies below height: side blocks (their bytes too),
// invalid-block records and main-chain undo records. The chain manager
// calls it with the lowest height a reorg can still reach, so nothing it
// removes could ever be needed again. It returns the side blocks removed.
func (s *Store) Prune(below uint64) ([]BlockRef, error) {
	var removed []BlockRef
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed = removed[:0]
		side := tx.Bucket(bucketSide)
		var dead [][]byte
		err := side.ForEach(func(k, v []byte) error {
			if len(v) == 8 && binary.BigEndian.Uint64(v) < below {
				dead = append(dead, bytes.Clone(k))
				removed = append(removed, BlockRef{Hash: chain.Hash(k), Height: binary.BigEndian.Uint64(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := side.Delete(k); err != nil {
				return err
			}
			if err := deleteBody(tx, chain.Hash(k)); err != nil {
				return err
			}
		}
		inv := tx.Bucket(bucketInvalid)
		dead = dead[:0]
		err = inv.ForEach(func(k, v []byte) error {
			if len(v) >= 8 && binary.BigEndian.Uint64(v) < below {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := inv.Delete(k); err != nil {
				return err
			}
		}
		undo := tx.Bucket(bucketUndo)
		c := undo.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, heightKey(below)) < 0; k, _ = c.First() {
			if err := undo.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return removed, err
}
