package store

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// diffChain builds n blocks of transfers from the fixture's users to new
// addresses and back, applied to st; each block's undo record and the
// state after it are returned.
// diffRecipient numbers the new addresses diffChain pays.
var diffRecipient int

func diffChain(t *testing.T, f *fixture, st *chain.State, parent *chain.Header, n int, nonce *uint64) (bs []*chain.Block, us []*chain.Undo, sts []*chain.State) {
	t.Helper()
	for i := range n {
		*nonce++
		var txs []chain.Transaction
		for j, u := range f.users {
			diffRecipient++
			txs = append(txs, f.tx(chain.TxTransfer, u, addrOf(key(500+diffRecipient+j)), 1+uint64(i), 1, *nonce))
		}
		b, u := f.next(t, parent, st, 2000, txs...)
		bs, us, sts = append(bs, b), append(us, u), append(sts, st.Clone())
		parent = &b.Header
	}
	return bs, us, sts
}

func baseOf(t *testing.T, s *Store) uint64 {
	t.Helper()
	v, err := s.Meta(keyBase)
	if err != nil {
		t.Fatal(err)
	}
	h, err := decodeHeightKey(v)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// foldToOf is the meta fold_to of a fold under way, 0 if none.
func foldToOf(t *testing.T, s *Store) uint64 {
	t.Helper()
	var h uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		h, err = readFoldTo(tx, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func diffCount(t *testing.T, s *Store) int {
	t.Helper()
	return len(dump(t, s)[string(bucketDiffs)])
}

func mustVerify(t *testing.T, s *Store) {
	t.Helper()
	s.bg.Wait() // Verify's page check must not run beside a background write
	r, err := s.Verify(1000)
	if err != nil || !r.OK() {
		t.Fatalf("Verify: %v %v", err, r.Problems)
	}
}

// Blocks write diffs, not the base; folds move the base and keep the
// state; a fold that fails half way (a crash) changes nothing.
func TestDiffFold(t *testing.T) {
	f := newFixture(3)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	var nonce uint64
	bs, us, sts := diffChain(t, f, st, &f.g.Block().Header, 6, &nonce)
	baseDump := dump(t, s)[string(bucketAccounts)]
	for i := range bs {
		if err := s.Commit(bs[i], us[i], sts[i]); err != nil {
			t.Fatal(err)
		}
		if !mustLoad(t, s).Equal(sts[i]) {
			t.Fatalf("state after block %d differs", i+1)
		}
	}
	if got := dump(t, s)[string(bucketAccounts)]; !equalDumps(map[string]map[string]string{"a": got}, map[string]map[string]string{"a": baseDump}) {
		t.Fatal("a commit wrote the base")
	}
	if baseOf(t, s) != 0 || diffCount(t, s) != 6 {
		t.Fatalf("base %d, %d diffs; want 0, 6", baseOf(t, s), diffCount(t, s))
	}
	mustVerify(t, s)

	// A crash inside the fold's last transaction, after its chunks: the
	// base height and the diffs are as before, the state too, and
	// fold_to says where the fold was going.
	crash := errors.New("crash")
	testHookFold = func() error { return crash }
	_, err := s.Compact(4)
	testHookFold = nil
	if !errors.Is(err, crash) || baseOf(t, s) != 0 || diffCount(t, s) != 6 || !mustLoad(t, s).Equal(st) {
		t.Fatalf("a fold that crashed: %v, base %d, %d diffs, or the state changed", err, baseOf(t, s), diffCount(t, s))
	}
	if foldToOf(t, s) != 4 {
		t.Fatalf("fold_to %d after the crash, want 4", foldToOf(t, s))
	}
	mustVerify(t, s)

	// The next fold goes to that height, whatever its own bounds.
	oldMax := maxFoldEntries
	maxFoldEntries = 1
	got, err := s.Compact(1)
	if err != nil || got != 4 || foldToOf(t, s) != 0 || !mustLoad(t, s).Equal(st) {
		t.Fatalf("the fold taken up again = %d, %v (fold_to %d); want 4", got, err, foldToOf(t, s))
	}
	// A fold stops after the block that reaches maxFoldEntries.
	got, err = s.Compact(4)
	maxFoldEntries = oldMax
	if err != nil || got != 5 || !mustLoad(t, s).Equal(st) {
		t.Fatalf("Compact with a 1-entry bound = %d, %v; want 5", got, err)
	}
	for _, want := range []uint64{6, 6} {
		if got, err := s.Compact(4); err != nil || got != want {
			t.Fatalf("Compact = %d, %v; want %d", got, err, want)
		}
		if baseOf(t, s) != want || diffCount(t, s) != 6-int(want) {
			t.Fatalf("base %d, %d diffs", baseOf(t, s), diffCount(t, s))
		}
		if !mustLoad(t, s).Equal(st) {
			t.Fatal("state after a fold differs")
		}
		mustVerify(t, s)
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !mustLoad(t, s).Equal(st) {
		t.Fatal("state after reopen differs")
	}
}

// A fold writes the newest value of each account its diffs name, deletes
// the ones they empty, and leaves the others.
func TestPutFolded(t *testing.T) {
	s, _ := openTemp(t)
	a, b, c, d := chain.Address("aa"), chain.Address("bb"), chain.Address("cc"), chain.Address("dd")
	records := [][]diffEntry{
		{{c, chain.Account{Balance: 3}}, {a, chain.Account{Balance: 5}}, {b, chain.Account{Balance: 1}}},
		{{b, chain.Account{}}, {a, chain.Account{Balance: 7, Nonce: 1}}},
		{{a, chain.Account{Balance: 9, Nonce: 2}}},
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		accounts := tx.Bucket(bucketAccounts)
		for _, x := range []chain.Address{b, d} {
			if err := accounts.Put([]byte(x), encodeAccount(chain.Account{Balance: 100})); err != nil {
				return err
			}
		}
		var es []foldEntry
		for _, r := range records {
			v, err := encodeDiff(r)
			if err != nil {
				return err
			}
			if es, err = appendFold(es, v); err != nil {
				return err
			}
		}
		return putFolded(accounts, es)
	})
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, s)[string(bucketAccounts)]
	want := map[string]chain.Account{string(a): {Balance: 9, Nonce: 2}, string(c): {Balance: 3}, string(d): {Balance: 100}}
	if len(got) != len(want) {
		t.Fatalf("base holds %d accounts, want %d", len(got), len(want))
	}
	for k, acc := range want {
		if got[k] != string(encodeAccount(acc)) {
			t.Errorf("account %s = %x, want %+v", k, got[k], acc)
		}
	}
	// A record that does not decode is refused.
	if _, err := appendFold(nil, []byte{diffVersion, 1, 2, 'a', 'a'}); !errors.Is(err, errMalformed) {
		t.Fatalf("appendFold of a short record: %v", err)
	}
}

// A fold's entries point into the diff records' pages; a fold that grows
// the file makes bbolt map it again during the commit, after which those
// pages are no longer mapped where they were. The values written must
// still be the records' (bbolt copies what its nodes point at first).
func TestFoldGrowsFile(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	b, u := f.next(t, &f.g.Block().Header, st, 2000)
	if err := s.Commit(b, u, st); err != nil {
		t.Fatal(err)
	}
	// Block 1's diff with 30,000 more accounts (test only: the store
	// itself writes what blocks did).
	const n = 30_000
	want := make(map[chain.Address]chain.Account, n)
	err := s.db.Update(func(tx *bolt.Tx) error {
		var es []diffEntry
		if err := decodeDiff(tx.Bucket(bucketDiffs).Get(heightKey(1)), func(a chain.Address, acc chain.Account) { es = append(es, diffEntry{a, acc}) }); err != nil {
			return err
		}
		for i := range n {
			a, acc := chain.Address(fmt.Sprintf("fold-%08d", i*7919%n)), chain.Account{Balance: uint64(i) + 1, Nonce: uint64(i % 5)}
			es = append(es, diffEntry{a, acc})
			want[a] = acc
		}
		v, err := encodeDiff(es)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDiffs).Put(heightKey(1), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if base, err := s.Compact(10); err != nil || base != 1 {
		t.Fatalf("Compact = %d, %v", base, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() < 2*before.Size() {
		t.Fatalf("the fold grew the file from %d to %d bytes only: no remap to test", before.Size(), after.Size())
	}
	base := dump(t, s)[string(bucketAccounts)]
	for a, acc := range want {
		if base[string(a)] != string(encodeAccount(acc)) {
			t.Fatalf("account %s in the base = %x, want %+v", a, base[string(a)], acc)
		}
	}
	if diffCount(t, s) != 0 {
		t.Fatalf("%d diffs left", diffCount(t, s))
	}
}

// Folds start by themselves once compactAfter blocks are pending.
func TestDiffFoldInBackground(t *testing.T) {
	oldAfter, oldKeep := compactAfter, keepRecent
	compactAfter, keepRecent = 3, 1
	defer func() { compactAfter, keepRecent = oldAfter, oldKeep }()
	f := newFixture(2)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	var nonce uint64
	bs, us, _ := diffChain(t, f, st, &f.g.Block().Header, 5, &nonce)
	if err := s.Switch(0, bs, us, st); err != nil {
		t.Fatal(err)
	}
	// Close waits for the fold the switch started.
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The newest keepRecent blocks stay as diffs.
	if baseOf(t, s) != 4 || diffCount(t, s) != 1 {
		t.Fatalf("base %d, %d diffs after a background fold; want 4, 1", baseOf(t, s), diffCount(t, s))
	}
	if !mustLoad(t, s).Equal(st) {
		t.Fatal("state after a background fold differs")
	}
}

// A reorg that reverts blocks already folded into the base writes the
// whole new state into the base.
func TestDiffRevertBelowBase(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	var nonce uint64
	as, uas, _ := diffChain(t, f, st, &f.g.Block().Header, 4, &nonce)
	if err := s.Switch(0, as, uas, st); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Compact(3); err != nil || got != 3 {
		t.Fatalf("Compact = %d, %v", got, err)
	}
	// Branch B from a1: revert a4..a2 (a2 and a3 are in the base).
	for i := 3; i >= 1; i-- {
		st.Revert(uas[i])
	}
	nonce = 1
	bsB, usB, _ := diffChain(t, f, st, &as[0].Header, 4, &nonce)
	if err := s.Switch(3, bsB, usB, st); err != nil {
		t.Fatal(err)
	}
	if baseOf(t, s) != 5 || diffCount(t, s) != 0 {
		t.Fatalf("base %d, %d diffs; want 5, 0", baseOf(t, s), diffCount(t, s))
	}
	if !mustLoad(t, s).Equal(st) {
		t.Fatal("state after a reorg below the base differs")
	}
	mustVerify(t, s)

	// A reorg above the base only drops diffs.
	more, umore, _ := diffChain(t, f, st, &bsB[3].Header, 2, &nonce)
	if err := s.Switch(0, more, umore, st); err != nil {
		t.Fatal(err)
	}
	if baseOf(t, s) != 5 || diffCount(t, s) != 2 {
		t.Fatalf("base %d, %d diffs; want 5, 2", baseOf(t, s), diffCount(t, s))
	}
	st.Revert(umore[1])
	st.Revert(umore[0])
	if err := s.Switch(2, nil, nil, st); err != nil {
		t.Fatal(err)
	}
	if baseOf(t, s) != 5 || diffCount(t, s) != 0 || !mustLoad(t, s).Equal(st) {
		t.Fatalf("after a revert above the base: base %d, %d diffs", baseOf(t, s), diffCount(t, s))
	}
	mustVerify(t, s)
}

// A format-3 store (no base, no diffs) reads as before, read-only, and
// Open moves it to format 4 with its base at its head.
func TestFormat3Upgraded(t *testing.T) {
	f := newFixture(2)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	var nonce uint64
	bs, us, _ := diffChain(t, f, st, &f.g.Block().Header, 3, &nonce)
	if err := s.Switch(0, bs, us, st); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(10); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete([]byte(keyBase)); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketDiffs); err != nil {
			return err
		}
		return meta.Put([]byte(keyFormat), []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Genesis(); err != nil {
		t.Fatalf("Genesis of a format-3 store: %v", err)
	}
	if got, err := ro.LoadState(); err != nil || !got.Equal(st) {
		t.Fatalf("LoadState of a format-3 store: %v", err)
	}
	mustVerify(t, ro)
	ro.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Meta(keyFormat); string(v) != currentFormat || baseOf(t, s) != 3 {
		t.Fatalf("after Open: format %s, base %d", v, baseOf(t, s))
	}
	if err := s.Init(f.g); err != nil {
		t.Fatal(err)
	}
	more, umore, _ := diffChain(t, f, st, &bs[2].Header, 2, &nonce)
	if err := s.Switch(0, more, umore, st); err != nil {
		t.Fatal(err)
	}
	if !mustLoad(t, s).Equal(st) {
		t.Fatal("state after commits on an upgraded store differs")
	}
	mustVerify(t, s)
}

// AccountsWithPrefix sees the accounts the pending diffs made, and not
// those they emptied.
func TestAccountsWithPrefixPending(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	var nonce uint64
	bs, us, _ := diffChain(t, f, st, &f.g.Block().Header, 3, &nonce)
	if err := s.Switch(0, bs[:1], us[:1], mustState(t, f, bs[:1])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(10); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(0, bs[1:], us[1:], st); err != nil {
		t.Fatal(err)
	}
	// An account of the base that the diffs empty.
	gone := addrOf(f.users[0])
	st.SetAccount(gone, chain.Account{})
	if err := s.db.Update(func(tx *bolt.Tx) error {
		// Block 3's diff with the emptying appended (test only: the
		// store itself writes what blocks did).
		old := tx.Bucket(bucketDiffs).Get(heightKey(3))
		var es []diffEntry
		if err := decodeDiff(old, func(a chain.Address, acc chain.Account) { es = append(es, diffEntry{a, acc}) }); err != nil {
			return err
		}
		es = append(es, diffEntry{gone, chain.Account{}})
		v, err := encodeDiff(es)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDiffs).Put(heightKey(3), v)
	}); err != nil {
		t.Fatal(err)
	}
	var want []chain.Address
	for _, e := range st.Accounts() {
		want = append(want, e.Address)
	}
	slices.Sort(want)
	for _, max := range []int{1, 3, len(want), len(want) + 5} {
		got, err := s.AccountsWithPrefix("", max)
		if err != nil || !slices.Equal(got, want[:min(max, len(want))]) {
			t.Fatalf("AccountsWithPrefix(\"\", %d) = %v, %v; want %v", max, got, err, want[:min(max, len(want))])
		}
	}
}

// mustState is the genesis state with bs applied.
func mustState(t *testing.T, f *fixture, bs []*chain.Block) *chain.State {
	t.Helper()
	st := f.g.State()
	for _, b := range bs {
		if _, err := st.Apply(b, f.g); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// posd check names a damaged or missing diff record.
func TestVerifyDiffs(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*bolt.Tx) error
	}{
		{"damaged", func(tx *bolt.Tx) error { return tx.Bucket(bucketDiffs).Put(heightKey(2), []byte{diffVersion, 9}) }},
		{"missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketDiffs).Delete(heightKey(2)) }},
		{"wrong value", func(tx *bolt.Tx) error {
			v, err := encodeDiff([]diffEntry{{addrOf(key(1)), chain.Account{Balance: 7}}})
			if err != nil {
				return err
			}
			return tx.Bucket(bucketDiffs).Put(heightKey(3), v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(2)
			s, _ := openTemp(t)
			mustInit(t, s, f.g)
			st := f.g.State()
			var nonce uint64
			bs, us, _ := diffChain(t, f, st, &f.g.Block().Header, 3, &nonce)
			if err := s.Switch(0, bs, us, st); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(tc.edit); err != nil {
				t.Fatal(err)
			}
			r, err := s.Verify(1000)
			if err != nil || r.OK() {
				t.Fatalf("Verify: %v, problems %v", err, r.Problems)
			}
			if _, err := s.LoadState(); tc.name != "wrong value" && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("LoadState: %v, want ErrCorrupt", err)
			}
		})
	}
}

// A fold writes the base in chunks, each its own transaction: between two
// chunks the store holds the head's state, and a reorg below the fold's
// height ends the fold and leaves the whole new state in the base.
func TestFoldInChunks(t *testing.T) {
	oldChunk := foldChunkEntries
	foldChunkEntries = 2
	defer func() { foldChunkEntries = oldChunk; testHookChunk = nil }()
	f := newFixture(3)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	var nonce uint64
	as, uas, _ := diffChain(t, f, st, &f.g.Block().Header, 5, &nonce)
	if err := s.Switch(0, as, uas, st); err != nil {
		t.Fatal(err)
	}

	// Each block touches the 3 users and 3 new accounts: a fold of 4
	// blocks has 24 entries, 15 accounts, chunks of 2 entries.
	chunks := 0
	testHookChunk = func() {
		chunks++
		if foldToOf(t, s) != 4 || baseOf(t, s) != 0 || !mustLoad(t, s).Equal(st) {
			t.Errorf("between chunks %d and %d: fold_to %d, base %d, or the state differs", chunks, chunks+1, foldToOf(t, s), baseOf(t, s))
		}
	}
	if got, err := s.Compact(4); err != nil || got != 4 {
		t.Fatalf("Compact = %d, %v; want 4", got, err)
	}
	if chunks < 5 {
		t.Fatalf("the fold ran in %d chunks, want at least 5", chunks)
	}
	if foldToOf(t, s) != 0 || diffCount(t, s) != 1 || !mustLoad(t, s).Equal(st) {
		t.Fatalf("after the fold: fold_to %d, %d diffs, or the state differs", foldToOf(t, s), diffCount(t, s))
	}
	mustVerify(t, s)

	// Three more blocks; a fold of 7 (base 4) is interrupted after its
	// second chunk by a reorg from a5, above the base but below fold_to.
	more, umore, _ := diffChain(t, f, st, &as[4].Header, 3, &nonce)
	if err := s.Switch(0, more, umore, st); err != nil {
		t.Fatal(err)
	}
	for i := 2; i >= 0; i-- {
		st.Revert(umore[i])
	}
	nonce = 5
	bsB, usB, _ := diffChain(t, f, st.Clone(), &as[4].Header, 3, &nonce)
	stB := st.Clone()
	for i := range bsB {
		if _, err := stB.Apply(bsB[i], f.g); err != nil {
			t.Fatal(err)
		}
	}
	chunks = 0
	testHookChunk = func() {
		if chunks++; chunks == 2 {
			if err := s.Switch(3, bsB, usB, stB); err != nil {
				t.Errorf("the reorg during the fold: %v", err)
			}
		}
	}
	if _, err := s.Compact(10); err != nil {
		t.Fatal(err)
	}
	testHookChunk = nil
	if foldToOf(t, s) != 0 || !mustLoad(t, s).Equal(stB) {
		t.Fatalf("after a reorg below fold_to: fold_to %d, or the state differs", foldToOf(t, s))
	}
	mustVerify(t, s)
}
