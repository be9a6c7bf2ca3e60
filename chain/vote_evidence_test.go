package chain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestVoteEvidenceRules: every rule of vote evidence, each invalid case
// with its code, for a block at height 10.
func TestVoteEvidenceRules(t *testing.T) {
	g := unbondingGenesis(t, 5)
	const at = 10
	v := testVote
	ev := func(k EvidenceKind, a, b Vote) Evidence { return Evidence{Kind: k, VoteA: a, VoteB: b} }
	double := func(a, b Vote) Evidence { return mustVoteEvidence(t, a, b) }
	okDouble := double(v("alice", 0, 7, 1), v("alice", 0, 7, 2))
	reversed := ev(EvidenceDoubleVote, okDouble.VoteB, okDouble.VoteA)
	badSig := okDouble
	badSig.VoteB.Signature[0] ^= 1
	badSigA := okDouble
	badSigA.VoteA.Signature[5] ^= 1
	other := v("alice", 0, 7, 3)
	other.Sign("another-chain", testKey("alice"))
	wrongChain := mustVoteEvidence(t, okDouble.VoteA, other)
	flat := v("alice", 7, 7, 1) // target not above source

	for _, tc := range []struct {
		name string
		e    Evidence
		code ErrorCode
	}{
		{"double vote: two targets at one height", okDouble, ""},
		{"double vote: two sources for one target", double(v("alice", 0, 7, 1), v("alice", 2, 7, 1)), ""},
		{"surround vote", mustVoteEvidence(t, v("alice", 1, 5, 1), v("alice", 0, 8, 1)), ""},
		{"surround vote at the age limit", mustVoteEvidence(t, v("alice", 1, 3, 1), v("alice", 0, 5, 1)), ""},
		{"two voters", ev(EvidenceDoubleVote, v("alice", 0, 7, 1), v("bob", 0, 7, 2)), ErrBadEvidence.Code},
		{"target not above source", ev(EvidenceDoubleVote, flat, v("alice", 0, 7, 2)), ErrBadEvidence.Code},
		{"one link twice", ev(EvidenceDoubleVote, v("alice", 0, 7, 1), v("alice", 0, 7, 1)), ErrBadEvidence.Code},
		{"double vote at two target heights", ev(EvidenceDoubleVote, v("alice", 0, 6, 1), v("alice", 0, 7, 1)), ErrNotSlashable.Code},
		{"double vote out of order", reversed, ErrBadEvidence.Code},
		{"surround vote that only overlaps", ev(EvidenceSurroundVote, v("alice", 0, 6, 1), v("alice", 1, 7, 1)), ErrNotSlashable.Code},
		{"surround vote with one source", ev(EvidenceSurroundVote, v("alice", 0, 8, 1), v("alice", 0, 6, 1)), ErrNotSlashable.Code},
		{"surround vote, inner first", ev(EvidenceSurroundVote, v("alice", 1, 5, 1), v("alice", 0, 8, 1)), ErrBadEvidence.Code},
		{"offence not below the block", double(v("alice", 0, at, 1), v("alice", 0, at, 2)), ErrBadEvidence.Code},
		{"too old", double(v("alice", 0, 4, 1), v("alice", 0, 4, 2)), ErrEvidenceTooOld.Code},
		{"bad signature of b", badSig, ErrBadEvidence.Code},
		{"bad signature of a", badSigA, ErrBadEvidence.Code},
		{"signed on another chain", wrongChain, ErrBadEvidence.Code},
		{"unknown kind", ev("triple_vote", okDouble.VoteA, okDouble.VoteB), ErrBadEvidence.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Check(g, at)
			if CodeOf(err) != tc.code {
				t.Fatalf("Check: %v, want %q", err, tc.code)
			}
			if tc.code != "" && CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
		})
	}
}

// TestNewVoteEvidence: the pair is classified and ordered whatever order
// it comes in; a pair that is no offence is not evidence.
func TestNewVoteEvidence(t *testing.T) {
	a, b := testVote("alice", 0, 7, 1), testVote("alice", 0, 7, 2)
	x, y := mustVoteEvidence(t, a, b), mustVoteEvidence(t, b, a)
	if x.Kind != EvidenceDoubleVote || x.ID() != y.ID() {
		t.Fatalf("double vote: %s, ids %s %s", x.Kind, x.ID(), y.ID())
	}
	in, out := testVote("alice", 2, 4, 1), testVote("alice", 1, 6, 1)
	s1, s2 := mustVoteEvidence(t, in, out), mustVoteEvidence(t, out, in)
	if s1.Kind != EvidenceSurroundVote || s1.ID() != s2.ID() || s1.VoteA != out {
		t.Fatalf("surround vote: %s, outer first %v", s1.Kind, s1.VoteA == out)
	}
	if s1.Height() != 6 || s1.Forger() != testAddr("alice") {
		t.Fatalf("height %d, offender %s", s1.Height(), s1.Forger())
	}
	for _, tc := range []struct {
		name string
		a, b Vote
		code ErrorCode
	}{
		{"one link", a, a, ErrNotSlashable.Code},
		{"consecutive links", testVote("alice", 1, 2, 1), testVote("alice", 2, 3, 1), ErrNotSlashable.Code},
		{"overlapping", testVote("alice", 0, 3, 1), testVote("alice", 1, 4, 1), ErrNotSlashable.Code},
		{"two voters", a, testVote("bob", 0, 7, 2), ErrBadEvidence.Code},
	} {
		if _, err := NewVoteEvidence(&tc.a, &tc.b); CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.code)
		}
		if slashableVotes(&tc.a, &tc.b) {
			t.Errorf("%s: slashable", tc.name)
		}
	}
	if !slashableVotes(&a, &b) || !slashableVotes(&in, &out) {
		t.Error("slashable pairs not found")
	}
}

// TestVoteEvidenceInBlocks: one item per offence in a block (both vote
// kinds are one offence at one height), already_slashed on the branch.
func TestVoteEvidenceInBlocks(t *testing.T) {
	g := unbondingGenesis(t, 5)
	d := mustVoteEvidence(t, testVote("alice", 0, 7, 1), testVote("alice", 0, 7, 2))
	s := mustVoteEvidence(t, testVote("alice", 1, 6, 1), testVote("alice", 0, 7, 1))
	h := mustVoteEvidence(t, testVote("bob", 0, 7, 1), testVote("bob", 0, 7, 2))
	b := &Block{Header: Header{Height: 10}}
	b.SetEvidence([]Evidence{d, s})
	var ee *EvidenceError
	if err := checkBlockEvidence(g, b); !errors.Is(err, ErrDuplicateEvidence) || !errors.As(err, &ee) || ee.Index != 1 {
		t.Fatalf("a double and a surround vote of alice at 7: %v, want duplicate_evidence at 1", err)
	}
	b.SetEvidence([]Evidence{d, h})
	if err := checkBlockEvidence(g, b); err != nil {
		t.Fatalf("two voters: %v", err)
	}
	st := g.State()
	if _, err := st.Apply(b, g); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.SlashingOf(EvidenceSurroundVote, testAddr("alice"), 7); !ok {
		t.Fatal("the double vote's record does not cover a surround vote at the same height")
	}
	if _, ok := st.Slashed(testAddr("alice"), 7); ok {
		t.Fatal("a vote offence reads as a header equivocation")
	}
	next := &Block{Header: Header{Height: 11}}
	next.SetEvidence([]Evidence{s})
	if _, err := st.Apply(next, g); !errors.Is(err, ErrAlreadySlashed) {
		t.Fatalf("surround vote after the double vote at 7: %v, want already_slashed", err)
	}
	if got := st.Slashings(); len(got) != 2 || got[0].Kind != EvidenceDoubleVote {
		t.Fatalf("slashings %+v", got)
	}
}

// TestVoteEvidenceCodec: vote evidence in blocks (version 4), on its own
// (gossip) and in JSON, with its kind; header evidence keeps its bytes.
func TestVoteEvidenceCodec(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	eq := equivocation(c)
	d := mustVoteEvidence(t, testVote("alice", 0, 1, 1), testVote("alice", 0, 1, 2))
	s := mustVoteEvidence(t, testVote("bob", 1, 2, 1), testVote("bob", 0, 3, 1))

	headerOnly := withEvidence(c, eq)
	if v := EncodeBlock(headerOnly)[0]; v != evidenceCodecVersion {
		t.Fatalf("a block with header evidence only is version %d, want 3", v)
	}
	if got := EncodeEvidence(&eq); string(got[:32]) != string(eq.ParentSeed[:]) || len(got) < minEvidenceLen {
		t.Fatal("header evidence changed its gossip bytes")
	}
	mixed := c.next(0)
	mixed.SetEvidence([]Evidence{eq, d, s})
	mixed.Header.Sign(keyOf(t, c.candidates()[0]))
	enc := EncodeBlock(mixed)
	if enc[0] != votesCodecVersion {
		t.Fatalf("a block with vote evidence is version %d, want 4", enc[0])
	}
	back, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != mixed.Hash() || EvidenceRoot(back.Evidence) != mixed.EvidenceRoot || string(EncodeBlock(back)) != string(enc) {
		t.Fatal("version 4 round trip changed the block")
	}
	for i, k := range []EvidenceKind{EvidenceEquivocation, EvidenceDoubleVote, EvidenceSurroundVote} {
		if back.Evidence[i].Kind != k || back.Evidence[i].ID() != mixed.Evidence[i].ID() {
			t.Fatalf("item %d: kind %s, want %s", i, back.Evidence[i].Kind, k)
		}
	}
	for n := range enc {
		if _, err := DecodeBlock(enc[:n]); err == nil {
			t.Fatalf("decoded a block truncated to %d bytes", n)
		}
	}
	// Version 4 with header evidence only is a second encoding: refused.
	v4 := append([]byte{votesCodecVersion}, EncodeBlock(headerOnly)[1:]...)
	if _, err := DecodeBlock(v4); err == nil {
		t.Fatal("decoded version 4 without vote evidence")
	}

	for _, e := range []Evidence{d, s, eq} {
		data := EncodeEvidence(&e)
		got, err := DecodeEvidence(data)
		if err != nil || got.ID() != e.ID() || got.KindOf() != e.KindOf() {
			t.Fatalf("%s gossip round trip: %v", e.Kind, err)
		}
		for _, bad := range [][]byte{data[:len(data)-1], append(append([]byte{}, data...), 0)} {
			if _, err := DecodeEvidence(bad); err == nil {
				t.Fatalf("%s: decoded %d bad bytes", e.Kind, len(bad))
			}
		}
	}
	bad := EncodeEvidence(&d)
	bad[0] = 1 // an equivocation cannot be this short
	if _, err := DecodeEvidence(bad); err == nil {
		t.Fatal("decoded vote evidence of kind 1")
	}

	js, err := json.Marshal(mixed)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"kind":"equivocation"`, `"kind":"double_vote"`, `"kind":"surround_vote"`, `"voter":"` + string(testAddr("bob"))} {
		if !strings.Contains(string(js), k) {
			t.Fatalf("block JSON lacks %s", k)
		}
	}
	var fromJSON Block
	if err := json.Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if EvidenceRoot(fromJSON.Evidence) != mixed.EvidenceRoot {
		t.Fatal("JSON round trip changed the evidence")
	}
	// JSON written before v3 has no kind: an equivocation.
	old, _ := json.Marshal(eq)
	old = []byte(strings.Replace(string(old), `"kind":"equivocation",`, "", 1))
	var e Evidence
	if err := json.Unmarshal(old, &e); err != nil || e.ID() != eq.ID() || e.Kind != EvidenceEquivocation {
		t.Fatalf("kindless JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"triple_vote","a":{},"b":{}}`), &e); err == nil {
		t.Fatal("decoded an unknown kind")
	}
}

// FuzzDecodeVoteEvidence: version 4 blocks and vote evidence decode
// losslessly or not at all, and their checks answer with a code.
func FuzzDecodeVoteEvidence(f *testing.F) {
	c := newTestChain(f, testGenesis(f))
	d := mustVoteEvidence(f, testVote("alice", 0, 1, 1), testVote("alice", 0, 1, 2))
	s := mustVoteEvidence(f, testVote("bob", 1, 2, 1), testVote("bob", 0, 3, 1))
	b := c.next(0)
	b.SetEvidence([]Evidence{equivocation(c), d, s})
	f.Add(EncodeBlock(b))
	f.Add(EncodeEvidence(&d))
	f.Add(EncodeEvidence(&s))
	g := c.g
	f.Fuzz(func(t *testing.T, data []byte) {
		if blk, err := DecodeBlock(data); err == nil {
			if again := EncodeBlock(blk); string(again) != string(data) {
				t.Fatalf("re-encoding differs")
			}
			if err := checkBlockEvidence(g, blk); err != nil && CodeOf(err) == "" {
				t.Fatalf("evidence error without a code: %v", err)
			}
		}
		if ev, err := DecodeEvidence(data); err == nil {
			if again := EncodeEvidence(ev); string(again) != string(data) {
				t.Fatalf("evidence re-encoding differs")
			}
			if err := ev.Check(g, ev.Height()+1); err != nil && CodeOf(err) == "" {
				t.Fatalf("evidence error without a code: %v", err)
			}
		}
	})
}
