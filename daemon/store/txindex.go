package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// The transaction index in segments (store format 5).
//
// Transaction ids are random. Up to format 4 the index was one B+tree
// keyed by id, so the ids of a commit landed all over it: a commit of k
// transactions dirtied min(k, P) of its P leaf pages, and once the index
// held about 50 entries per id a commit wrote, every commit read (through
// the mmap, where the pages then stay resident), decoded into bbolt's
// nodes and wrote again nearly the whole index. A sync of a million
// transfers spent half its allocations there (store.putTxIndex: 3.9 of
// 7.8 GB), and the index grows with the chain.
//
// So the index is cut into segments of at most txSegSize entries, each a
// range of bucket txseg under its number (4 bytes, big endian) ahead of
// the id: a commit writes into the newest segment only, so it dirties at
// most that segment's pages, whatever the chain's length. A full segment
// is never written again but by a reorg's deletions and a merge. The
// price is paid by lookups: an id is looked for in every segment, newest
// first, so full segments are merged in the background into fewer,
// larger ones (txmerge.go): a lookup seeks in a number of segments that
// grows with the logarithm of the chain's transactions.
//
// The format-4 index (bucket txs, keyed by id alone) is kept as it was
// and looked in after the segments: it is never grown again.
var bucketTxSeg = []byte("txseg")

// keyTxSeg (meta) holds the newest segment's number (4 bytes) and the
// entries written to it (8 bytes). Absent: segment 0, empty.
const keyTxSeg = "txseg"

// txSegSize is the most entries written to one segment (a variable so tests
// can move it). A commit's index writes dirty at most about txSegSize/50
// leaf pages of 4 KB: 0.7 MB at 2^13, 5 MB at 2^16, the size until merges
// (txmerge.go) bounded the segments a lookup seeks in. A commit of 1000
// transactions cost 11–14 ms at 2^16 and 5.5–7.2 ms at 2^13
// (BenchmarkCommit1000Transfers, 300 blocks); 2^12 saved 0.5 ms more,
// and would make entries climb a level more, each level 16 times sooner.
var txSegSize uint64 = 1 << 13

// txSegKeyLen is the length of a key of txseg: segment (4) ‖ id (32).
const txSegKeyLen = 4 + len(chain.Hash{})

func txSegKey(seg uint32, id chain.Hash) []byte {
	k := make([]byte, 0, txSegKeyLen)
	k = binary.BigEndian.AppendUint32(k, seg)
	return append(k, id[:]...)
}

// readTxSeg reads the newest segment and the entries written to it.
func readTxSeg(tx *bolt.Tx) (seg uint32, n uint64, err error) {
	v := tx.Bucket(bucketMeta).Get([]byte(keyTxSeg))
	if v == nil {
		return 0, 0, nil
	}
	if len(v) != 12 {
		return 0, 0, corrupt(bucketMeta, []byte(keyTxSeg), fmt.Errorf("%w: %d bytes, want 12", errMalformed, len(v)))
	}
	return binary.BigEndian.Uint32(v), binary.BigEndian.Uint64(v[4:]), nil
}

// txLoc finds the index entry of transaction id: its value (nil when there
// is none) and where it lies. The newest segment first: an id indexed
// twice (a reorg that failed half way cannot leave that, but a damaged
// file might) answers with its newest entry.
func txLoc(tx *bolt.Tx, id chain.Hash) (v, bucket, key []byte, err error) {
	if b := tx.Bucket(bucketTxSeg); b != nil {
		segs, err := readTxSegs(tx)
		if err != nil {
			return nil, nil, nil, err
		}
		key := txSegKey(0, id)
		for i := len(segs) - 1; i >= 0; i-- {
			binary.BigEndian.PutUint32(key, segs[i].num)
			if v := b.Get(key); v != nil {
				return v, bucketTxSeg, key, nil
			}
		}
	}
	if old := tx.Bucket(bucketTxs); old != nil {
		if v := old.Get(id[:]); v != nil {
			return v, bucketTxs, id[:], nil
		}
	}
	return nil, nil, nil, nil
}

// deleteTxAt removes the index entry of transaction id if it says height h
// (an entry at another height is another block's: not removed).
func deleteTxAt(tx *bolt.Tx, id chain.Hash, h uint64) error {
	v, bucket, key, err := txLoc(tx, id)
	if err != nil || v == nil {
		return err
	}
	if at, _, err := decodeTxLoc(v); err == nil && at != h {
		return nil
	}
	return tx.Bucket(bucket).Delete(key)
}

// putTxIndex writes the index entries of the new blocks into the newest
// segment, moving to a new one when it is full, in key order: sorted,
// consecutive Puts share pages, and bbolt splits fewer of them at commit.
// Keys and values come from two slabs (bbolt keeps them until the
// transaction ends). Equal ids keep their block order (the last is put
// last, as block order would). sealed reports that a segment filled up (a merge may
// be due, txmerge.go).
func putTxIndex(tx *bolt.Tx, prep []prepared) (sealed bool, err error) {
	n := 0
	for i := range prep {
		n += len(prep[i].ids)
	}
	if n == 0 {
		return false, nil
	}
	type entry struct {
		id  chain.Hash
		seq int // block order, for equal ids
		loc []byte
	}
	entries := make([]entry, 0, n)
	locs := make([]byte, 0, n*txLocLen)
	for i := range prep {
		for j, id := range prep[i].ids {
			start := len(locs)
			locs = appendTxLoc(locs, prep[i].block.Height, j)
			entries = append(entries, entry{id: id, seq: len(entries), loc: locs[start:len(locs):len(locs)]})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	seg, used, err := readTxSeg(tx)
	if err != nil {
		return false, err
	}
	segs, err := readTxSegs(tx)
	if err != nil {
		return false, err
	}
	segB := tx.Bucket(bucketTxSeg)
	keys := make([]byte, 0, n*txSegKeyLen)
	for i := range entries {
		if used >= txSegSize {
			seg, used = seg+1, 0
			segs = append(segs, txSegInfo{num: seg})
			sealed = true
		}
		start := len(keys)
		keys = binary.BigEndian.AppendUint32(keys, seg)
		keys = append(keys, entries[i].id[:]...)
		if err := segB.Put(keys[start:len(keys):len(keys)], entries[i].loc); err != nil {
			return false, err
		}
		used++
	}
	v := binary.BigEndian.AppendUint32(make([]byte, 0, 12), seg)
	v = binary.BigEndian.AppendUint64(v, used)
	if err := tx.Bucket(bucketMeta).Put([]byte(keyTxSeg), v); err != nil {
		return false, err
	}
	if sealed || tx.Bucket(bucketMeta).Get([]byte(keyTxSegs)) == nil {
		err = putTxSegs(tx, segs)
	}
	return sealed, err
}

// txIDsWithPrefix returns up to max main-chain transaction ids whose hex
// starts with prefix, in order, from every segment and the format-4 index.
func txIDsWithPrefix(tx *bolt.Tx, even []byte, odd bool, nibble byte, max int) ([]chain.Hash, error) {
	var out []chain.Hash
	if b := tx.Bucket(bucketTxSeg); b != nil {
		segs, err := readTxSegs(tx)
		if err != nil {
			return nil, err
		}
		for _, s := range segs {
			lead := binary.BigEndian.AppendUint32(nil, s.num)
			out = append(out, seekHashes(b, lead, even, odd, nibble, max)...)
		}
	}
	if old := tx.Bucket(bucketTxs); old != nil {
		out = append(out, seekHashes(old, nil, even, odd, nibble, max)...)
	}
	slices.SortFunc(out, func(a, b chain.Hash) int { return bytes.Compare(a[:], b[:]) })
	out = slices.Compact(out)
	return out[:min(len(out), max)], nil
}

// seekHashes returns up to max hashes h of keys lead ‖ h of b whose hex
// starts with the prefix given as its even part and, if odd, a last
// nibble.
func seekHashes(b *bolt.Bucket, lead, even []byte, odd bool, nibble byte, max int) []chain.Hash {
	var out []chain.Hash
	c := b.Cursor()
	start := append(slices.Clone(lead), even...)
	if odd {
		start = append(start, nibble<<4)
	}
	want := append(slices.Clone(lead), even...)
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, want) && len(out) < max; k, _ = c.Next() {
		if len(k) != len(lead)+len(chain.Hash{}) {
			continue
		}
		if odd && k[len(want)]>>4 != nibble {
			break // keys are sorted: past the nibble
		}
		out = append(out, chain.Hash(k[len(lead):]))
	}
	return out
}
