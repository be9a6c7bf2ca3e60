package store

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

func TestBodyKey(t *testing.T) {
	var h1, h2 chain.Hash
	h1[0], h2[0] = 1, 2
	cases := []struct {
		height uint64
		hash   chain.Hash
		want   string // hex
	}{
		{0, chain.Hash{}, "0000000000000000" + "0000000000000000000000000000000000000000000000000000000000000000"},
		{1, h1, "0000000000000001" + "0100000000000000000000000000000000000000000000000000000000000000"},
		{256, h2, "0000000000000100" + "0200000000000000000000000000000000000000000000000000000000000000"},
		{1<<64 - 1, h1, "ffffffffffffffff" + "0100000000000000000000000000000000000000000000000000000000000000"},
	}
	for _, c := range cases {
		k := bodyKey(c.height, c.hash)
		if got := hexOf(k); got != c.want {
			t.Errorf("bodyKey(%d, %x) = %s, want %s", c.height, c.hash[:1], got, c.want)
		}
		height, hash, err := decodeBodyKey(k)
		if err != nil || height != c.height || hash != c.hash {
			t.Errorf("decodeBodyKey(bodyKey(%d)) = %d, %s, %v", c.height, height, hash, err)
		}
	}
	// Keys sort by height first, whatever the hash: a block stored at
	// the head is an append, and side blocks at one height stay apart.
	var ff chain.Hash
	for i := range ff {
		ff[i] = 0xff
	}
	order := [][]byte{bodyKey(1, ff), bodyKey(2, chain.Hash{}), bodyKey(2, h1), bodyKey(2, h2), bodyKey(256, chain.Hash{})}
	if !slices.IsSortedFunc(order, bytes.Compare) {
		t.Error("body keys do not sort by height, then hash")
	}
	for _, bad := range [][]byte{nil, make([]byte, 8), make([]byte, bodyKeyLen-1), make([]byte, bodyKeyLen+1)} {
		if _, _, err := decodeBodyKey(bad); !errors.Is(err, errMalformed) {
			t.Errorf("decodeBodyKey of %d bytes: %v, want errMalformed", len(bad), err)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// withSide builds the chain of buildChain(f, n) in s and stores a side
// block at height n-1 (on block n-2), as testdata/format4.db.gz holds it
// for n = 6. It returns the main chain and the side block.
func withSide(t *testing.T, s *Store, f *fixture, n int) ([]*chain.Block, *chain.Block) {
	t.Helper()
	blocks, _, _ := buildChain(t, s, f, n)
	st := mustState(t, f, blocks[1:n-1])
	side, _ := f.next(t, &blocks[n-2].Header, st, 3000)
	if err := s.PutBlock(side); err != nil {
		t.Fatal(err)
	}
	return blocks, side
}

// A format-4 store written by the posd before this format (testdata:
// buildChain(newFixture(2), 6) and a side block at height 5) reads as it
// is when opened read-only, and Open moves it to format 5 with the same
// blocks, the same side block and the same records as the store this posd
// writes for that chain.
func TestFormat4FixtureUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.db")
	unzip(t, "testdata/format4.db.gz", path)
	f := newFixture(2)
	want, _ := openTemp(t)
	mustInit(t, want, f.g)
	blocks, side := withSide(t, want, f, 6)

	check := func(s *Store) {
		t.Helper()
		for _, b := range append(slices.Clone(blocks), side) {
			h := b.Hash()
			got, err := s.BlockByHash(h)
			if err != nil || !bytes.Equal(chain.EncodeBlock(got), chain.EncodeBlock(b)) {
				t.Fatalf("block %d %s: %v", b.Height, h, err)
			}
			if ok, err := s.HasBlock(h); !ok || err != nil {
				t.Fatalf("HasBlock %s = %v, %v", h, ok, err)
			}
			if hs, err := s.BlocksWithPrefix(hexOf(h[:3]), 10); err != nil || !slices.Contains(hs, h) {
				t.Fatalf("BlocksWithPrefix %x = %v, %v", h[:3], hs, err)
			}
		}
		for _, b := range blocks {
			got, err := s.BlockByHeight(b.Height)
			if err != nil || got.Hash() != b.Hash() {
				t.Fatalf("BlockByHeight(%d): %v", b.Height, err)
			}
		}
		refs, err := s.SideBlocks()
		if err != nil || len(refs) != 1 || refs[0].Hash != side.Hash() || refs[0].Height != 5 {
			t.Fatalf("SideBlocks = %+v, %v", refs, err)
		}
		mustVerify(t, s)
	}

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ro.Meta(keyFormat); string(v) != format4 {
		t.Fatalf("the fixture is of format %q", v)
	}
	check(ro)
	ro.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Meta(keyFormat); string(v) != currentFormat {
		t.Fatalf("after Open: format %q", v)
	}
	if d := dump(t, s); d[string(bucketBlocks)] != nil {
		t.Fatal("bucket blocks is still there")
	}
	check(s)
	// The same records as format 5 writes, but for the transaction
	// index: the format-4 one stays (txs), where format 5 writes txseg.
	a, b := dump(t, s), dump(t, want)
	for _, name := range []string{"bodies", "blockheight", "main", "side", "undo", "diffs", "accounts", "slashings", "invalid"} {
		if !maps.Equal(a[name], b[name]) {
			t.Fatalf("bucket %s of the upgraded store differs from the one format 5 writes", name)
		}
	}
	if len(a["txs"]) == 0 || len(a["txseg"]) != 0 || len(b["txs"]) != 0 || len(b["txseg"]) != len(a["txs"]) {
		t.Fatalf("transaction index: upgraded %d+%d entries (txs+txseg), format 5 %d+%d", len(a["txs"]), len(a["txseg"]), len(b["txs"]), len(b["txseg"]))
	}
	for _, blk := range blocks {
		for i := range blk.Transactions {
			h, idx, err := s.TxLocation(blk.Transactions[i].ID())
			if err != nil || h != blk.Height || idx != i {
				t.Fatalf("TxLocation of tx %d of block %d = %d, %d, %v", i, blk.Height, h, idx, err)
			}
		}
	}
	// It goes on: a commit, then pruning the side block.
	st := mustLoad(t, s)
	b7, u7 := f.next(t, &blocks[6].Header, st, 2000)
	if err := s.Commit(b7, u7, st); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.Prune(6); err != nil || len(removed) != 1 {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	if ok, _ := s.HasBlock(side.Hash()); ok {
		t.Fatal("the pruned side block is still stored")
	}
	if r, err := s.Verify(2); err != nil || !r.OK() { // undo records below 6 pruned
		t.Fatalf("Verify: %v %v", err, r.Problems)
	}
}

func unzip(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// toFormat4 rewrites a closed format-5 store at path into the format-4
// layout: every body back into blocks under its hash, bodies and
// blockheight gone.
func toFormat4(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket(bucketBlocks)
		if err != nil {
			return err
		}
		bodies := tx.Bucket(bucketBodies)
		err = bodies.ForEach(func(k, _ []byte) error {
			_, h, err := decodeBodyKey(k)
			if err != nil {
				return err
			}
			return old.Put(bytes.Clone(h[:]), bytes.Clone(bodies.Bucket(k).Get(bodyValue)))
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketBodies); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketBlockHeight); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte(keyFormat), []byte(format4))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The move to format 5 goes in steps; one that fails (a crash) leaves
// every block readable, in one place or the other, and the next Open
// finishes the move. The result is the store format 5 writes.
func TestFormat4MoveInterrupted(t *testing.T) {
	f := newFixture(2)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	blocks, side := withSide(t, s, f, 12)
	want := dump(t, s)
	s.Close()
	toFormat4(t, path)

	oldSteps, oldHook := moveStepBlocks, testHookMoveStep
	t.Cleanup(func() { moveStepBlocks, testHookMoveStep = oldSteps, oldHook })
	moveStepBlocks = 3
	steps := 0
	crash := errors.New("crash")
	testHookMoveStep = func() error {
		if steps++; steps == 3 {
			return crash
		}
		return nil
	}
	if _, err := Open(path); !errors.Is(err, crash) {
		t.Fatalf("Open with a step that fails: %v", err)
	}
	testHookMoveStep = nil

	// Half moved: 6 blocks copied into bodies (two steps of 3), every
	// block still in blocks.
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	err = ro.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get([]byte(keyFormat))); v != format4 {
			t.Errorf("format %q half way", v)
		}
		if n := tx.Bucket(bucketBlocks).Stats().KeyN; n != len(blocks)+1 {
			t.Errorf("%d blocks in blocks, want %d", n, len(blocks)+1)
		}
		if n := tx.Bucket(bucketBlockHeight).Stats().KeyN; n != 6 {
			t.Errorf("%d blocks in blockheight, want 6", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range append(slices.Clone(blocks), side) {
		if got, err := ro.BlockByHash(b.Hash()); err != nil || got.Hash() != b.Hash() {
			t.Fatalf("block %d half way: %v", b.Height, err)
		}
	}
	mustVerify(t, ro)
	ro.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := dump(t, s); !equalDumps(got, want) {
		t.Fatalf("after the move:\n%v\nwant\n%v", got, want)
	}
	mustVerify(t, s)
}

// A format-4 block in no index (neither main nor side) is moved under the
// height it says; one that does not decode either makes Open fail with
// ErrCorrupt, naming it, and the store stays as it was.
func TestFormat4MoveUnindexed(t *testing.T) {
	old := moveStepBlocks
	t.Cleanup(func() { moveStepBlocks = old })
	moveStepBlocks = 1 // one block a step: the steps go on where the last ended
	f := newFixture(2)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	blocks, side := withSide(t, s, f, 4)
	s.Close()
	toFormat4(t, path)
	put := func(k, v []byte) {
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketSide).Delete(k); err != nil {
				return err
			}
			return tx.Bucket(bucketBlocks).Put(k, v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	sh := side.Hash()
	put(sh[:], chain.EncodeBlock(side)) // no longer a side block
	garbage := bytes.Repeat([]byte{7}, 32)
	put(garbage, []byte("garbage"))
	if _, err := Open(path); !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(hexOf(garbage))) {
		t.Fatalf("Open with an undecodable block in no index: %v", err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBlocks).Delete(garbage) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.BlockByHash(sh); err != nil || got.Hash() != sh {
		t.Fatalf("the unindexed block after the move: %v", err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketBodies).Bucket(bodyKey(side.Height, sh)) == nil {
			t.Errorf("the unindexed block is not under its height %d", side.Height)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.BlockByHeight(3); got.Hash() != blocks[3].Hash() {
		t.Fatal("main chain changed")
	}
	mustVerify(t, s)
}

// posd check names a body without its index entry, an index entry without
// its body, and a body key of the wrong length.
func TestVerifyBodies(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	_, side := withSide(t, s, f, 4)
	sh := side.Hash()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketBlockHeight).Delete(sh[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBodies).Put(bodyKey(9, chain.Hash{9}), []byte("not a bucket")); err != nil {
			return err
		}
		return tx.Bucket(bucketBodies).Put([]byte("short"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Verify(1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"block " + sh.String() + ": a body at height 3, not in blockheight",
		"bodies " + hexOf(bodyKey(9, chain.Hash{9})) + ": no block body",
		"block " + chain.Hash{9}.String() + ": a body at height 9, not in blockheight",
		"bodies 73686f7274: malformed record: body key of 5 bytes, want 40",
		"blockheight names 5 blocks, bodies holds 8",
	}
	if len(r.Problems) != len(want) {
		t.Fatalf("Verify: %q, want %q", r.Problems, want)
	}
	for i := range want {
		if r.Problems[i] != want[i] {
			t.Fatalf("Verify problem %d: %q, want %q", i, r.Problems[i], want[i])
		}
	}
}
