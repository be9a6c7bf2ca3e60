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
	return s.withPrefix(prefix, func(tx *bolt.Tx, even []byte, odd bool, nibble byte) ([]chain.Hash, error) {
		var out []chain.Hash
		// A format-4 store opened read-only keeps its blocks under their
		// hash in blocks.
		for _, name := range [][]byte{bucketBlockHeight, bucketBlocks} {
			if b := tx.Bucket(name); b != nil {
				out = append(out, seekHashes(b, nil, even, odd, nibble, max)...)
			}
		}
		slices.SortFunc(out, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
		out = slices.Compact(out)
		return out[:min(len(out), max)], nil
	})
}

// TxsWithPrefix is BlocksWithPrefix for main-chain transaction ids.
func (s *Store) TxsWithPrefix(prefix string, max int) ([]chain.Hash, error) {
	return s.withPrefix(prefix, func(tx *bolt.Tx, even []byte, odd bool, nibble byte) ([]chain.Hash, error) {
		return txIDsWithPrefix(tx, even, odd, nibble, max)
	})
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

// withPrefix splits a hex prefix into its bytes (the even part) and the
// odd nibble, if any, and runs find in a read transaction.
func (s *Store) withPrefix(prefix string, find func(tx *bolt.Tx, even []byte, odd bool, nibble byte) ([]chain.Hash, error)) ([]chain.Hash, error) {
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
		var err error
		out, err = find(tx, even, odd, nibble)
		return err
	})
	return out, err
}
