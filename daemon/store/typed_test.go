package store

import (
	"crypto/ed25519"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// typedChain is a chain whose blocks touch every table of the state:
// unbonding (and its release), a slashing, the finality record.
type typedChain struct {
	f      *fixture
	blocks []*chain.Block
	undos  []*chain.Undo
	states []*chain.State // the state after each block (0: genesis)
}

// voteEvidence is a double vote by k at target height h.
func voteEvidence(tb testing.TB, g *chain.Genesis, k ed25519.PrivateKey, h uint64) chain.Evidence {
	tb.Helper()
	a := chain.Vote{Target: chain.Checkpoint{Height: h, Hash: chain.Hash{1}}}
	b := chain.Vote{Target: chain.Checkpoint{Height: h, Hash: chain.Hash{2}}}
	a.Sign(g.ChainID, k)
	b.Sign(g.ChainID, k)
	e, err := chain.NewVoteEvidence(&a, &b)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// buildTyped makes n blocks (n >= 5) without committing them: block 1 stakes,
// block 2 unstakes (released at 2 + unbonding_blocks = 5) and slashes the
// forger for a double vote, block 3 changes the finality record (as the
// finality rules will: the undo keeps the record before).
func buildTyped(t *testing.T, n int) *typedChain {
	t.Helper()
	f := newFixture(1)
	f.g.UnbondingBlocks = 3
	c := &typedChain{f: f, blocks: []*chain.Block{f.g.Block()}, undos: []*chain.Undo{nil}}
	st := f.g.State()
	c.states = []*chain.State{st.Clone()}
	u0 := f.users[0]
	for h := 1; h <= n; h++ {
		parent := &c.blocks[h-1].Header
		var txs []chain.Transaction
		var ev []chain.Evidence
		switch h {
		case 1:
			txs = []chain.Transaction{f.tx(chain.TxStake, u0, "", 1000, 1, 1)}
		case 2:
			txs = []chain.Transaction{f.tx(chain.TxUnstake, u0, "", 400, 1, 2)}
			ev = []chain.Evidence{voteEvidence(t, f.g, f.forger, 1)}
		}
		b := chain.NewBlock(f.g, parent, 0, parent.Timestamp+2000, txs)
		if ev != nil {
			b.SetEvidence(ev)
		}
		b.Header.Sign(f.forger)
		u, err := st.Apply(b, f.g)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		if h == 3 {
			prev, _ := st.Finality().MarshalBinary()
			u.Finality = prev
			st.SetFinality(&chain.Finality{Justified: chain.Checkpoint{Height: 2, Hash: c.blocks[2].Hash()}})
		}
		c.blocks, c.undos, c.states = append(c.blocks, b), append(c.undos, u), append(c.states, st.Clone())
	}
	return c
}

// sameState compares every table, and the release queue as the accounts
// need it.
func sameState(t *testing.T, where string, got, want *chain.State) {
	t.Helper()
	if !got.Equal(want) || !slices.Equal(got.Accounts(), want.Accounts()) || !slices.Equal(got.Slashings(), want.Slashings()) || !got.Finality().Equal(want.Finality()) {
		t.Fatalf("%s: state differs\n got %+v %+v %+v\nwant %+v %+v %+v", where, got.Accounts(), got.Slashings(), got.Finality().Justified, want.Accounts(), want.Slashings(), want.Finality().Justified)
	}
	for _, e := range got.Accounts() {
		if e.Unbonding > 0 && !slices.Contains(got.Releasing(e.Release), e.Address) {
			t.Fatalf("%s: %s unbonding until %d is not in the loaded release queue", where, e.Address.Short(), e.Release)
		}
	}
}

// TestTypedStateRoundTrip: accounts with unbonding, slashings, the
// finality record and the typed undo records are stored with each block,
// read back after a reopen, and a Switch that reverts them deletes what
// the reverted blocks added.
func TestTypedStateRoundTrip(t *testing.T) {
	c := buildTyped(t, 6)
	s, path := openTemp(t)
	mustInit(t, s, c.f.g)
	for h := 1; h <= 6; h++ {
		if err := s.Commit(c.blocks[h], c.undos[h], c.states[h]); err != nil {
			t.Fatalf("commit %d: %v", h, err)
		}
		if h == 3 {
			st := mustLoad(t, s)
			sameState(t, "after block 3", st, c.states[3])
			if acc := st.Account(addrOf(c.f.users[0])); acc.Unbonding != 400 || acc.Release != 5 {
				t.Fatalf("unbonding after block 3: %+v", acc)
			}
			if len(st.Slashings()) != 1 || st.Slashings()[0].Kind != chain.EvidenceDoubleVote || st.Slashings()[0].Burned != 250 {
				t.Fatalf("slashings %+v", st.Slashings())
			}
		}
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sameState(t, "after reopen", mustLoad(t, s), c.states[6])
	if acc := mustLoad(t, s).Account(addrOf(c.f.users[0])); acc.Unbonding != 0 {
		t.Fatalf("not released at 5: %+v", acc)
	}
	for h := 1; h <= 6; h++ {
		u, err := s.Undo(uint64(h))
		if err != nil || !reflect.DeepEqual(u, c.undos[h]) {
			t.Fatalf("undo %d: %+v %v, want %+v", h, u, err, c.undos[h])
		}
	}
	r, err := s.Verify(64)
	if err != nil || len(r.Problems) > 1 {
		t.Fatalf("Verify: %v %v", err, r.Problems)
	}
	// The replay knows no finality rules yet, so only the record differs.
	if r.Slashings != 1 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "finality") {
		t.Fatalf("Verify report %+v", r)
	}
	// Back to block 1: the slashing, the unbonding and the record go.
	if err := s.Switch(5, nil, nil, c.states[1]); err != nil {
		t.Fatal(err)
	}
	sameState(t, "after switching back to block 1", mustLoad(t, s), c.states[1])
	if n := len(dump(t, s)[string(bucketSlashings)]); n != 0 {
		t.Fatalf("%d slashings left in the bucket", n)
	}
	// And forward again in one switch.
	if err := s.Switch(0, c.blocks[2:], c.undos[2:], c.states[6]); err != nil {
		t.Fatal(err)
	}
	sameState(t, "after switching forward", mustLoad(t, s), c.states[6])
}

// TestTypedCrashBeforeHead: a crash inside the block's write transaction,
// after every table was written, leaves none of them changed: the block,
// its undo record, the accounts, the slashing and the finality record
// come in one commit or not at all.
func TestTypedCrashBeforeHead(t *testing.T) {
	c := buildTyped(t, 3)
	s, path := openTemp(t)
	mustInit(t, s, c.f.g)
	if err := s.Commit(c.blocks[1], c.undos[1], c.states[1]); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("power cut")
	for _, h := range []int{2, 3} { // block 2 slashes and unbonds; block 3 moves the finality record
		before := dump(t, s)
		testHookBeforeHead = func() error { return crash }
		err := s.Commit(c.blocks[h], c.undos[h], c.states[h])
		testHookBeforeHead = nil
		if !errors.Is(err, crash) {
			t.Fatalf("block %d: commit with a crash: %v", h, err)
		}
		if !equalDumps(before, dump(t, s)) {
			t.Fatalf("block %d: a crashed commit changed the file", h)
		}
		sameState(t, "after a crash", mustLoad(t, s), c.states[h-1])
		if err := s.Commit(c.blocks[h], c.undos[h], c.states[h]); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sameState(t, "after reopen", mustLoad(t, s), c.states[3])
}

// TestFormat2Refused: a store of protocol v2 is refused by Init and
// Genesis with one line saying what to do, and posd check says so too.
func TestFormat2Refused(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(keyFormat), []byte("2")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Init(f.g)
	if !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Init on a format-2 store: %v, want ErrOldFormat", err)
	}
	for _, want := range []string{"format 2", "format " + currentFormat, "protocol v3", "start over", "devnet --reset"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the refusal %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("the refusal is not one line: %q", err)
	}
	if _, err := s.Genesis(); !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Genesis on a format-2 store: %v, want ErrOldFormat", err)
	}
	r, err := s.Verify(64)
	if err != nil || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "store format 2") {
		t.Fatalf("Verify of a format-2 store: %v %v", err, r.Problems)
	}
	if err := s.PutMeta(keyFormat, []byte(currentFormat)); err == nil {
		t.Fatal("PutMeta wrote the format key")
	}
}

// TestTypedRecordsBounded: stored slashings and finality records that do
// not decode are reported as corrupt, never trusted or a panic.
func TestTypedRecordsBounded(t *testing.T) {
	c := buildTyped(t, 3)
	for _, tc := range []struct {
		name   string
		bucket []byte
		key    []byte
		value  []byte
	}{
		{"slashing value short", bucketSlashings, slashingKey(chain.Slashing{Kind: chain.EvidenceDoubleVote, Forger: addrOf(key(0)), Height: 1}), []byte{2, 0}},
		{"slashing kind unknown", bucketSlashings, slashingKey(chain.Slashing{Forger: addrOf(key(0)), Height: 1}), append([]byte{9}, make([]byte, 16)...)},
		{"slashing kind under another class", bucketSlashings, slashingKey(chain.Slashing{Forger: addrOf(key(0)), Height: 1}), append([]byte{2}, make([]byte, 16)...)},
		{"slashing key short", bucketSlashings, []byte{1, 0}, append([]byte{1}, make([]byte, 16)...)},
		{"finality record short", bucketMeta, []byte(keyFinality), []byte{1, 2, 3}},
		{"finality record huge", bucketMeta, []byte(keyFinality), make([]byte, maxFinalityLen+1)},
		{"account unbonding without release", bucketAccounts, []byte(addrOf(key(1))), encodeAccount(chain.Account{Balance: 1, Unbonding: 2})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			mustInit(t, s, c.f.g)
			if err := s.Commit(c.blocks[1], c.undos[1], c.states[1]); err != nil {
				t.Fatal(err)
			}
			if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(tc.bucket).Put(tc.key, tc.value) }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.LoadState(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("LoadState: %v, want ErrCorrupt", err)
			}
			if r, err := s.Verify(64); err != nil || r.OK() {
				t.Fatalf("Verify: %v, problems %v", err, r.Problems)
			}
		})
	}
}
