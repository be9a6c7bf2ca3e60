package byzantine

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/poslab/posd/chain"
)

func voteEnv(t *testing.T) Env {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(nil)
	return Env{Genesis: &chain.Genesis{ChainID: "lab-test", Lab: true},
		SignVote: func(v *chain.Vote) { v.Sign("lab-test", priv) }}
}

// honestVotes returns n honest votes h-1 → h, signed.
func honestVotes(env Env, n int) []chain.Vote {
	var out []chain.Vote
	for h := uint64(1); h <= uint64(n); h++ {
		v := chain.Vote{Source: chain.Checkpoint{Height: h - 1, Hash: chain.Hash{byte(h - 1)}}, Target: chain.Checkpoint{Height: h, Hash: chain.Hash{byte(h)}}}
		env.SignVote(&v)
		out = append(out, v)
	}
	return out
}

// slashable counts the pairs among votes that make evidence of kind.
func slashable(votes []chain.Vote, kind chain.EvidenceKind) int {
	n := 0
	for i := range votes {
		for j := i + 1; j < len(votes); j++ {
			if e, err := chain.NewVoteEvidence(&votes[i], &votes[j]); err == nil && e.KindOf() == kind {
				n++
			}
		}
	}
	return n
}

// TestVotingBehaviours: double-vote makes a double vote per vote, every
// one signed validly; surround-vote makes surround votes and no double
// vote; the honest votes alone make none.
func TestVotingBehaviours(t *testing.T) {
	env := voteEnv(t)
	honest := honestVotes(env, 12)
	if n := slashable(honest, chain.EvidenceDoubleVote) + slashable(honest, chain.EvidenceSurroundVote); n != 0 {
		t.Fatalf("honest votes make %d slashable pairs", n)
	}
	b, err := New("double-vote", env)
	if err != nil {
		t.Fatal(err)
	}
	var out []chain.Vote
	for _, v := range honest {
		out = append(out, b.(Voting).Votes([]chain.Vote{v})...)
	}
	for _, v := range out {
		if err := v.VerifySignature("lab-test"); err != nil {
			t.Fatal(err)
		}
	}
	if got := slashable(out, chain.EvidenceDoubleVote); got != 12 || VoteOffences(b) != 12 {
		t.Fatalf("double-vote: %d double votes, %d offences counted, want 12", got, VoteOffences(b))
	}
	s, _ := New("surround-vote", env)
	out = out[:0]
	for _, v := range honest {
		out = append(out, s.(Voting).Votes([]chain.Vote{v})...)
	}
	// A vote cast again for a replaced target gets the same replacement.
	out = append(out, s.(Voting).Votes([]chain.Vote{honest[3]})...)
	if got := slashable(out, chain.EvidenceDoubleVote); got != 0 {
		t.Fatalf("surround-vote made %d double votes", got)
	}
	if got := slashable(out, chain.EvidenceSurroundVote); got == 0 || VoteOffences(s) != 3 {
		t.Fatalf("surround-vote: %d surround pairs, %d offences counted, want some and 3", got, VoteOffences(s))
	}
	if _, ok := Behaviour(&noVote{}).(Voting); ok || !NoVote("no-vote") {
		t.Fatal("no-vote must not vote at all")
	}
	for _, name := range []string{"double-vote", "surround-vote", "no-vote"} {
		if err := Check(name, &chain.Genesis{}); !errors.Is(err, ErrNotLab) {
			t.Fatalf("%s off lab: %v, want ErrNotLab", name, err)
		}
	}
}
