package store

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// BlocksWithPrefix returns up to max hashes of stored blocks (main chain or
// side) whose hex starts with prefix (lower-case hex, any length), in
// order: short hashes typed back, as git resolves abbreviated ids.
func (s *Store) BlocksWithPrefix(prefix string, max int) ([]chain.Hash, error) {
	out, err := s.hashesWithPrefix(bucketBlockHeight, prefix, max)
	if err != nil {
		return nil, err
	}
	// A format-4 store opened read-only keeps its blocks under their hash.
	old, err := s.hashesWithPrefix(bucketBlocks, prefix, max)
	if err != nil || len(old) == 0 {
		return out, err
	}
	out = append(out, old...)
	slices.SortFunc(out, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
	out = slices.Compact(out)
	return out[:min(len(out), max)], nil
}

// TxsWithPrefix is BlocksWithPrefix for main-chain transaction ids.
func (s *Store) TxsWithPrefix(prefix string, max int) ([]chain.Hash, error) {
	return s.hashesWithPrefix(bucketTxs, prefix, max)
}

// AccountsWithPrefix returns up to max addresses with a non-zero account
// that start with prefix.
func (s *Store) AccountsWithPrefix(prefix string, max int) ([]chain.Address, error) {
	var out []chain.Address
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = accountsWithPrefix(tx, []byte(prefix), max)
		return err
	})
	return out, err
}

// hashesWithPrefix seeks the bytes of prefix's even part in a bucket keyed
// by 32-byte hashes and checks the odd nibble, if any, on each key.
func (s *Store) hashesWithPrefix(bucket []byte, prefix string, max int) ([]chain.Hash, error) {
	even, err := hex.DecodeString(prefix[:len(prefix)&^1])
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", prefix, err)
	}
	var nibble byte
	odd := len(prefix)%2 == 1
	if odd {
		v, err := hex.DecodeString("0" + prefix[len(prefix)-1:])
		if err != nil {
			return nil, fmt.Errorf("prefix %q: %w", prefix, err)
		}
		nibble = v[0]
	}
	var out []chain.Hash
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		start := even
		if odd {
			start = append(bytes.Clone(even), nibble<<4)
		}
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, even) && len(out) < max; k, _ = c.Next() {
			if len(k) != len(chain.Hash{}) {
				continue
			}
			if odd && k[len(even)]>>4 != nibble {
				break // keys are sorted: past the nibble
			}
			out = append(out, chain.Hash(k))
		}
		return nil
	})
	return out, err
}
