package store

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

func lvOf(s, t uint64) LastVote {
	return LastVote{Source: chain.Checkpoint{Height: s, Hash: chain.Hash{byte(s)}}, Target: chain.Checkpoint{Height: t, Hash: chain.Hash{byte(t), 1}}}
}

func TestLastVoteAdvance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	voter := addrOf(key(1))
	if _, ok, err := s.LastVote(voter); ok || err != nil {
		t.Fatalf("fresh store: ok=%v err=%v", ok, err)
	}
	if err := s.AdvanceLastVote(voter, lvOf(2, 5)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		lv   LastVote
		want error
	}{
		{"same target", lvOf(2, 5), ErrVoteRegress},
		{"lower target", lvOf(3, 4), ErrVoteRegress},
		{"lower source", lvOf(1, 6), ErrVoteRegress},
		{"no link", lvOf(7, 7), ErrVoteRegress},
		{"forward", lvOf(2, 6), nil},
		{"forward, higher source", lvOf(5, 8), nil},
	}
	for _, c := range cases {
		before, _, _ := s.LastVote(voter)
		err := s.AdvanceLastVote(voter, c.lv)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		after, _, _ := s.LastVote(voter)
		if c.want != nil && after != before {
			t.Fatalf("%s: refused link changed the record", c.name)
		}
		if c.want == nil && after != c.lv {
			t.Fatalf("%s: record %v, want %v", c.name, after, c.lv)
		}
	}
	if s.WriteErr() != nil {
		t.Fatalf("refused links counted as disk faults: %v", s.WriteErr())
	}
	other := addrOf(key(2))
	if _, ok, _ := s.LastVote(other); ok {
		t.Fatal("a record for a key that never voted")
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, ok, err := s.LastVote(voter); !ok || err != nil || got != lvOf(5, 8) {
		t.Fatalf("after reopen: %v %v %v", got, ok, err)
	}
	// A corrupt record: reads say so, and nothing advances past it.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLastVote).Put([]byte(other), []byte{9, 9})
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LastVote(other); !errors.Is(err, ErrLastVoteCorrupt) {
		t.Fatalf("corrupt record read: %v", err)
	}
	if err := s.AdvanceLastVote(other, lvOf(1, 100)); !errors.Is(err, ErrLastVoteCorrupt) {
		t.Fatalf("advance over a corrupt record: %v", err)
	}
}

// TestLastVotesBatch: one transaction for several keys; a refused link
// leaves the others recorded.
func TestLastVotesBatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b, c := addrOf(key(1)), addrOf(key(2)), addrOf(key(3))
	if err := s.AdvanceLastVote(b, lvOf(3, 9)); err != nil {
		t.Fatal(err)
	}
	errs, err := s.AdvanceLastVotes([]chain.Address{a, b, c}, []LastVote{lvOf(3, 5), lvOf(3, 5), lvOf(3, 5)})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrVoteRegress) || errs[2] != nil {
		t.Fatalf("errs %v", errs)
	}
	for addr, want := range map[chain.Address]LastVote{a: lvOf(3, 5), b: lvOf(3, 9), c: lvOf(3, 5)} {
		if got, ok, _ := s.LastVote(addr); !ok || got != want {
			t.Fatalf("%s: %v, want %v", addr, got, want)
		}
	}
	if _, err := s.AdvanceLastVotes([]chain.Address{a}, nil); err == nil {
		t.Fatal("mismatched lengths taken")
	}
}
