package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// setMerge moves the index's segment size, the merge's fan-out and its
// chunk for one test.
func setMerge(t testing.TB, segSize uint64, fanout, chunk int) {
	oldSize, oldFanout, oldChunk := txSegSize, txSegFanout, txMergeChunk
	t.Cleanup(func() { txSegSize, txSegFanout, txMergeChunk = oldSize, oldFanout, oldChunk })
	txSegSize, txSegFanout, txMergeChunk = segSize, fanout, chunk
}

// segmentCounts is the number of entries in each segment of the index.
func segmentCounts(t testing.TB, s *Store) map[uint32]int {
	t.Helper()
	counts := map[uint32]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTxSeg).ForEach(func(k, _ []byte) error {
			counts[binary.BigEndian.Uint32(k)]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func listedSegments(t testing.TB, s *Store) []txSegInfo {
	t.Helper()
	var segs []txSegInfo
	if err := s.db.View(func(tx *bolt.Tx) (err error) { segs, err = readTxSegs(tx); return err }); err != nil {
		t.Fatal(err)
	}
	return segs
}

// checkIndex asserts that every transaction of blocks is found where it
// lies, by TxLocation and by prefix, and that only listed segments hold
// entries, each within its level's size.
func checkIndex(t *testing.T, s *Store, blocks []*chain.Block) {
	t.Helper()
	n := 0
	for _, b := range blocks {
		for i := range b.Transactions {
			n++
			id := b.Transactions[i].ID()
			if h, idx, err := s.TxLocation(id); err != nil || h != b.Height || idx != i {
				t.Fatalf("TxLocation of tx %d of block %d = %d, %d, %v", i, b.Height, h, idx, err)
			}
		}
	}
	if got, err := s.TxsWithPrefix("", n+1); err != nil || len(got) != n {
		t.Fatalf("TxsWithPrefix(\"\") = %d ids, %v; want %d", len(got), err, n)
	}
	segs := listedSegments(t, s)
	var merge *txMerge // the merge under way, if any
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if tx.Bucket(bucketMeta).Get([]byte(keyTxMerge)) != nil {
			merge, err = planTxMerge(tx)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for num, count := range segmentCounts(t, s) {
		entries += count
		i := slices.IndexFunc(segs, func(s txSegInfo) bool { return s.num == num })
		if i < 0 {
			t.Fatalf("segment %d holds %d entries and is not listed (%v)", num, count, segs)
		}
		limit := int(txSegSize)
		for range segs[i].level {
			limit *= txSegFanout
		}
		if merge != nil && merge.target == num {
			limit *= txSegFanout // a merge's target fills up to the next level
		}
		if count > limit {
			t.Errorf("segment %d at level %d holds %d entries, at most %d", num, segs[i].level, count, limit)
		}
	}
	if entries != n {
		t.Fatalf("the index holds %d entries for %d transactions", entries, n)
	}
}

// maxListed is how many segments a lookup may seek in: at most fanout−1
// sealed segments a level below the top, those of the top level, one
// merge's sources still listed, and the newest.
func maxListed(t *testing.T, segs []txSegInfo) int {
	t.Helper()
	top := 0
	for _, s := range segs {
		if s.level == maxTxSegLevel {
			top++
		}
	}
	return int(maxTxSegLevel)*(txSegFanout-1) + top + txSegFanout + 1
}

// Sealed segments are merged in the background: a lookup seeks in a
// number of segments that grows with the logarithm of the entries, and
// every entry stays found, by id and by prefix, where it lies.
func TestTxIndexMerges(t *testing.T) {
	setMerge(t, 2, 3, 2)
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, _ := buildChain(t, s, f, 90)
	s.bg.Wait() // the merges run in the background
	checkIndex(t, s, blocks)
	segs := listedSegments(t, s)
	newest, _, err := func() (seg uint32, n uint64, err error) {
		err = s.db.View(func(tx *bolt.Tx) (err error) { seg, n, err = readTxSeg(tx); return err })
		return
	}()
	if err != nil {
		t.Fatal(err)
	}
	// 150 entries in 75 segments of 2, merged 3 at a time: levels 0–3.
	if newest < 70 || len(segs) > maxListed(t, segs) || len(segs) > 10 {
		t.Fatalf("%d segments written, %d listed: %v", newest+1, len(segs), segs)
	}
	if !slices.ContainsFunc(segs, func(s txSegInfo) bool { return s.level >= 3 }) {
		t.Errorf("no segment reached level 3: %v", segs)
	}
	mustVerify(t, s)

	// A reorg down to block 0 finds and deletes every entry, merged or not.
	if err := s.Switch(len(blocks)-1, nil, nil, f.g.State()); err != nil {
		t.Fatal(err)
	}
	if counts := segmentCounts(t, s); len(counts) != 0 {
		t.Fatalf("after reverting every block the index holds %v", counts)
	}
	mustVerify(t, s)
}

// A merge moves entries a chunk per transaction: after every chunk and
// after a Close between chunks every entry is in exactly one listed
// segment and found where it lies, and the merge goes on when the store
// opens again.
func TestTxMergeInterrupted(t *testing.T) {
	setMerge(t, 2, 1000, 2) // no merge is due while the chain is built
	f := newFixture(2)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, _ := buildChain(t, s, f, 30)
	s.bg.Wait() // no background merge reads the fan-out while it changes
	before := len(listedSegments(t, s))
	txSegFanout = 4

	mergeStep(t, s)
	if !mergeUnderWay(t, s) {
		t.Fatal("a merge of 2-entry segments in chunks of 2 ended after one chunk")
	}
	checkIndex(t, s, blocks)
	mergeStep(t, s)
	checkIndex(t, s, blocks)

	s = reopen(t, s, path)
	s.bg.Wait() // Open took the merge up in the background
	if mergeUnderWay(t, s) {
		t.Fatal("the merge did not finish")
	}
	checkIndex(t, s, blocks)
	if after := len(listedSegments(t, s)); after >= before {
		t.Fatalf("%d segments listed after the merges, %d before", after, before)
	}
	mustVerify(t, s)
}

// A reorg in the middle of a merge deletes the reverted blocks' entries
// wherever they lie, those the merge already moved included, and the
// merge does not bring them back.
func TestTxMergeReorg(t *testing.T) {
	setMerge(t, 2, 1000, 2)
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, undos, final := buildChain(t, s, f, 30)
	s.bg.Wait()
	segOf := func(id chain.Hash) uint32 {
		t.Helper()
		var seg uint32
		err := s.db.View(func(tx *bolt.Tx) error {
			v, bucket, key, err := txLoc(tx, id)
			if err == nil && (v == nil || !bytes.Equal(bucket, bucketTxSeg)) {
				err = fmt.Errorf("%s is not in a segment", id)
			}
			if err == nil {
				seg = binary.BigEndian.Uint32(key)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return seg
	}
	const keep = 2 // blocks 0–2 stay
	kept, gone := blocks[:keep+1], blocks[keep+1:]
	was := map[chain.Hash]uint32{}
	for _, b := range gone {
		for i := range b.Transactions {
			id := b.Transactions[i].ID()
			was[id] = segOf(id)
		}
	}
	txSegFanout = 4
	mergeStep(t, s)
	mergeStep(t, s)
	if !mergeUnderWay(t, s) {
		t.Fatal("no merge under way at the reorg")
	}
	moved := 0
	for id, seg := range was {
		if segOf(id) != seg {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the merge moved none of the entries the reorg reverts")
	}

	st := final.Clone()
	for h := len(blocks) - 1; h > keep; h-- {
		if err := st.Revert(undos[h]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Switch(len(gone), nil, nil, st); err != nil {
		t.Fatal(err)
	}
	checkGone := func() {
		t.Helper()
		for _, b := range gone {
			for i := range b.Transactions {
				if _, _, err := s.TxLocation(b.Transactions[i].ID()); !errors.Is(err, ErrNotFound) {
					t.Fatalf("reverted tx %d of block %d: %v", i, b.Height, err)
				}
			}
		}
	}
	checkGone()
	checkIndex(t, s, kept)
	if err := s.mergeTxIndex(); err != nil {
		t.Fatal(err)
	}
	if mergeUnderWay(t, s) {
		t.Fatal("the merge did not finish")
	}
	checkGone()
	checkIndex(t, s, kept)
	mustVerify(t, s)
}

// reopen closes s and opens its file again, closed at the test's end.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mergeStep(t *testing.T, s *Store) {
	t.Helper()
	if err := s.update(mergeTxStep); err != nil {
		t.Fatal(err)
	}
}

func mergeUnderWay(t *testing.T, s *Store) bool {
	t.Helper()
	v, err := s.Meta(keyTxMerge)
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return v != nil
}

// A store written before merges has no list: every number up to the
// newest is a segment, and the next commit writes the list. One that a
// posd from before merges wrote to since has a list that stops short of
// the newest: the numbers above it are segments too.
func TestTxSegsWithoutList(t *testing.T) {
	for _, short := range []bool{false, true} {
		t.Run(fmt.Sprintf("list=%v", map[bool]string{false: "absent", true: "short"}[short]), func(t *testing.T) {
			setMerge(t, 2, 1000, 2)
			f := newFixture(2)
			s, _ := openTemp(t)
			mustInit(t, s, f.g)
			blocks, _, st := buildChain(t, s, f, 12)
			err := s.db.Update(func(tx *bolt.Tx) error {
				if short {
					return putTxSegs(tx, []txSegInfo{{num: 0}, {num: 1}})
				}
				return tx.Bucket(bucketMeta).Delete([]byte(keyTxSegs))
			})
			if err != nil {
				t.Fatal(err)
			}
			checkIndex(t, s, blocks)
			b, u := f.next(t, &blocks[len(blocks)-1].Header, st, 2000, f.tx(chain.TxTransfer, f.users[1], addrOf(key(200)), 1, 1, st.Account(addrOf(f.users[1])).Nonce+1))
			if err := s.Commit(b, u, st); err != nil {
				t.Fatal(err)
			}
			blocks = append(blocks, b)
			for range 3 { // until a segment fills
				b, u = f.next(t, &b.Header, st, 2000, f.tx(chain.TxTransfer, f.users[1], addrOf(key(200)), 1, 1, st.Account(addrOf(f.users[1])).Nonce+1))
				if err := s.Commit(b, u, st); err != nil {
					t.Fatal(err)
				}
				blocks = append(blocks, b)
			}
			v, err := s.Meta(keyTxSegs)
			if err != nil || len(v) < 5*7 {
				t.Fatalf("the list written by the commits: %x, %v", v, err)
			}
			checkIndex(t, s, blocks)
		})
	}
}

// A damaged list or merge record is named, not trusted.
func TestTxSegsCorrupt(t *testing.T) {
	setMerge(t, 2, 1000, 2)
	f := newFixture(2)
	for _, c := range []struct {
		key, why string
		val      []byte
	}{
		{keyTxSegs, "multiple of 5", []byte{1, 2, 3}},
		{keyTxSegs, "listed after", []byte{0, 0, 0, 2, 0, 0, 0, 0, 1, 0}},
		{keyTxSegs, "at level 9", []byte{0, 0, 0, 0, 9}},
		{keyTxSegs, "the newest is", []byte{0, 0, 3, 232, 0}}, // segment 1000 listed
		{keyTxMerge, "6 bytes", []byte{0, 0, 0, 0, 0, 1}},
	} {
		t.Run(c.why, func(t *testing.T) {
			s, _ := openTemp(t)
			mustInit(t, s, f.g)
			blocks, _, _ := buildChain(t, s, f, 6)
			if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(c.key), c.val) }); err != nil {
				t.Fatal(err)
			}
			var err error
			if c.key == keyTxMerge {
				err = s.mergeTxIndex()
			} else {
				_, _, err = s.TxLocation(blocks[1].Transactions[0].ID())
			}
			if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(c.why)) {
				t.Fatalf("got %v, want ErrCorrupt naming %q", err, c.why)
			}
			if err := s.PutMeta(c.key, []byte("x")); err == nil {
				t.Errorf("PutMeta(%s) accepted", c.key)
			}
		})
	}
}

// BenchmarkTxLookup looks up ids in an index of 2^20 entries in segments
// of 2^10 (1,024 segments, as 2^26 transactions fill in segments of
// 2^16), before and after the merges (fan-out and chunk as a node has
// them): a hit on an old entry and a miss.
func BenchmarkTxLookup(b *testing.B) {
	setMerge(b, 1<<10, txSegFanout, txMergeChunk)
	const total = 1 << 20
	s, _ := openTemp(b)
	f := newFixture(1)
	mustInit(b, s, f.g)
	ids := make([]chain.Hash, total)
	for i := range ids {
		ids[i] = chain.Hash(sha256.Sum256(fmt.Appendf(nil, "tx %d", i)))
	}
	const batch = 1 << 14
	for lo := 0; lo < total; lo += batch {
		p := []prepared{{block: &chain.Block{Header: chain.Header{Height: uint64(1 + lo/batch)}}, ids: ids[lo : lo+batch]}}
		if err := s.db.Update(func(tx *bolt.Tx) error { _, err := putTxIndex(tx, p); return err }); err != nil {
			b.Fatal(err)
		}
	}
	for _, merged := range []bool{false, true} {
		if merged {
			start := time.Now()
			if err := s.mergeTxIndex(); err != nil {
				b.Fatal(err)
			}
			b.Logf("merging %d entries took %v", total, time.Since(start))
		}
		segs := len(listedSegments(b, s))
		for _, kind := range []string{"hit", "miss"} {
			b.Run(fmt.Sprintf("segments=%d/%s", segs, kind), func(b *testing.B) {
				for i := range b.N {
					id := ids[i%1024] // the oldest entries: the last segments looked in
					if kind == "miss" {
						id = chain.Hash(sha256.Sum256(fmt.Appendf(nil, "absent %d", i)))
					}
					_, _, err := s.TxLocation(id)
					if (kind == "hit") != (err == nil) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// Verify names entries in a segment the list leaves out: no lookup would
// find them.
func TestVerifyUnlistedSegment(t *testing.T) {
	setMerge(t, 2, 1000, 2)
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	buildChain(t, s, f, 6)
	mustVerify(t, s)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTxSeg).Put(txSegKey(1000, chain.Hash{1}), appendTxLoc(nil, 1, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Verify(1000)
	if err != nil || r.OK() || !slices.ContainsFunc(r.Problems, func(p string) bool {
		return bytes.Contains([]byte(p), []byte("segment 1000 holds entries and is not listed"))
	}) {
		t.Fatalf("Verify: %v, %v", err, r.Problems)
	}
}

// A property test of the index under merges: random commits, reorgs
// (shallow and deep, reverted transactions coming back in other blocks),
// merge chunks beside the background's, and Close/Open. After every step
// TxLocation finds exactly the main chain's transactions where they lie,
// and levels never rise along the list of segments.
func TestTxMergeProperty(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { randomMergeRun(t, seed) })
	}
}

func randomMergeRun(t *testing.T, seed int64) {
	setMerge(t, 2, 3, 2)
	rng := rand.New(rand.NewSource(seed))
	f := newFixture(3)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	blocks := []*chain.Block{f.g.Block()}
	undos := []*chain.Undo{nil}
	seen := map[chain.Hash]bool{}
	var pool []chain.Transaction // reverted txs, to re-include
	mk := func() (*chain.Block, *chain.Undo) {
		var txs []chain.Transaction
		n := rng.Intn(4)
		used := map[int]bool{}
		for i := 0; i < n; i++ {
			u := rng.Intn(len(f.users))
			if used[u] {
				continue
			}
			used[u] = true
			// a reverted transaction comes back when its nonce fits
			found := false
			for j, p := range pool {
				if p.From == addrOf(f.users[u]) && p.Nonce == st.Account(addrOf(f.users[u])).Nonce+1 {
					txs = append(txs, p)
					pool = append(pool[:j], pool[j+1:]...)
					found = true
					break
				}
			}
			if !found {
				txs = append(txs, f.tx(chain.TxTransfer, f.users[u], addrOf(key(100+rng.Intn(5))), uint64(1+rng.Intn(50)), 1, st.Account(addrOf(f.users[u])).Nonce+1))
			}
		}
		b, un := f.next(t, &blocks[len(blocks)-1].Header, st, int64(1000+rng.Intn(500)), txs...)
		for i := range b.Transactions {
			seen[b.Transactions[i].ID()] = true
		}
		return b, un
	}
	check := func(op string, step int) {
		t.Helper()
		want := map[chain.Hash][2]int{}
		for _, b := range blocks {
			for i := range b.Transactions {
				want[b.Transactions[i].ID()] = [2]int{int(b.Height), i}
			}
		}
		for id := range seen {
			h, idx, err := s.TxLocation(id)
			if w, ok := want[id]; ok {
				if err != nil || int(h) != w[0] || idx != w[1] {
					t.Fatalf("seed %d step %d (%s): tx %x want %v got %d %d %v", seed, step, op, id[:4], w, h, idx, err)
				}
			} else if !errors.Is(err, ErrNotFound) {
				t.Fatalf("seed %d step %d (%s): reverted tx %x found: %d %d %v", seed, step, op, id[:4], h, idx, err)
			}
		}
	}
	for step := 0; step < 300; step++ {
		var op string
		switch r := rng.Intn(20); {
		case r < 12:
			op = "commit"
			b, u := mk()
			if err := s.Commit(b, u, st); err != nil {
				t.Fatal(err)
			}
			blocks, undos = append(blocks, b), append(undos, u)
		case r < 16:
			op = "switch"
			rev := rng.Intn(min(6, len(blocks)-1) + 1)
			for i := 0; i < rev; i++ {
				h := len(blocks) - 1
				if err := st.Revert(undos[h]); err != nil {
					t.Fatal(err)
				}
				pool = append(pool, blocks[h].Transactions...)
				blocks, undos = blocks[:h], undos[:h]
			}
			var nb []*chain.Block
			var nu []*chain.Undo
			for i := rng.Intn(rev + 2); i > 0; i-- {
				b, u := mk()
				nb, nu = append(nb, b), append(nu, u)
				blocks, undos = append(blocks, b), append(undos, u)
			}
			if err := s.Switch(rev, nb, nu, st); err != nil {
				t.Fatal(err)
			}
		case r < 18:
			op = "mergestep"
			for i := rng.Intn(3); i >= 0; i-- {
				mergeStep(t, s)
			}
		default:
			op = "reopen"
			s = reopen(t, s, path)
		}
		check(op, step)
		{
			var segs []txSegInfo
			if err := s.db.View(func(tx *bolt.Tx) (err error) { segs, err = readTxSegs(tx); return }); err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(segs); i++ {
				if segs[i].level > segs[i-1].level {
					t.Fatalf("seed %d step %d: levels not non-increasing: %v", seed, step, segs)
				}
			}
		}
		if step%50 == 0 {
			s.bg.Wait()
			mustVerify(t, s)
		}
	}
	s.bg.Wait()
	check("final", -1)
	mustVerify(t, s)
}
