package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

func TestTxSegKey(t *testing.T) {
	id := chain.Hash{0xab, 0xcd}
	for _, c := range []struct {
		seg  uint32
		want string
	}{
		{0, "00000000abcd"},
		{1, "00000001abcd"},
		{1<<32 - 1, "ffffffffabcd"},
	} {
		k := txSegKey(c.seg, id)
		if len(k) != txSegKeyLen || hexOf(k[:6]) != c.want || !bytes.Equal(k[4:], id[:]) {
			t.Errorf("txSegKey(%d) = %x", c.seg, k)
		}
	}
	// Every id of segment s sorts before any of segment s+1: a commit
	// writes within the newest segment, at the end of the bucket.
	var ff chain.Hash
	for i := range ff {
		ff[i] = 0xff
	}
	if bytes.Compare(txSegKey(0, ff), txSegKey(1, chain.Hash{})) >= 0 {
		t.Error("segments do not sort by number first")
	}
}

// The index rolls over to a new segment every txSegSize entries; lookups,
// reverts and prefix search see every segment and the format-4 index.
func TestTxIndexSegments(t *testing.T) {
	old := txSegSize
	t.Cleanup(func() { txSegSize = old })
	txSegSize = 2
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, _ := buildChain(t, s, f, 9)
	var ids []chain.Hash
	for _, b := range blocks {
		for i := range b.Transactions {
			ids = append(ids, b.Transactions[i].ID())
		}
	}
	// Move two entries of block 1 into the format-4 index, as an upgraded
	// store holds them.
	legacy := blocks[1].Transactions[0].ID()
	err := s.db.Update(func(tx *bolt.Tx) error {
		v, bucket, key, err := txLoc(tx, legacy)
		if err != nil || !bytes.Equal(bucket, bucketTxSeg) {
			t.Fatalf("txLoc of %s: %s, %v", legacy, bucket, err)
		}
		if err := tx.Bucket(bucketTxs).Put(bytes.Clone(legacy[:]), bytes.Clone(v)); err != nil {
			return err
		}
		return tx.Bucket(bucketTxSeg).Delete(key)
	})
	if err != nil {
		t.Fatal(err)
	}
	segs := map[uint32]int{}
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTxSeg).ForEach(func(k, _ []byte) error {
			segs[binary.BigEndian.Uint32(k)]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for seg, n := range segs {
		if n > 2 {
			t.Errorf("segment %d holds %d entries, at most 2", seg, n)
		}
	}
	if len(segs) < len(ids)/2 {
		t.Fatalf("%d ids in %d segments", len(ids), len(segs))
	}
	for _, b := range blocks {
		for i := range b.Transactions {
			if h, idx, err := s.TxLocation(b.Transactions[i].ID()); err != nil || h != b.Height || idx != i {
				t.Fatalf("TxLocation of tx %d of block %d = %d, %d, %v", i, b.Height, h, idx, err)
			}
		}
	}
	for _, id := range ids {
		got, err := s.TxsWithPrefix(hexOf(id[:2]), 10)
		if err != nil || !slices.Contains(got, id) {
			t.Fatalf("TxsWithPrefix(%x) = %x, %v", id[:2], got, err)
		}
	}
	if got, err := s.TxsWithPrefix("", 100); err != nil || len(got) != len(ids) || !slices.IsSortedFunc(got, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) }) {
		t.Fatalf("TxsWithPrefix(\"\") = %d ids, %v; want %d, sorted", len(got), err, len(ids))
	}
	mustVerify(t, s)

	// Revert down to block 0: every entry goes, in whichever segment
	// or index it lay.
	if err := s.Switch(len(blocks)-1, nil, nil, f.g.State()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, _, err := s.TxLocation(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("TxLocation of reverted %s: %v", id, err)
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketTxSeg).Cursor().First(); k != nil {
			t.Errorf("txseg still holds %x", k)
		}
		if k, _ := tx.Bucket(bucketTxs).Cursor().First(); k != nil {
			t.Errorf("txs still holds %x", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s)
}

// A damaged segment record in meta is named, not trusted.
func TestTxSegMetaCorrupt(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, _ := buildChain(t, s, f, 2)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(keyTxSeg), []byte{1}) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TxLocation(blocks[1].Transactions[0].ID()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("TxLocation with a bad txseg record: %v, want ErrCorrupt", err)
	}
	if err := s.PutMeta(keyTxSeg, []byte("x")); err == nil {
		t.Fatal("PutMeta wrote the txseg key")
	}
}
