package store

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// dump returns every bucket's contents, to prove a failed write changed nothing.
func dump(t *testing.T, s *Store) map[string]map[string]string {
	t.Helper()
	out := make(map[string]map[string]string)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			m := make(map[string]string)
			out[string(name)] = m
			var walk func(prefix string, b *bolt.Bucket) error
			walk = func(prefix string, b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					if v == nil { // a nested bucket (bodies)
						return walk(prefix+string(k)+"/", b.Bucket(k))
					}
					m[prefix+string(k)] = string(v)
					return nil
				})
			}
			return walk("", b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalDumps(a, b map[string]map[string]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

// accountCount is the number of accounts in the stored state (the base
// with the diffs above it).
func accountCount(t *testing.T, s *Store) int {
	t.Helper()
	st, err := s.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	return st.Len()
}

func TestInitReopenMismatch(t *testing.T) {
	f := newFixture(2)
	s, path := openTemp(t)
	if ok, err := s.Initialized(); err != nil || ok {
		t.Fatalf("Initialized on empty db = %v, %v", ok, err)
	}
	if _, err := s.Head(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Head before Init: %v, want ErrNotFound", err)
	}
	if _, _, ok := s.HeadInfo(); ok {
		t.Fatal("HeadInfo ok before Init")
	}
	if err := s.Commit(&chain.Block{}, &chain.Undo{}, chain.NewState()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Commit before Init: %v", err)
	}
	mustInit(t, s, f.g)
	mustInit(t, s, f.g) // idempotent

	check := func(s *Store) {
		t.Helper()
		if ok, err := s.Initialized(); err != nil || !ok {
			t.Fatalf("Initialized = %v, %v", ok, err)
		}
		g, err := s.Genesis()
		if err != nil {
			t.Fatal(err)
		}
		if g.Hash() != f.g.Hash() {
			t.Fatalf("genesis hash %s, want %s", g.Hash(), f.g.Hash())
		}
		head, err := s.Head()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(head, f.g.Block()) {
			t.Fatalf("head %+v, want genesis block", head)
		}
		h, hash, ok := s.HeadInfo()
		if !ok || h != 0 || hash != f.g.Block().Hash() {
			t.Fatalf("HeadInfo = %d %s %v", h, hash, ok)
		}
		st, err := s.LoadState()
		if err != nil {
			t.Fatal(err)
		}
		if !st.Equal(f.g.State()) {
			t.Fatalf("state %v, want genesis state", st.Accounts())
		}
		if _, err := s.Undo(0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Undo(0): %v", err)
		}
	}
	check(s)
	if s.Path() != path {
		t.Fatalf("Path = %q", s.Path())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
	mustInit(t, s, f.g)

	other := newFixture(3).g
	err = s.Init(other)
	if !errors.Is(err, ErrGenesisMismatch) {
		t.Fatalf("Init with another genesis: %v", err)
	}
	for _, h := range []chain.Hash{f.g.Hash(), other.Hash()} {
		if !strings.Contains(err.Error(), h.String()) {
			t.Errorf("mismatch error %q does not show %s", err, h)
		}
	}
	check(s)
}

// buildChain commits n blocks of varied transactions and returns them, their
// undo records and the in-memory state after them.
func buildChain(t *testing.T, s *Store, f *fixture, n int) ([]*chain.Block, []*chain.Undo, *chain.State) {
	t.Helper()
	st := f.g.State()
	parent := &f.g.Block().Header
	blocks := []*chain.Block{f.g.Block()}
	undos := []*chain.Undo{nil}
	fresh := addrOf(key(100))
	nonces := make([]uint64, len(f.users))
	tx := func(typ chain.TxType, u int, to chain.Address, amount, fee uint64) chain.Transaction {
		nonces[u]++
		return f.tx(typ, f.users[u], to, amount, fee, nonces[u])
	}
	for i := 1; i <= n; i++ {
		var txs []chain.Transaction
		switch {
		case i == n: // the last block is empty
		case i%3 == 1:
			txs = []chain.Transaction{
				tx(chain.TxTransfer, 0, addrOf(f.users[1]), 100, 1),
				tx(chain.TxTransfer, 1, fresh, 7, 2),
			}
		case i%3 == 2:
			txs = []chain.Transaction{
				tx(chain.TxStake, 0, "", 1000, 1),
				tx(chain.TxExchange, 1, fresh, 5000, 0),
			}
		default:
			txs = []chain.Transaction{tx(chain.TxUnstake, 0, "", 500, 1)}
		}
		b, u := f.next(t, parent, st, 2000, txs...)
		if err := s.Commit(b, u, st); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		blocks, undos = append(blocks, b), append(undos, u)
		parent = &b.Header
	}
	return blocks, undos, st
}

func TestCommitReopen(t *testing.T) {
	f := newFixture(2)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	blocks, undos, st := buildChain(t, s, f, 5)
	head := blocks[len(blocks)-1]
	if h, hash, _ := s.HeadInfo(); h != head.Height || hash != head.Hash() {
		t.Fatalf("HeadInfo = %d %s", h, hash)
	}
	s.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustInit(t, s, f.g)
	got, err := s.Head()
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != head.Hash() {
		t.Fatalf("head %s, want %s", got.Hash(), head.Hash())
	}
	if h, hash, ok := s.HeadInfo(); !ok || h != head.Height || hash != head.Hash() {
		t.Fatalf("HeadInfo after reopen = %d %s %v", h, hash, ok)
	}
	loaded, err := s.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equal(st) {
		t.Fatalf("state after reopen\n%v\nwant\n%v", loaded.Accounts(), st.Accounts())
	}
	if n := accountCount(t, s); n != st.Len() {
		t.Fatalf("%d stored accounts, state has %d", n, st.Len())
	}
	for h, want := range blocks {
		b, err := s.BlockByHeight(uint64(h))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, want) {
			t.Fatalf("block %d differs", h)
		}
		b, err = s.BlockByHash(want.Hash())
		if err != nil || !reflect.DeepEqual(b, want) {
			t.Fatalf("BlockByHash %d: %v", h, err)
		}
		hash, err := s.HashAt(uint64(h))
		if err != nil || hash != want.Hash() {
			t.Fatalf("HashAt %d = %s, %v", h, hash, err)
		}
		for i := range want.Transactions {
			gh, gi, err := s.TxLocation(want.Transactions[i].ID())
			if err != nil || gh != uint64(h) || gi != i {
				t.Fatalf("TxLocation of tx %d in block %d = %d, %d, %v", i, h, gh, gi, err)
			}
		}
		if h > 0 {
			u, err := s.Undo(uint64(h))
			if err != nil || !reflect.DeepEqual(u, undos[h]) {
				t.Fatalf("Undo %d = %+v, %v; want %+v", h, u, err, undos[h])
			}
		}
	}
	if _, err := s.BlockByHeight(6); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlockByHeight above head: %v", err)
	}
	if _, err := s.HashAt(6); !errors.Is(err, ErrNotFound) {
		t.Fatalf("HashAt above head: %v", err)
	}
	if _, err := s.BlockByHash(chain.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BlockByHash unknown: %v", err)
	}
	if _, _, err := s.TxLocation(chain.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TxLocation unknown: %v", err)
	}
	if _, err := s.Undo(6); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Undo above head: %v", err)
	}

	for _, c := range []struct {
		from         uint64
		limit, first int
		n            int
	}{{0, 10, 0, 6}, {0, 6, 0, 6}, {2, 2, 2, 2}, {4, 10, 4, 2}, {5, 1, 5, 1}, {6, 3, 0, 0}, {100, 3, 0, 0}, {1, 0, 0, 0}, {1, -1, 0, 0}} {
		got, err := s.Blocks(c.from, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != c.n {
			t.Fatalf("Blocks(%d, %d) gave %d blocks, want %d", c.from, c.limit, len(got), c.n)
		}
		for i, b := range got {
			if !reflect.DeepEqual(b, blocks[c.first+i]) {
				t.Fatalf("Blocks(%d, %d)[%d] is height %d", c.from, c.limit, i, b.Height)
			}
		}
		headers, err := s.Headers(c.from, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(headers) != c.n {
			t.Fatalf("Headers(%d, %d) gave %d headers, want %d", c.from, c.limit, len(headers), c.n)
		}
		for i, h := range headers {
			if *h != blocks[c.first+i].Header {
				t.Fatalf("Headers(%d, %d)[%d] is not block %d's header", c.from, c.limit, i, c.first+i)
			}
		}
	}
}

func TestSwitch(t *testing.T) {
	f := newFixture(3)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	u0, u1, u2 := f.users[0], f.users[1], f.users[2]
	onlyA := addrOf(key(200)) // an account only chain A creates
	onlyB := addrOf(key(201))

	// Chain A: a1, a2, a3.
	st := f.g.State()
	g0 := &f.g.Block().Header
	a1, ua1 := f.next(t, g0, st, 2000, f.tx(chain.TxTransfer, u0, addrOf(u1), 10, 1, 1))
	shared := f.tx(chain.TxTransfer, u1, addrOf(u2), 20, 1, 1) // in a2 and in b2
	a2, ua2 := f.next(t, &a1.Header, st, 2000, shared, f.tx(chain.TxTransfer, u2, onlyA, 30, 1, 1))
	a3, ua3 := f.next(t, &a2.Header, st, 2000, f.tx(chain.TxStake, u0, "", 40, 1, 2))
	// One switch of three blocks: st is the state after the last one (a
	// commit of a1 alone would need the state after a1).
	if err := s.Switch(0, []*chain.Block{a1, a2, a3}, []*chain.Undo{ua1, ua2, ua3}, st); err != nil {
		t.Fatalf("commit a1..a3: %v", err)
	}
	if !st.Equal(mustLoad(t, s)) {
		t.Fatal("state after chain A differs")
	}
	aTxs := map[chain.Hash]bool{}
	for _, b := range []*chain.Block{a2, a3} {
		for i := range b.Transactions {
			aTxs[b.Transactions[i].ID()] = true
		}
	}

	// Branch B from a1: b2, b3, b4, built on the state after a1.
	st.Revert(ua3)
	st.Revert(ua2)
	b2, ub2 := f.next(t, &a1.Header, st, 4000, shared, f.tx(chain.TxTransfer, u0, onlyB, 50, 1, 2))
	b3, ub3 := f.next(t, &b2.Header, st, 2000, f.tx(chain.TxTransfer, u2, addrOf(u0), 60, 1, 1))
	b4, ub4 := f.next(t, &b3.Header, st, 2000)

	// Something that does not chain (b3 twice) writes nothing.
	before := dump(t, s)
	for _, bad := range []struct {
		revert int
		blocks []*chain.Block
		undos  []*chain.Undo
	}{
		{2, []*chain.Block{b2, b2}, []*chain.Undo{ub2, ub2}},
		{1, []*chain.Block{b2, b3}, []*chain.Undo{ub2, ub3}},
		{0, []*chain.Block{b2}, []*chain.Undo{ub2}},
		{4, []*chain.Block{b2}, []*chain.Undo{ub2}},
		{2, []*chain.Block{b2, b3, b4, b4}, []*chain.Undo{ub2, ub3, ub4, ub4}},
	} {
		if err := s.Switch(bad.revert, bad.blocks, bad.undos, st); !errors.Is(err, ErrNotHead) {
			t.Fatalf("Switch(%d, %d blocks): %v, want ErrNotHead", bad.revert, len(bad.blocks), err)
		}
	}
	if !equalDumps(before, dump(t, s)) {
		t.Fatal("a refused Switch changed the database")
	}
	if _, hash, _ := s.HeadInfo(); hash != a3.Hash() {
		t.Fatal("a refused Switch moved the cached head")
	}

	if err := s.Switch(2, []*chain.Block{b2, b3, b4}, []*chain.Undo{ub2, ub3, ub4}, st); err != nil {
		t.Fatal(err)
	}

	// From scratch on B.
	scratch := f.g.State()
	for _, b := range []*chain.Block{a1, b2, b3, b4} {
		if _, err := scratch.Apply(b, f.g); err != nil {
			t.Fatal(err)
		}
	}
	if !scratch.Equal(st) {
		t.Fatal("test bug: incremental and scratch states differ")
	}

	check := func(s *Store) {
		t.Helper()
		if got := mustLoad(t, s); !got.Equal(scratch) {
			t.Fatalf("state after switch\n%v\nwant\n%v", got.Accounts(), scratch.Accounts())
		}
		if n := accountCount(t, s); n != scratch.Len() {
			t.Fatalf("%d stored accounts, state has %d (zero accounts left behind?)", n, scratch.Len())
		}
		if scratch.Account(onlyA) != (chain.Account{}) {
			t.Fatal("test bug: onlyA exists on B")
		}
		head, err := s.Head()
		if err != nil || head.Hash() != b4.Hash() {
			t.Fatalf("head %v, %v; want b4", head, err)
		}
		if h, hash, _ := s.HeadInfo(); h != 4 || hash != b4.Hash() {
			t.Fatalf("HeadInfo %d %s", h, hash)
		}
		for h, want := range []*chain.Block{f.g.Block(), a1, b2, b3, b4} {
			b, err := s.BlockByHeight(uint64(h))
			if err != nil || b.Hash() != want.Hash() {
				t.Fatalf("height %d: %v", h, err)
			}
		}
		for h, want := range map[uint64]*chain.Undo{1: ua1, 2: ub2, 3: ub3, 4: ub4} {
			u, err := s.Undo(h)
			if err != nil || !reflect.DeepEqual(u, want) {
				t.Fatalf("Undo(%d) = %+v, %v", h, u, err)
			}
		}
		for _, b := range []*chain.Block{a2, a3} {
			got, err := s.BlockByHash(b.Hash())
			if err != nil || !reflect.DeepEqual(got, b) {
				t.Fatalf("reverted block %d not retrievable by hash: %v", b.Height, err)
			}
		}
		for id := range aTxs {
			h, i, err := s.TxLocation(id)
			if id == shared.ID() {
				if err != nil || h != 2 || i != 0 {
					t.Fatalf("shared tx at %d,%d,%v; want b2's 2,0", h, i, err)
				}
				continue
			}
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("reverted tx %s still indexed at %d,%d (%v)", id, h, i, err)
			}
		}
		for _, b := range []*chain.Block{a1, b2, b3} {
			for i := range b.Transactions {
				h, idx, err := s.TxLocation(b.Transactions[i].ID())
				if err != nil || h != b.Height || idx != i {
					t.Fatalf("tx %d of block %d at %d,%d,%v", i, b.Height, h, idx, err)
				}
			}
		}
	}
	check(s)
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)

	// And back to A by a pure revert plus commits: a switch can also only revert.
	st2 := mustLoad(t, s)
	for _, u := range []*chain.Undo{ub4, ub3, ub2} {
		st2.Revert(u)
	}
	if err := s.Switch(3, nil, nil, st2); err != nil {
		t.Fatal(err)
	}
	if h, hash, _ := s.HeadInfo(); h != 1 || hash != a1.Hash() {
		t.Fatalf("after pure revert head %d %s", h, hash)
	}
	if got := mustLoad(t, s); !got.Equal(st2) {
		t.Fatalf("state after pure revert\n%v %v %+v\nwant\n%v %v %+v", got.Accounts(), got.Slashings(), got.Finality(), st2.Accounts(), st2.Slashings(), st2.Finality())
	}
	if n := accountCount(t, s); n != st2.Len() {
		t.Fatalf("%d stored accounts, state has %d", n, st2.Len())
	}
	for _, p := range []struct {
		b *chain.Block
		u *chain.Undo
	}{{a2, ua2}, {a3, ua3}} {
		if _, err := st2.Apply(p.b, f.g); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(p.b, p.u, st2); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustLoad(t, s); !got.Equal(st2) {
		t.Fatal("state after returning to A")
	}
}

func mustLoad(t *testing.T, s *Store) *chain.State {
	t.Helper()
	st, err := s.LoadState()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCommitNotHead(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, st := buildChain(t, s, f, 2)
	before := dump(t, s)

	// A rival of block 1, on genesis: does not extend the head (block 2).
	rs := f.g.State()
	rival, ru := f.next(t, &f.g.Block().Header, rs, 3000, f.tx(chain.TxTransfer, f.users[0], addrOf(key(300)), 1, 1, 1))
	if err := s.Commit(rival, ru, rs); !errors.Is(err, ErrNotHead) {
		t.Fatalf("Commit of a rival: %v, want ErrNotHead", err)
	}
	// Right height, wrong parent.
	fake := chain.NewBlock(f.g, &blocks[1].Header, 0, blocks[2].Timestamp+2000, nil)
	fake.Header.Sign(f.forger)
	if err := s.Commit(fake, &chain.Undo{Height: fake.Height}, st); !errors.Is(err, ErrNotHead) {
		t.Fatalf("Commit on a non-head parent: %v, want ErrNotHead", err)
	}
	// A mismatched undo record is refused before the transaction.
	next := chain.NewBlock(f.g, &blocks[2].Header, 0, blocks[2].Timestamp+2000, nil)
	if err := s.Commit(next, &chain.Undo{Height: 7}, st); err == nil {
		t.Fatal("Commit with an undo record of another height succeeded")
	}
	if !equalDumps(before, dump(t, s)) {
		t.Fatal("a refused Commit changed the database")
	}
	if _, err := s.BlockByHash(rival.Hash()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rival stored: %v", err)
	}
	if h, hash, _ := s.HeadInfo(); h != 2 || hash != blocks[2].Hash() {
		t.Fatal("cached head moved")
	}

	// As a side block it is stored by hash only.
	if err := s.PutBlock(rival); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlock(rival); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BlockByHash(rival.Hash()); err != nil || !reflect.DeepEqual(got, rival) {
		t.Fatalf("side block: %v", err)
	}
	if ok, err := s.HasBlock(rival.Hash()); !ok || err != nil {
		t.Fatalf("HasBlock = %v, %v", ok, err)
	}
	if _, _, err := s.TxLocation(rival.Transactions[0].ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("side block's tx indexed: %v", err)
	}
	if b, _ := s.BlockByHeight(1); b.Hash() != blocks[1].Hash() {
		t.Fatal("side block replaced main chain")
	}
}

func TestOpenInUse(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of the same file succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("second Open took %v", d)
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "is in use by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v", err)
	}
}

func TestMeta(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	if _, err := s.Meta("peers"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent meta: %v", err)
	}
	if err := s.PutMeta("peers", []byte("a,b")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("empty", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{keyHead, keyGenesis, keyGenesisHash, ""} {
		if err := s.PutMeta(k, []byte("x")); err == nil {
			t.Fatalf("PutMeta(%q) succeeded", k)
		}
	}
	if v, err := s.Meta(keyGenesisHash); err != nil || len(v) != 32 {
		t.Fatalf("genesis hash meta: %x, %v", v, err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Meta("peers"); err != nil || string(v) != "a,b" {
		t.Fatalf("meta after reopen = %q, %v", v, err)
	}
	if v, err := s.Meta("empty"); err != nil || len(v) != 0 {
		t.Fatalf("empty meta = %q, %v", v, err)
	}
}

func TestCorruptRecords(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, _ := buildChain(t, s, f, 3)
	put := func(bucket, k, v []byte) {
		t.Helper()
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(k, v) }); err != nil {
			t.Fatal(err)
		}
	}
	wantCorrupt := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", what, err)
		}
	}
	put(bucketUndo, heightKey(2), []byte{1, 2, 3})
	_, err := s.Undo(2)
	wantCorrupt("Undo", err)
	if !strings.Contains(err.Error(), "undo") || !strings.Contains(err.Error(), "0000000000000002") {
		t.Fatalf("corrupt error does not name the record: %v", err)
	}
	// A reorg over the corrupt undo record fails and writes nothing.
	st := mustLoad(t, s)
	before := dump(t, s)
	wantCorrupt("Switch", s.Switch(2, nil, nil, st))
	if !equalDumps(before, dump(t, s)) {
		t.Fatal("failed Switch wrote")
	}

	h3 := blocks[3].Hash()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBodies).Bucket(bodyKey(3, h3)).Put(bodyValue, []byte("garbage"))
	}); err != nil {
		t.Fatal(err)
	}
	_, err = s.BlockByHash(h3)
	wantCorrupt("BlockByHash", err)
	_, err = s.Head()
	wantCorrupt("Head", err)
	// Blocks reads the newest blocks from memory while it holds them (a
	// block never changes under its hash); a store that no longer holds
	// them reads the file.
	if _, err = s.Blocks(0, 10); err != nil {
		t.Fatalf("Blocks of blocks held in memory: %v", err)
	}
	s.recent = recentBlocks{}
	_, err = s.Blocks(0, 10)
	wantCorrupt("Blocks", err)
	_, err = s.Headers(0, 10)
	wantCorrupt("Headers", err)

	tx0 := blocks[1].Transactions[0].ID()
	put(bucketTxSeg, txSegKey(0, tx0), []byte{9})
	_, _, err = s.TxLocation(tx0)
	wantCorrupt("TxLocation", err)

	put(bucketAccounts, []byte(addrOf(f.users[0])), []byte{1, 2})
	_, err = s.LoadState()
	wantCorrupt("LoadState", err)

	put(bucketMain, heightKey(1), []byte{1})
	_, err = s.BlockByHeight(1)
	wantCorrupt("BlockByHeight", err)

	put(bucketMeta, []byte(keyGenesis), []byte("{"))
	_, err = s.Genesis()
	wantCorrupt("Genesis", err)

	// A head that is not the top of main is caught on open.
	put(bucketMeta, []byte(keyHead), make([]byte, 32))
	path := s.Path()
	s.Close()
	if s2, err := Open(path); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("Open with a bad head: %v", err)
	}
}

// TestConcurrentReads runs readers against a committing writer (for -race).
func TestConcurrentReads(t *testing.T) {
	f := newFixture(1)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	st := f.g.State()
	parent := &f.g.Block().Header
	var prepared []*chain.Block
	var undos []*chain.Undo
	var states []*chain.State
	for i := 1; i <= 30; i++ {
		b, u := f.next(t, parent, st, 2000, f.tx(chain.TxTransfer, f.users[0], addrOf(key(400+i)), 1, 1, uint64(i)))
		prepared, undos, states = append(prepared, b), append(undos, u), append(states, st.Clone())
		parent = &b.Header
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h, hash, _ := s.HeadInfo()
				b, err := s.BlockByHeight(h)
				if err != nil {
					errs <- err
					return
				}
				if b.Height != h || b.Hash() != hash {
					errs <- errors.New("wrong block")
					return
				}
				if _, err := s.Head(); err != nil {
					errs <- err
					return
				}
				if _, err := s.LoadState(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i, b := range prepared {
		if err := s.Commit(b, undos[i], states[i]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !mustLoad(t, s).Equal(st) {
		t.Fatal("final state")
	}
}

// TestOldFormatRefused: a chain written before the store had a format key
// (posd before protocol v2) is refused with ErrOldFormat and a message that
// says what to do, by Init and Genesis alike, not read as "corrupt".
func TestOldFormatRefused(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete([]byte(keyFormat)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Init(f.g); !errors.Is(err, ErrOldFormat) || !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("Init on a format-1 store: %v, want ErrOldFormat naming format 1", err)
	}
	if _, err := s.Genesis(); !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Genesis on a format-1 store: %v, want ErrOldFormat", err)
	}
}

// TestRecentBlocks: Blocks hands out the newest blocks appended as they
// were committed (no decoding), keeps at most recentBytes of them, and
// hands out the file's copy of a block stored before under the same hash
// (a hash leaves the header's signature text out).
func TestRecentBlocks(t *testing.T) {
	f := newFixture(2)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	blocks, _, st := buildChain(t, s, f, 3)
	got, err := s.Blocks(1, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("Blocks: %d, %v", len(got), err)
	}
	for i, b := range got {
		if b != blocks[i+1] {
			t.Errorf("height %d: not the block committed", b.Height)
		}
	}

	// The next block, stored first as a side block with its signature in
	// upper case (the same hash), then committed as signed.
	next, u := f.next(t, &blocks[3].Header, st, 2000)
	other := *next
	other.Header.Signature = strings.ToUpper(next.Header.Signature)
	if other.Hash() != next.Hash() || other.Header.Signature == next.Header.Signature {
		t.Fatal("the copy should differ in its signature text alone")
	}
	if err := s.PutBlock(&other); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(next, u, st); err != nil {
		t.Fatal(err)
	}
	got, err = s.Blocks(4, 1)
	if err != nil || len(got) != 1 || got[0].Header.Signature != other.Header.Signature {
		t.Fatalf("Blocks handed out %v (%v), not the file's copy", got, err)
	}

	var r recentBlocks
	const size = recentBytes / 4
	for h := range uint64(6) {
		b := &chain.Block{Header: chain.Header{Height: h}}
		r.add(b.Hash(), b, size)
	}
	if r.bytes > recentBytes || len(r.byHash) != len(r.order) || len(r.order) != 4 || r.get((&chain.Block{Header: chain.Header{Height: 1}}).Hash()) != nil {
		t.Fatalf("over its bound: %d bytes, %d blocks, an old one kept", r.bytes, len(r.order))
	}
	huge := &chain.Block{Header: chain.Header{Height: 9}}
	r.add(huge.Hash(), huge, 2*recentBytes)
	if r.get(huge.Hash()) == nil || len(r.order) != 1 {
		t.Fatalf("the newest block, over the bound alone: kept %v, %d blocks", r.get(huge.Hash()) != nil, len(r.order))
	}
}
