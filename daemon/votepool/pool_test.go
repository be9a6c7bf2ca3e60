package votepool

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/poslab/posd/chain"
)

const chainID = "votepool-test"

func key(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

func cp(h uint64, tag byte) chain.Checkpoint {
	c := chain.Checkpoint{Height: h}
	c.Hash[0], c.Hash[1] = byte(h), tag
	return c
}

func vote(k int, s, t uint64) chain.Vote { return voteTag(k, s, t, 0) }

func voteTag(k int, s, t uint64, tag byte) chain.Vote {
	v := chain.Vote{Source: cp(s, 0), Target: cp(t, tag)}
	v.Sign(chainID, key(k))
	return v
}

// block carries votes in a test: blocks have no vote field of their own
// here, so VotesOf reads them from this map.
type blocks map[*chain.Block][]chain.Vote

func (bs blocks) make(h uint64, votes ...chain.Vote) *chain.Block {
	b := &chain.Block{}
	b.Height = h
	bs[b] = votes
	return b
}

func newPool(cfg Config, bs blocks) (*Pool, *[]string) {
	var reports []string
	cfg.ChainID = chainID
	cfg.VotesOf = func(b *chain.Block) []chain.Vote { return bs[b] }
	cfg.OnSlashable = func(a, b chain.Vote, kind string) {
		reports = append(reports, fmt.Sprintf("%s %d→%d %d→%d", kind, a.Source.Height, a.Target.Height, b.Source.Height, b.Target.Height))
	}
	return New(cfg), &reports
}

func TestSlashable(t *testing.T) {
	cases := []struct {
		name string
		a, b chain.Vote
		kind string
	}{
		{"same vote", vote(1, 1, 5), vote(1, 1, 5), ""},
		{"double: other target hash", vote(1, 1, 5), voteTag(1, 1, 5, 9), KindDoubleVote},
		{"double: other source", vote(1, 1, 5), vote(1, 2, 5), KindDoubleVote},
		{"surround", vote(1, 1, 9), vote(1, 2, 8), KindSurroundVote},
		{"surrounded", vote(1, 2, 8), vote(1, 1, 9), KindSurroundVote},
		{"same source, nested target", vote(1, 1, 9), vote(1, 1, 8), ""},
		{"nested, same target height", vote(1, 1, 9), vote(1, 2, 9), KindDoubleVote},
		{"chained", vote(1, 1, 5), vote(1, 5, 9), ""},
		{"overlapping", vote(1, 1, 5), vote(1, 3, 7), ""},
		{"other voters", vote(1, 1, 9), vote(2, 2, 8), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kind, ok := Slashable(&c.a, &c.b)
			if kind != c.kind || ok != (c.kind != "") {
				t.Fatalf("Slashable = %q %v, want %q", kind, ok, c.kind)
			}
		})
	}
}

func TestAddRefusals(t *testing.T) {
	bad := vote(1, 5, 5)
	cases := []struct {
		name  string
		setup func(p *Pool)
		cfg   Config
		v     chain.Vote
		want  error
	}{
		{"target not above source", nil, Config{}, bad, ErrBadVote},
		{"duplicate", func(p *Pool) { p.Add(vote(1, 1, 5)) }, Config{}, vote(1, 1, 5), ErrDuplicate},
		{"final target", func(p *Pool) { p.SetFinalized(5) }, Config{}, vote(1, 1, 5), ErrStaleFinalized},
		{"too old", func(p *Pool) { p.SetHead(100) }, Config{}, vote(1, 1, 35), ErrStaleOld},
		{"unknown voter", nil, Config{Known: func(chain.Address) bool { return false }}, vote(1, 1, 5), ErrUnknownVoter},
		{"voter full", func(p *Pool) {
			for t := uint64(10); t < 12; t++ {
				p.Add(vote(1, 1, t))
			}
		}, Config{MaxPerVoter: 2}, vote(1, 1, 9), ErrVoterFull},
		{"pool full by count", func(p *Pool) { p.Add(vote(1, 1, 5)); p.Add(vote(2, 1, 5)) }, Config{MaxVotes: 2}, vote(3, 1, 5), ErrPoolFull},
		{"pool full by bytes", func(p *Pool) { p.Add(vote(1, 1, 5)) }, Config{MaxBytes: entryBytes + 1}, vote(3, 1, 5), ErrPoolFull},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _ := newPool(c.cfg, blocks{})
			if c.setup != nil {
				c.setup(p)
			}
			n, by := p.Len(), p.Bytes()
			err := p.Add(c.v)
			if !errors.Is(err, c.want) {
				t.Fatalf("Add = %v, want %v", err, c.want)
			}
			if p.Len() != n || p.Bytes() != by {
				t.Fatalf("refused vote changed the pool: %d/%d → %d/%d", n, by, p.Len(), p.Bytes())
			}
			if got := p.Stats().Outcomes[c.want.(*Error).Outcome]; got != 1 {
				t.Fatalf("outcome %s counted %d times", c.want.(*Error).Outcome, got)
			}
		})
	}
}

func TestVoterShareKeepsNewest(t *testing.T) {
	p, _ := newPool(Config{MaxPerVoter: 2}, blocks{})
	for _, tgt := range []uint64{5, 6, 7} {
		if err := p.Add(vote(1, 1, tgt)); err != nil {
			t.Fatal(err)
		}
	}
	got := p.Select(10, nil)
	if len(got) != 2 || got[0].Target.Height != 7 || got[1].Target.Height != 6 {
		t.Fatalf("Select = %v", targets(got))
	}
}

func targets(vs []chain.Vote) []uint64 {
	var out []uint64
	for _, v := range vs {
		out = append(out, v.Target.Height)
	}
	return out
}

func TestSelectOrderAndFilter(t *testing.T) {
	p, _ := newPool(Config{}, blocks{})
	for k, tgt := range []uint64{3, 9, 5, 7} {
		p.Add(vote(k, 1, tgt))
	}
	if got := targets(p.Select(3, nil)); fmt.Sprint(got) != "[9 7 5]" {
		t.Fatalf("Select(3) = %v", got)
	}
	skip7 := func(v *chain.Vote) error {
		if v.Target.Height == 7 {
			return errors.New("not on this branch")
		}
		return nil
	}
	if got := targets(p.Select(10, skip7)); fmt.Sprint(got) != "[9 5 3]" {
		t.Fatalf("Select filtered = %v", got)
	}
	if p.Len() != 4 {
		t.Fatalf("Select changed the pool: %d", p.Len())
	}
}

func TestCommitRevert(t *testing.T) {
	bs := blocks{}
	p, _ := newPool(Config{}, bs)
	a, b := vote(1, 1, 5), vote(2, 1, 5)
	p.Add(a)
	p.Add(b)
	blk := bs.make(6, a)
	p.Committed(blk)
	if p.Len() != 1 || p.Has(a.ID(chainID)) {
		t.Fatalf("committed vote still pooled (len %d)", p.Len())
	}
	if err := p.Add(a); !errors.Is(err, ErrIncluded) {
		t.Fatalf("re-gossiped included vote: %v, want included", err)
	}
	p.Reverted(blk)
	if !p.Has(a.ID(chainID)) || p.Len() != 2 {
		t.Fatalf("reverted vote not back (len %d)", p.Len())
	}
	// A block carrying a vote the pool never saw: after a revert it is pooled.
	c := vote(3, 1, 5)
	blk2 := bs.make(6, c)
	p.Committed(blk2)
	p.Reverted(blk2)
	if !p.Has(c.ID(chainID)) {
		t.Fatal("vote of a reverted block lost")
	}
	// Reverted votes that are stale by then stay out.
	p.SetFinalized(5)
	if p.Len() != 0 {
		t.Fatalf("final-height votes kept: %d", p.Len())
	}
	d := vote(4, 1, 5)
	blk3 := bs.make(6, d)
	p.Committed(blk3)
	p.Reverted(blk3)
	if p.Len() != 0 {
		t.Fatal("stale vote put back")
	}
}

func TestHeadPrunes(t *testing.T) {
	p, _ := newPool(Config{StaleDepth: 4}, blocks{})
	for tgt := uint64(1); tgt <= 10; tgt++ {
		p.Add(vote(int(tgt), 0, tgt))
	}
	p.SetHead(10)
	if got := targets(p.Select(100, nil)); fmt.Sprint(got) != "[10 9 8 7 6]" {
		t.Fatalf("after SetHead(10) with depth 4: %v", got)
	}
	if p.Bytes() != 5*entryBytes {
		t.Fatalf("bytes %d after pruning", p.Bytes())
	}
}

func TestSlashableReports(t *testing.T) {
	bs := blocks{}
	p, reports := newPool(Config{MaxPerVoter: 1}, bs)
	p.Add(vote(1, 2, 8))
	p.Add(vote(1, 2, 8))       // duplicate: nothing
	p.Add(vote(1, 1, 9))       // surrounds 2→8 (and displaces it from the pool)
	p.Add(voteTag(1, 1, 9, 7)) // double with 1→9, but the first pair found is with 2→8
	p.Add(vote(1, 9, 10))      // fine
	p.SetFinalized(20)
	p.Add(vote(1, 3, 4)) // stale, still evidence: surrounded by 2→8 and 1→9
	p.Committed(bs.make(21, vote(2, 1, 5), vote(2, 2, 5)))
	want := []string{
		"surround_vote 2→8 1→9",
		"surround_vote 2→8 1→9",
		"surround_vote 2→8 3→4",
		"double_vote 1→5 2→5",
	}
	if fmt.Sprint(*reports) != fmt.Sprint(want) {
		t.Fatalf("reports:\n%v\nwant\n%v", *reports, want)
	}
	s := p.Stats()
	if s.DoubleVotes != 1 || s.SurroundVotes != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHistoryBounded(t *testing.T) {
	p, reports := newPool(Config{History: 4, HistoryVoters: 2}, blocks{})
	for tgt := uint64(10); tgt < 20; tgt++ {
		p.Add(vote(1, tgt-1, tgt))
	}
	v1 := vote(1, 0, 1)
	p.mu.Lock()
	n := len(p.hist[v1.Voter()].Value.(*voterHist).votes)
	p.mu.Unlock()
	if n != 4 {
		t.Fatalf("history holds %d votes, want 4", n)
	}
	// Surrounding a remembered vote (18→19) is found.
	p.Add(vote(1, 17, 20))
	if len(*reports) != 1 {
		t.Fatalf("reports %v", *reports)
	}
	for k := 2; k < 6; k++ {
		p.Add(vote(k, 1, 5))
	}
	p.mu.Lock()
	voters := p.histLRU.Len()
	p.mu.Unlock()
	if voters != 2 {
		t.Fatalf("history of %d voters, want 2", voters)
	}
}

func TestConcurrent(t *testing.T) {
	bs := blocks{}
	p, _ := newPool(Config{}, bs)
	blk := bs.make(3, vote(1, 1, 2))
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				p.Add(vote(g*100+i, 1, uint64(2+i%5)))
				p.Select(8, nil)
			}
		}()
	}
	for range 50 {
		p.Committed(blk)
		p.Reverted(blk)
	}
	for range 4 {
		<-done
	}
	if p.Len() == 0 {
		t.Fatal("nothing pooled")
	}
}
