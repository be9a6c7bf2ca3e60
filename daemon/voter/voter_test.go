package voter

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/daemon/votepool"
)

const chainID = "voter-test"

func testKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

func addrOf(k ed25519.PrivateKey) chain.Address {
	return chain.AddressOf(k.Public().(ed25519.PublicKey))
}

// model is a block tree with a head and, per block, the justified
// checkpoint the chain claims on its branch. It may claim anything (the
// voter's safety must not depend on the chain being right).
type model struct {
	mu        sync.Mutex
	parent    map[chain.Hash]chain.Hash
	height    map[chain.Hash]uint64
	justified map[chain.Hash]chain.Checkpoint
	all       []chain.Hash
	head      chain.Hash
	stake     map[chain.Address]uint64
	next      uint64
	salt      uint64 // makes the hashes of one model differ from another's
}

func newModel() *model {
	m := &model{parent: map[chain.Hash]chain.Hash{}, height: map[chain.Hash]uint64{},
		justified: map[chain.Hash]chain.Checkpoint{}, stake: map[chain.Address]uint64{}}
	g := m.newHash()
	m.height[g] = 0
	m.justified[g] = chain.Checkpoint{Height: 0, Hash: g}
	m.all = append(m.all, g)
	m.head = g
	return m
}

func (m *model) newHash() chain.Hash {
	m.next++
	var h chain.Hash
	binary.BigEndian.PutUint64(h[:], m.next)
	binary.BigEndian.PutUint64(h[8:], m.salt)
	return h
}

// extend adds a child of parent, with a justified checkpoint that is
// usually the parent's or a higher ancestor, sometimes any ancestor.
func (m *model) extend(parent chain.Hash, r *rand.Rand) chain.Hash {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.newHash()
	m.parent[b] = parent
	m.height[b] = m.height[parent] + 1
	m.all = append(m.all, b)
	j := m.justified[parent]
	switch x := r.IntN(50); {
	case x < 25: // justification advances to an ancestor above it
		if m.height[parent] > j.Height {
			h := j.Height + 1 + uint64(r.IntN(int(m.height[parent]-j.Height)))
			j = chain.Checkpoint{Height: h, Hash: m.ancestor(b, h)}
		}
	case x == 25: // a chain that claims any ancestor (even lower)
		h := uint64(r.IntN(int(m.height[b])))
		j = chain.Checkpoint{Height: h, Hash: m.ancestor(b, h)}
	}
	m.justified[b] = j
	m.head = b
	return b
}

func (m *model) ancestor(b chain.Hash, h uint64) chain.Hash {
	for m.height[b] > h {
		b = m.parent[b]
	}
	return b
}

func (m *model) setHead(b chain.Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.head = b
}

func (m *model) Tip() (head, justified chain.Checkpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return chain.Checkpoint{Height: m.height[m.head], Hash: m.head}, m.justified[m.head]
}

func (m *model) HashAt(head chain.Hash, h uint64) (chain.Hash, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.height[head]; !ok || h > m.height[head] {
		return chain.Hash{}, false
	}
	return m.ancestor(head, h), true
}

func (m *model) StakeOf(a chain.Address) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stake[a]
}

// memStore is a Store in memory. With forget, a restart loses it: the
// control that shows the property test can fail.
type memStore struct {
	mu sync.Mutex
	m  map[chain.Address]store.LastVote
}

func (s *memStore) LastVote(a chain.Address) (store.LastVote, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lv, ok := s.m[a]
	return lv, ok, nil
}

func (s *memStore) AdvanceLastVotes(as []chain.Address, lvs []store.LastVote) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(as))
	for i, a := range as {
		lv := lvs[i]
		if last, ok := s.m[a]; ok && (lv.Target.Height <= last.Target.Height || lv.Source.Height < last.Source.Height) {
			errs[i] = store.ErrVoteRegress
			continue
		}
		s.m[a] = lv
	}
	return errs, nil
}

// run drives a voter through random heads, reorgs, restarts and crashes
// and returns every vote it signed (published or not).
type run struct {
	t       *testing.T
	r       *rand.Rand
	m       *model
	keys    []ed25519.PrivateKey
	epoch   uint64
	open    func() (Store, func())
	signed  []chain.Vote
	crashes int
	v       *Voter
	closeFn func()
}

func (rn *run) start() {
	st, closeFn := rn.open()
	v, err := New(Config{ChainID: chainID, EpochBlocks: rn.epoch, Keys: rn.keys, Chain: rn.m, Store: st})
	if err != nil {
		rn.t.Fatal(err)
	}
	v.afterPersist = func(chain.Address, store.LastVote) bool {
		if rn.r.IntN(20) == 0 {
			rn.crashes++
			return false // killed between the record and the signature
		}
		return true
	}
	v.afterSign = func(vote chain.Vote) bool {
		rn.signed = append(rn.signed, vote)
		if rn.r.IntN(20) == 0 {
			rn.crashes++
			return false // killed after signing, before publishing
		}
		return true
	}
	rn.v, rn.closeFn = v, closeFn
}

func (rn *run) restart() {
	rn.closeFn()
	rn.start()
}

func (rn *run) steps(n int) {
	rn.start()
	defer func() { rn.closeFn() }()
	for range n {
		switch x := rn.r.IntN(100); {
		case x < 60:
			rn.m.extend(rn.m.head, rn.r)
		case x < 72: // reorg to a recent block, maybe lower
			rn.m.setHead(rn.m.all[max(0, len(rn.m.all)-1-rn.r.IntN(30))])
		case x < 75: // reorg to any known block
			rn.m.setHead(rn.m.all[rn.r.IntN(len(rn.m.all))])
		case x < 90: // a fork from a recent ancestor, then grows
			b := rn.m.all[max(0, len(rn.m.all)-1-rn.r.IntN(20))]
			for range 1 + rn.r.IntN(4) {
				b = rn.m.extend(b, rn.r)
			}
		default:
			rn.restart()
			continue
		}
		rn.v.OnHead()
		if rn.v.crashed {
			rn.restart()
		}
	}
}

// slashablePairs returns the slashable pairs among votes.
func slashablePairs(votes []chain.Vote) []string {
	var out []string
	for i := range votes {
		for j := i + 1; j < len(votes); j++ {
			if kind, ok := votepool.Slashable(&votes[i], &votes[j]); ok {
				out = append(out, kind)
			}
		}
	}
	return out
}

func newRun(t *testing.T, seed uint64, epoch uint64, open func() (Store, func())) *run {
	m := newModel()
	keys := []ed25519.PrivateKey{testKey(1), testKey(2), testKey(3)}
	m.stake[addrOf(keys[0])] = 10
	m.stake[addrOf(keys[1])] = 5 // keys[2] has none: never votes
	return &run{t: t, r: rand.New(rand.NewPCG(seed, 7)), m: m, keys: keys, epoch: epoch, open: open}
}

func boltOpener(t *testing.T) func() (Store, func()) {
	path := filepath.Join(t.TempDir(), "chain.db")
	return func() (Store, func()) {
		s, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return s, func() { s.Close() }
	}
}

// TestNeverSlashable: random heads, reorgs, restarts (the bbolt file
// reopened) and crashes at both dangerous instants never make a key sign
// a slashable pair.
func TestNeverSlashable(t *testing.T) {
	for _, c := range []struct {
		seed, epoch uint64
	}{{1, 1}, {2, 1}, {3, 4}} {
		rn := newRun(t, c.seed, c.epoch, boltOpener(t))
		rn.steps(2000)
		if pairs := slashablePairs(rn.signed); len(pairs) > 0 {
			t.Fatalf("seed %d: %d slashable pairs among %d votes: %v", c.seed, len(pairs), len(rn.signed), pairs[:min(5, len(pairs))])
		}
		// The test has teeth only if the voter voted through the dangers.
		if len(rn.signed) < int(150/c.epoch) || rn.crashes < 10 {
			t.Fatalf("seed %d: only %d votes and %d crashes", c.seed, len(rn.signed), rn.crashes)
		}
		for _, v := range rn.signed {
			if v.Voter() == addrOf(rn.keys[2]) {
				t.Fatal("a key without stake voted")
			}
			if v.Target.Height%c.epoch != 0 {
				t.Fatalf("target %d is not a checkpoint of epoch %d", v.Target.Height, c.epoch)
			}
			if err := v.VerifySignature(chainID); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("seed %d epoch %d: %d votes, %d crashes, no slashable pair", c.seed, c.epoch, len(rn.signed), rn.crashes)
	}
}

// TestForgetfulStoreIsCaught is the control: the same schedule with a
// record that a restart loses does sign slashable pairs, and the check
// finds them.
func TestForgetfulStoreIsCaught(t *testing.T) {
	rn := newRun(t, 1, 1, func() (Store, func()) {
		return &memStore{m: map[chain.Address]store.LastVote{}}, func() {}
	})
	rn.steps(400)
	if len(slashablePairs(rn.signed)) == 0 {
		t.Fatal("a voter that forgets its last vote on restart signed no slashable pair: the check has no teeth")
	}
}

// TestRules: the voter's decision on one head, table-driven.
func TestRules(t *testing.T) {
	k := testKey(1)
	cp := func(h uint64, tag byte) chain.Checkpoint {
		return chain.Checkpoint{Height: h, Hash: chain.Hash{byte(h), tag}}
	}
	type lv = store.LastVote
	cases := []struct {
		name      string
		last      *lv
		head, jus chain.Checkpoint
		stake     uint64
		want      string
	}{
		{"first vote", nil, cp(5, 0), cp(3, 0), 1, OutcomeSigned},
		{"higher target, same source", &lv{Source: cp(3, 0), Target: cp(4, 0)}, cp(5, 0), cp(3, 0), 1, OutcomeSigned},
		{"same target height, other branch", &lv{Source: cp(3, 0), Target: cp(5, 0)}, cp(5, 1), cp(3, 0), 1, OutcomeNotHigher},
		{"lower target", &lv{Source: cp(3, 0), Target: cp(6, 0)}, cp(5, 0), cp(4, 0), 1, OutcomeNotHigher},
		{"lower source (would surround)", &lv{Source: cp(3, 0), Target: cp(4, 0)}, cp(5, 0), cp(2, 0), 1, OutcomeSourceLower},
		{"head is justified", nil, cp(5, 0), cp(5, 0), 1, OutcomeNoLink},
		{"no stake", nil, cp(5, 0), cp(3, 0), 0, OutcomeNoStake},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &memStore{m: map[chain.Address]store.LastVote{}}
			if c.last != nil {
				st.m[addrOf(k)] = *c.last
			}
			ch := &fixedChain{head: c.head, jus: c.jus, stake: c.stake}
			var published []chain.Vote
			v, err := New(Config{ChainID: chainID, Keys: []ed25519.PrivateKey{k}, Chain: ch, Store: st,
				Publish: func(vs []chain.Vote) { published = append(published, vs...) }})
			if err != nil {
				t.Fatal(err)
			}
			before := st.m[addrOf(k)]
			got := v.OnHead()
			if n := v.Counts()[c.want]; n != 1 {
				t.Fatalf("outcomes %v, want %s", v.Counts(), c.want)
			}
			if c.want != OutcomeSigned {
				if len(got) != 0 || len(published) != 0 || st.m[addrOf(k)] != before {
					t.Fatalf("refused vote changed something: %v %v", got, st.m)
				}
				return
			}
			if len(got) != 1 || len(published) != 1 || got[0].Target != c.head || got[0].Source != c.jus {
				t.Fatalf("votes %v published %v", got, published)
			}
			if st.m[addrOf(k)] != (lv{Source: c.jus, Target: c.head}) {
				t.Fatal("record not advanced")
			}
			if len(v.OnHead()) != 0 {
				t.Fatal("voted twice on one head")
			}
		})
	}
}

type fixedChain struct {
	head, jus chain.Checkpoint
	stake     uint64
}

func (c *fixedChain) Tip() (chain.Checkpoint, chain.Checkpoint) { return c.head, c.jus }
func (c *fixedChain) HashAt(chain.Hash, uint64) (chain.Hash, bool) {
	return chain.Hash{}, false
}
func (c *fixedChain) StakeOf(chain.Address) uint64 { return c.stake }

// failingStore fails every write.
type failingStore struct{ memStore }

func (*failingStore) AdvanceLastVotes([]chain.Address, []store.LastVote) ([]error, error) {
	return nil, errors.New("disk full")
}

func TestNoVoteWithoutRecord(t *testing.T) {
	ch := &fixedChain{head: chain.Checkpoint{Height: 5}, jus: chain.Checkpoint{Height: 1}, stake: 1}
	v, err := New(Config{ChainID: chainID, Keys: []ed25519.PrivateKey{testKey(1)}, Chain: ch,
		Store: &failingStore{memStore{m: map[chain.Address]store.LastVote{}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.OnHead(); len(got) != 0 || v.Counts()[OutcomeStoreFailed] != 1 {
		t.Fatalf("voted without a durable record: %v %v", got, v.Counts())
	}
}

// TestCrashAfterPersist: a crash between the record and the signature
// loses that vote; after a restart the same head is not voted again, the
// next one is.
func TestCrashAfterPersist(t *testing.T) {
	m := newModel()
	k := testKey(1)
	m.stake[addrOf(k)] = 1
	r := rand.New(rand.NewPCG(1, 1))
	m.extend(m.head, r)
	m.extend(m.head, r)
	open := boltOpener(t)
	st, closeFn := open()
	v, _ := New(Config{ChainID: chainID, Keys: []ed25519.PrivateKey{k}, Chain: m, Store: st})
	v.afterPersist = func(chain.Address, store.LastVote) bool { return false }
	if got := v.OnHead(); len(got) != 0 {
		t.Fatal("signed after a crash")
	}
	closeFn()
	st, closeFn = open()
	defer closeFn()
	v, _ = New(Config{ChainID: chainID, Keys: []ed25519.PrivateKey{k}, Chain: m, Store: st})
	if got := v.OnHead(); len(got) != 0 || v.Counts()[OutcomeNotHigher] != 1 {
		t.Fatalf("after restart on the same head: %v %v", got, v.Counts())
	}
	m.extend(m.head, r)
	if got := v.OnHead(); len(got) != 1 {
		t.Fatalf("no vote on the next head: %v", v.Counts())
	}
}

// TestKillNine kills a voting process with SIGKILL at random instants,
// 20 times, restarting it on the same bbolt file each time with a chain
// view of its own (other hashes, heights from 0, reorgs): among every
// vote any of the processes signed and let out, no slashable pair. The
// control runs the same with a record that does not survive the process,
// and must find pairs.
func TestKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 30 processes")
	}
	run := func(t *testing.T, kills int, mem bool) []chain.Vote {
		dir := t.TempDir()
		db, logPath := filepath.Join(dir, "chain.db"), filepath.Join(dir, "votes.log")
		for i := range kills {
			cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "VOTER_CHILD=1", "VOTER_DB="+db, "VOTER_LOG="+logPath, fmt.Sprintf("VOTER_SEED=%d", i+1))
			if mem {
				cmd.Env = append(cmd.Env, "VOTER_MEM=1")
			}
			before := countLines(t, logPath)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill once it has let out a vote, at a random instant after.
			waitFor(t, 30*time.Second, "a vote from the child", func() bool { return countLines(t, logPath) > before })
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()
		}
		return readVotes(t, logPath)
	}
	t.Run("bbolt record", func(t *testing.T) {
		votes := run(t, 20, false)
		if pairs := slashablePairs(votes); len(pairs) > 0 {
			t.Fatalf("%d slashable pairs among %d votes of 20 killed processes", len(pairs), len(votes))
		}
		t.Logf("20 kills, %d votes, no slashable pair", len(votes))
	})
	t.Run("control: record lost with the process", func(t *testing.T) {
		if votes := run(t, 5, true); len(slashablePairs(votes)) == 0 {
			t.Fatalf("no slashable pair among %d votes of processes that forget: the test has no teeth", len(votes))
		}
	})
}

// TestKillNineChild is the voting process of TestKillNine.
func TestKillNineChild(t *testing.T) {
	if os.Getenv("VOTER_CHILD") == "" {
		t.Skip("run by TestKillNine")
	}
	var seed uint64
	fmt.Sscan(os.Getenv("VOTER_SEED"), &seed)
	r := rand.New(rand.NewPCG(seed, 99))
	m := newModel()
	m.salt = seed
	keys := []ed25519.PrivateKey{testKey(1), testKey(2)}
	for _, k := range keys {
		m.stake[addrOf(k)] = 1
	}
	var st Store = &memStore{m: map[chain.Address]store.LastVote{}}
	if os.Getenv("VOTER_MEM") == "" {
		s, err := store.Open(os.Getenv("VOTER_DB"))
		if err != nil {
			t.Fatal(err)
		}
		st = s
	}
	logf, err := os.OpenFile(os.Getenv("VOTER_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{ChainID: chainID, Keys: keys, Chain: m, Store: st,
		Publish: func(votes []chain.Vote) {
			for i := range votes {
				// One write per vote: what is in the log was let out.
				logf.Write([]byte(hex.EncodeToString(chain.EncodeVote(&votes[i])) + "\n"))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // the parent kills it long before
	for time.Now().Before(deadline) {
		switch x := r.IntN(10); {
		case x < 7:
			m.extend(m.head, r)
		case x < 9:
			m.setHead(m.all[max(0, len(m.all)-1-r.IntN(10))])
		default:
			b := m.all[max(0, len(m.all)-1-r.IntN(10))]
			m.extend(b, r)
		}
		v.OnHead()
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func readVotes(t *testing.T, path string) []chain.Vote {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []chain.Vote
	for line := range strings.Lines(string(b)) {
		raw, err := hex.DecodeString(strings.TrimSpace(line))
		if err != nil {
			continue // a line cut by the kill
		}
		v, err := chain.DecodeVote(raw)
		if err != nil {
			continue
		}
		if err := v.VerifySignature(chainID); err != nil {
			t.Fatal(err)
		}
		out = append(out, *v)
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkOnHead: a head's votes by 1 and by 4 keys with the records in
// a real bbolt file (one fsynced transaction per head): the voter's cost
// on the way to finality.
func BenchmarkOnHead(b *testing.B) {
	for _, nkeys := range []int{1, 4} {
		b.Run(fmt.Sprintf("keys=%d", nkeys), func(b *testing.B) {
			m := newModel()
			var keys []ed25519.PrivateKey
			for i := range nkeys {
				keys = append(keys, testKey(i))
				m.stake[addrOf(keys[i])] = 1
			}
			s, err := store.Open(filepath.Join(b.TempDir(), "chain.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			v, _ := New(Config{ChainID: chainID, Keys: keys, Chain: m, Store: s})
			r := rand.New(rand.NewPCG(1, 1))
			b.ResetTimer()
			for range b.N {
				m.extend(m.head, r)
				if len(v.OnHead()) != nkeys {
					b.Fatal("a key did not vote")
				}
			}
		})
	}
}
