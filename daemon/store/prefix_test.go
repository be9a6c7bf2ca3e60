package store

import (
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

func TestHashesWithPrefix(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hashes := []chain.Hash{{0x93, 0x00, 0x37}, {0x93, 0x00, 0x38}, {0x93, 0x10}, {0x94}, {0xa0}}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTxs)
		if err != nil {
			return err
		}
		for _, h := range hashes {
			if err := b.Put(h[:], []byte{1}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix string
		max    int
		want   []chain.Hash
	}{
		{"930037", 10, hashes[:1]},
		{"93003", 10, hashes[:2]},
		{"9300", 10, hashes[:2]},
		{"930", 10, hashes[:2]},
		{"931", 10, hashes[2:3]},
		{"93", 10, hashes[:3]},
		{"93", 2, hashes[:2]},
		{"9", 10, hashes[:4]},
		{"b", 10, nil},
		{"930039", 10, nil},
	} {
		got, err := s.TxsWithPrefix(tc.prefix, tc.max)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("TxsWithPrefix(%q, %d) = %x, %v; want %x", tc.prefix, tc.max, got, err, tc.want)
		}
	}
	if _, err := s.TxsWithPrefix("9z", 10); err == nil {
		t.Error("a non-hex prefix was accepted")
	}
}
