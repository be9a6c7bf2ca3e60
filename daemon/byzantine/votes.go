package byzantine

import (
	"crypto/sha256"
	"sync"

	"github.com/poslab/posd/chain"
)

// The voting misbehaviours (docs/ATTACKS.md, section 6). They forge like
// an honest node; what they change is the votes. The honest voter signs
// its vote and never a slashable pair (daemon/voter keeps the last vote
// on disk); these behaviours sign a second time, with the node key but
// outside the voter (Env.SignVote), so that its protection is bypassed
// on purpose, on lab networks only (Check).

// Voting is a behaviour that changes the votes the node publishes.
type Voting interface {
	Behaviour
	// Votes gets the votes the honest voter just signed and returns the
	// votes to pool and gossip instead.
	Votes(signed []chain.Vote) []chain.Vote
}

// NoVote reports whether a behaviour keeps the node from voting at all.
func NoVote(name string) bool { return name == "no-vote" }

// noVote never votes (the node starts without its voter, as with
// --vote=false), and forges like an honest node: a silent voter.
type noVote struct{ base }

func (*noVote) Name() string { return "no-vote" }

// doubleVote signs, for every vote the voter casts, a second vote for the
// same target height and another hash (a sibling that need not exist) and
// publishes both: a double vote at every height.
type doubleVote struct {
	base
	mu    sync.Mutex
	pairs int
}

func (*doubleVote) Name() string { return "double-vote" }
func (d *doubleVote) Votes(signed []chain.Vote) []chain.Vote {
	out := make([]chain.Vote, 0, 2*len(signed))
	for _, v := range signed {
		twin := v
		twin.Target.Hash = sha256.Sum256(append([]byte("double-vote"), v.Target.Hash[:]...))
		d.env.SignVote(&twin)
		out = append(out, v, twin)
		d.mu.Lock()
		d.pairs++
		d.mu.Unlock()
		d.env.Log.Warn("BYZANTINE double-vote: two votes for one target height", "target", v.Target.Height,
			"a", v.Target.Hash.String(), "b", twin.Target.Hash.String())
	}
	return out
}

// surroundEvery is how often (in votes) surround-vote surrounds one of
// its earlier votes.
const surroundEvery = 4

// maxSurroundMemory bounds the votes surround-vote remembers.
const maxSurroundMemory = 16

// surroundVote votes honestly, except every surroundEvery-th vote, which
// it replaces by a vote for the same target from an older source: the
// new link surrounds the vote it cast before (s' < s < t < t'). The honest
// vote at that target is not published, so the pair is a surround vote
// and not also a double vote; a vote cast again for a target already
// replaced gets the same replacement.
type surroundVote struct {
	base
	mu       sync.Mutex
	n        int
	sent     []chain.Vote          // the votes published, oldest first (bounded)
	replaced map[uint64]chain.Vote // target height → the surrounding vote (bounded)
	made     int
}

func (*surroundVote) Name() string { return "surround-vote" }
func (s *surroundVote) Votes(signed []chain.Vote) []chain.Vote {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]chain.Vote, 0, len(signed))
	for _, v := range signed {
		if r, ok := s.replaced[v.Target.Height]; ok {
			out = append(out, r)
			continue
		}
		s.n++
		if r, ok := s.surround(v); ok && s.n%surroundEvery == 0 {
			s.env.SignVote(&r)
			if len(s.replaced) >= maxSurroundMemory {
				clear(s.replaced)
			}
			s.replaced[v.Target.Height] = r
			s.made++
			s.env.Log.Warn("BYZANTINE surround-vote: a link around an earlier vote",
				"vote", r.Source.String()+"→"+r.Target.String(), "surrounds", s.sent[len(s.sent)-1].Source.String()+"→"+s.sent[len(s.sent)-1].Target.String())
			v = r
		}
		out = append(out, v)
		s.sent = append(s.sent, v)
		if len(s.sent) > maxSurroundMemory {
			s.sent = s.sent[1:]
		}
	}
	return out
}

// surround returns a vote for v's target whose link surrounds the last
// vote published, from the source of an older one; false when no older
// source is low enough yet.
func (s *surroundVote) surround(v chain.Vote) (chain.Vote, bool) {
	if len(s.sent) < 2 {
		return chain.Vote{}, false
	}
	last := s.sent[len(s.sent)-1]
	if last.Target.Height >= v.Target.Height {
		return chain.Vote{}, false
	}
	for i := len(s.sent) - 2; i >= 0; i-- {
		if src := s.sent[i].Source; src.Height < last.Source.Height {
			r := v
			r.Source = src
			return r, true
		}
	}
	return chain.Vote{}, false
}

// VoteOffences is how many slashable pairs a voting behaviour signed (a
// double vote per pair, a surround vote per replacement); 0 for others.
func VoteOffences(b Behaviour) int {
	switch x := b.(type) {
	case *doubleVote:
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.pairs
	case *surroundVote:
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.made
	}
	return 0
}
