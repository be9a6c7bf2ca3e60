package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// Merging the transaction index's segments (txindex.go).
//
// A lookup seeks once in every segment that may hold its id, and a chain
// of n transactions fills n/txSegSize segments: with segments of 2^16,
// 16 seeks at a million transactions, 230 at fifteen million (a miss cost
// 40 µs at 16). So full segments are merged in the background, as a
// log-structured tree does: once txSegFanout sealed segments of one level
// exist, the oldest txSegFanout of them are merged into the oldest of
// them, which moves up a level. A level-L segment holds at most
// txSegSize·txSegFanout^L entries, and a lookup seeks in at most
// txSegFanout−1 segments a level, the newest segment and, while a merge
// runs, its sources: about 38 at fifteen million transactions, 60 at a
// billion (BenchmarkTxLookup: 2^20 entries in 1,024 segments of 2^10,
// 455–485 µs a lookup; merged into 34 segments, 27–28 µs).
//
// The price is writing each entry once more per level it climbs, in id
// order, about 0.9 µs a move on the 2-core machine (the benchmark's
// merges of 2^20 entries up two levels took 1.8 s): with segments of
// 2^13, below 2^17 transactions nothing is merged, up to 2^21 each entry
// moves once, up to 2^25 twice. Merging is also what lets segments be
// small, and a commit's index writes cheap (txSegSize). A fan-out of 8
// would seek in fewer segments for one more move per entry.
//
// A merge moves entries, in chunks of at most txMergeChunk, each chunk a
// write transaction of its own that puts them under the target's number
// and deletes them from their source: between chunks and after a crash
// every entry is in exactly one segment, so lookups, a reorg's deletions
// and Verify see the index whole at every instant, and the merge named in
// meta (keyTxMerge) is taken up where it stopped. Only its last chunk
// changes the list of segments (keyTxSegs). A target keeps its number, so
// a posd of format 5 before merges, which looks in every number up to the
// newest, finds every entry too (seeking in the emptied numbers).

// keyTxSegs (meta) lists the segments that may hold entries, by number
// ascending (newer entries lie in higher numbers): 5 bytes each, number
// (4, big endian) ‖ level (1). The newest segment, the one commits write
// into, is last. A store written before merges has none: every number up
// to the newest, at level 0; numbers above the last listed up to the
// newest (a posd from before merges ran on the store since) are level 0
// too.
const keyTxSegs = "txsegs"

// keyTxMerge (meta) names the merge under way: its target's number (4)
// and its sources' numbers (4 each), the target not among them.
const keyTxMerge = "txmerge"

// Merge parameters (variables so tests can move them).
var (
	// txSegFanout is how many sealed segments of one level are merged
	// into one of the next.
	txSegFanout = 16
	// maxTxSegLevel is the highest level: segments of it (2^13·16^4 =
	// 2^29 entries) are not merged again, so no merge writes more than
	// 2^29 entries and, past 2^33 transactions, the seeks of a lookup
	// grow again, by one per 2^29.
	maxTxSegLevel uint8 = 4
	// txMergeChunk bounds the entries one chunk of a merge moves: at about
	// 3 µs an entry (read, put, delete) a chunk holds the writer lock
	// about as long as a chunk of a fold.
	txMergeChunk = 1 << 15
)

// txSegInfo is one segment of the list.
type txSegInfo struct {
	num   uint32
	level uint8
}

// readTxSegs reads the list of segments.
func readTxSegs(tx *bolt.Tx) ([]txSegInfo, error) {
	newest, _, err := readTxSeg(tx)
	if err != nil {
		return nil, err
	}
	v := tx.Bucket(bucketMeta).Get([]byte(keyTxSegs))
	if v == nil {
		segs := make([]txSegInfo, newest+1)
		for i := range segs {
			segs[i].num = uint32(i)
		}
		return segs, nil
	}
	bad := func(why string, args ...any) error {
		return corrupt(bucketMeta, []byte(keyTxSegs), fmt.Errorf("%w: "+why, append([]any{errMalformed}, args...)...))
	}
	if len(v) == 0 || len(v)%5 != 0 {
		return nil, bad("%d bytes, want a multiple of 5", len(v))
	}
	segs := make([]txSegInfo, len(v)/5)
	for i := range segs {
		segs[i] = txSegInfo{num: binary.BigEndian.Uint32(v[5*i:]), level: v[5*i+4]}
		switch {
		case segs[i].level > maxTxSegLevel:
			return nil, bad("segment %d at level %d, the highest is %d", segs[i].num, segs[i].level, maxTxSegLevel)
		case i > 0 && segs[i].num <= segs[i-1].num:
			return nil, bad("segment %d listed after %d", segs[i].num, segs[i-1].num)
		}
	}
	switch last := segs[len(segs)-1].num; {
	case last > newest:
		return nil, bad("the last segment listed is %d, the newest is %d", last, newest)
	case last < newest:
		// A posd of format 5 from before merges filled segments and did
		// not list them: they are level 0, newer than every listed one.
		for n := last + 1; n <= newest; n++ {
			segs = append(segs, txSegInfo{num: n})
		}
	}
	return segs, nil
}

// putTxSegs writes the list of segments.
func putTxSegs(tx *bolt.Tx, segs []txSegInfo) error {
	v := make([]byte, 0, 5*len(segs))
	for _, s := range segs {
		v = binary.BigEndian.AppendUint32(v, s.num)
		v = append(v, s.level)
	}
	return tx.Bucket(bucketMeta).Put([]byte(keyTxSegs), v)
}

// txMerge is a merge of sources into target.
type txMerge struct {
	target  uint32
	sources []uint32
}

func (m *txMerge) encode() []byte {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, 4+4*len(m.sources)), m.target)
	for _, s := range m.sources {
		v = binary.BigEndian.AppendUint32(v, s)
	}
	return v
}

// planTxMerge returns the merge under way, else the next one due, else
// nil: the txSegFanout oldest sealed segments of the lowest level that has
// as many, below maxTxSegLevel. (The segments of a level are newer than
// those of the levels above it, so a merge's target is newer than every
// segment of the level it joins, and numbers keep their order by age.)
func planTxMerge(tx *bolt.Tx) (*txMerge, error) {
	if v := tx.Bucket(bucketMeta).Get([]byte(keyTxMerge)); v != nil {
		if len(v) < 8 || len(v)%4 != 0 {
			return nil, corrupt(bucketMeta, []byte(keyTxMerge), fmt.Errorf("%w: %d bytes", errMalformed, len(v)))
		}
		m := &txMerge{target: binary.BigEndian.Uint32(v)}
		for i := 4; i < len(v); i += 4 {
			m.sources = append(m.sources, binary.BigEndian.Uint32(v[i:]))
		}
		return m, nil
	}
	segs, err := readTxSegs(tx)
	if err != nil {
		return nil, err
	}
	sealed := segs[:len(segs)-1]
	for level := range maxTxSegLevel {
		var nums []uint32
		for _, s := range sealed {
			if s.level == level {
				nums = append(nums, s.num)
			}
		}
		if len(nums) >= txSegFanout {
			return &txMerge{target: nums[0], sources: nums[1:txSegFanout]}, nil
		}
	}
	return nil, nil
}

// mergeTxStep moves one chunk of the merge under way or due; the chunk
// that empties the sources also lists the target a level up and ends the
// merge. It does nothing when no merge is under way or due.
func mergeTxStep(tx *bolt.Tx) error {
	m, err := planTxMerge(tx)
	if err != nil || m == nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get([]byte(keyTxMerge)) == nil {
		if err := meta.Put([]byte(keyTxMerge), m.encode()); err != nil {
			return err
		}
	}
	b := tx.Bucket(bucketTxSeg)
	// The chunk: the lowest ids of all sources together, read first (a
	// cursor does not survive deletions under it) and copied out of the
	// pages they are about to leave.
	type move struct {
		src uint32
		id  chain.Hash
		loc []byte
	}
	cursors := make([]*bolt.Cursor, len(m.sources))
	heads := make([][]byte, len(m.sources)) // each source's lowest key not yet taken, nil when done
	vals := make([][]byte, len(m.sources))
	for i, src := range m.sources {
		cursors[i] = b.Cursor()
		k, v := cursors[i].Seek(binary.BigEndian.AppendUint32(nil, src))
		heads[i], vals[i] = segEntry(src, k, v)
	}
	var moves []move
	for len(moves) < txMergeChunk {
		lo := -1
		for i, k := range heads {
			if k != nil && (lo < 0 || bytes.Compare(k[4:], heads[lo][4:]) < 0) {
				lo = i
			}
		}
		if lo < 0 {
			break
		}
		moves = append(moves, move{src: m.sources[lo], id: chain.Hash(heads[lo][4:]), loc: bytes.Clone(vals[lo])})
		k, v := cursors[lo].Next()
		heads[lo], vals[lo] = segEntry(m.sources[lo], k, v)
	}
	// The chunk that takes the sources' last entries ends the merge.
	done := !slices.ContainsFunc(heads, func(k []byte) bool { return k != nil })
	b.FillPercent = 0.9 // the target is written in id order: fill its pages
	keys := make([]byte, 0, 2*len(moves)*txSegKeyLen)
	for _, mv := range moves {
		start := len(keys)
		keys = binary.BigEndian.AppendUint32(keys, m.target)
		keys = append(keys, mv.id[:]...)
		if err := b.Put(keys[start:len(keys):len(keys)], mv.loc); err != nil {
			return err
		}
	}
	for _, mv := range moves {
		start := len(keys)
		keys = binary.BigEndian.AppendUint32(keys, mv.src)
		keys = append(keys, mv.id[:]...)
		if err := b.Delete(keys[start:len(keys):len(keys)]); err != nil {
			return err
		}
	}
	if !done {
		return nil
	}
	segs, err := readTxSegs(tx)
	if err != nil {
		return err
	}
	var level uint8
	kept := segs[:0]
	for _, s := range segs {
		switch {
		case s.num == m.target:
			s.level++
			level = s.level
		case slices.Contains(m.sources, s.num):
			continue
		}
		kept = append(kept, s)
	}
	if level == 0 {
		return corrupt(bucketMeta, []byte(keyTxMerge), fmt.Errorf("%w: merge target %d is not listed", errMalformed, m.target))
	}
	if err := putTxSegs(tx, kept); err != nil {
		return err
	}
	return meta.Delete([]byte(keyTxMerge))
}

// segEntry is a cursor's key and value if the key is one of segment
// seg's, else nil, nil.
func segEntry(seg uint32, k, v []byte) ([]byte, []byte) {
	if len(k) != txSegKeyLen || binary.BigEndian.Uint32(k) != seg {
		return nil, nil
	}
	return k, v
}

// mergeTxIndex runs the merges due, a chunk per write transaction, until
// none is due or the store closes. Run by maybeMergeTx in the background.
func (s *Store) mergeTxIndex() error {
	for !s.bg.stopping() {
		var due bool
		err := s.view(func(tx *bolt.Tx) error {
			m, err := planTxMerge(tx)
			due = m != nil
			return err
		})
		if err != nil || !due {
			return err
		}
		if err := s.updateBackground(mergeTxStep); err != nil {
			return err
		}
		trimMapping(s.db)
	}
	return nil
}

// maybeMergeTx starts the background merge of the transaction index if
// none is running, else has the running one look again before it ends
// (the segment may have filled after its last look). Called after a
// commit that sealed a segment, and by Open (a merge a crash or a Close
// interrupted goes on).
func (s *Store) maybeMergeTx() {
	// A failure leaves every entry in one segment (each chunk is a
	// transaction); the next sealed segment tries again, and the write
	// health tells of a disk fault.
	s.bg.start(&s.merging, true, func() { _ = s.mergeTxIndex() })
}

// verifyTxSegs checks that only listed segments hold entries (a lookup
// seeks in no other), one seek a segment.
func verifyTxSegs(tx *bolt.Tx, problem func(string, ...any)) {
	b := tx.Bucket(bucketTxSeg)
	if b == nil {
		return
	}
	segs, err := readTxSegs(tx)
	if err != nil {
		problem("%v", err)
		return
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) < 4 {
			problem("transaction index: key %x of %d bytes", k, len(k))
			k, _ = c.Next()
			continue
		}
		num := binary.BigEndian.Uint32(k)
		if !slices.ContainsFunc(segs, func(s txSegInfo) bool { return s.num == num }) {
			problem("transaction index: segment %d holds entries and is not listed", num)
		}
		if num == 1<<32-1 {
			return
		}
		k, _ = c.Seek(binary.BigEndian.AppendUint32(nil, num+1))
	}
}
