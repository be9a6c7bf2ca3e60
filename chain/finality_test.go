package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// threeStakers: alice, bob and carol hold 10 lots each (30 in all), so
// two of them are exactly 2/3: not enough, and all three are.
func threeStakers(g *Genesis) {
	g.Allocations[0].Stake = 10
	g.Allocations[1].Stake = 10
	g.Allocations[2].Stake = 10
}

// vote signs name's vote for source → target on the test chain.
func vote(name string, source, target Checkpoint) Vote {
	v := Vote{Source: source, Target: target}
	v.Sign(testChainID, testKey(name))
	return v
}

// cpAt is the checkpoint of c's main chain at height.
func (c *testChain) cpAt(height uint64) Checkpoint {
	return Checkpoint{Height: height, Hash: c.headers[height].Hash()}
}

// withVotes builds a signed rank-0 block on the tip carrying votes.
func withVotes(c *testChain, votes ...Vote) *Block {
	c.t.Helper()
	b := c.next(0)
	b.SetVotes(votes)
	b.Header.Sign(keyOf(c.t, c.candidates()[0]))
	return b
}

// allVote is the votes of names for the tip state's link justified → latest.
func allVote(c *testChain, names ...string) []Vote {
	f := c.state.Finality()
	var vs []Vote
	for _, n := range names {
		vs = append(vs, vote(n, f.Justified, f.Latest()))
	}
	return vs
}

// TestFinalityTrailsHead: with more than 2/3 of the lots voting for every
// new head, and epoch_blocks 1, the block two below the head is final and
// the one below it justified; with exactly 2/3 nothing is ever justified.
func TestFinalityTrailsHead(t *testing.T) {
	c := newTestChain(t, testGenesis(t, threeStakers))
	if f := c.state.Finality(); f.Justified != c.cpAt(0) || f.Finalized != c.cpAt(0) || !f.IsFinal(0) {
		t.Fatalf("genesis record: %+v", f)
	}
	c.accept(withVotes(c))
	for h := uint64(2); h <= 80; h++ {
		c.accept(withVotes(c, allVote(c, "alice", "bob", "carol")...))
		f := c.state.Finality()
		if f.Justified != c.cpAt(h-1) || f.Finalized != c.cpAt(h-2) {
			t.Fatalf("after block %d: justified %s, final %s; want %d and %d", h, f.Justified, f.Finalized, h-1, h-2)
		}
		if f.IsFinal(h-1) || !f.IsFinal(h-2) {
			t.Fatalf("after block %d: IsFinal wrong", h)
		}
	}
	if n := len(c.state.Finality().entries); n > maxFinalityEntries {
		t.Fatalf("record keeps %d checkpoints", n)
	}

	two := newTestChain(t, testGenesis(t, threeStakers))
	two.accept(withVotes(two))
	for range 10 {
		two.accept(withVotes(two, allVote(two, "alice", "bob")...))
	}
	if f := two.state.Finality(); f.Justified.Height != 0 || f.Finalized.Height != 0 {
		t.Fatalf("exactly 2/3 justified something: %+v", f)
	}
	info, ok := two.state.Finality().Tally(two.cpAt(10))
	if !ok || len(info.Links) != 1 || info.Links[0].Lots != 20 || info.Links[0].Total != 30 || info.Links[0].Supermajority {
		t.Fatalf("tally of 10: %+v", info)
	}
	if m := info.Links[0].Missing; len(m) != 1 || m[0].Voter != testAddr("carol") || m[0].Lots != 10 {
		t.Fatalf("missing: %+v", m)
	}
}

// TestFinalityEpochs: with epoch_blocks 3 only multiples of 3 are
// checkpoints, and a justified link from one to the next finalizes it.
func TestFinalityEpochs(t *testing.T) {
	c := newTestChain(t, testGenesis(t, threeStakers, func(g *Genesis) { g.EpochBlocks = 3 }))
	for range 4 {
		c.accept(withVotes(c))
	}
	if got := c.state.Finality().Latest(); got != c.cpAt(3) {
		t.Fatalf("latest %s, want 3", got)
	}
	c.accept(withVotes(c, allVote(c, "alice", "bob", "carol")...)) // 0 → 3
	if f := c.state.Finality(); f.Justified != c.cpAt(3) || f.Finalized.Height != 0 {
		t.Fatalf("after 0→3: %+v", f)
	}
	c.accept(withVotes(c))                                         // 6
	c.accept(withVotes(c, allVote(c, "alice", "bob", "carol")...)) // 3 → 6
	if f := c.state.Finality(); f.Justified != c.cpAt(6) || f.Finalized != c.cpAt(3) {
		t.Fatalf("after 3→6: justified %s final %s", f.Justified, f.Finalized)
	}
}

// TestVoteBlockRules is the conformance table of votes in blocks: each
// case breaks one rule and expects its code; the state (accounts and
// finality record) is left alone.
func TestVoteBlockRules(t *testing.T) {
	// onTwo builds blocks 1 and 2 (2 carrying everyone's 0 → 1), so 1 is
	// justified and 0 → 1 counted.
	onTwo := func(c *testChain) {
		c.accept(withVotes(c))
		c.accept(withVotes(c, allVote(c, "alice", "bob", "carol")...))
	}
	tests := []struct {
		name    string
		genesis []func(*Genesis)
		build   func(c *testChain) *Block
		want    *RuleError
	}{
		{"valid votes", nil, func(c *testChain) *Block {
			onTwo(c)
			return withVotes(c, allVote(c, "alice", "bob")...)
		}, nil},
		{"target not above source", nil, func(c *testChain) *Block {
			onTwo(c)
			return withVotes(c, vote("alice", c.cpAt(1), c.cpAt(1)))
		}, ErrBadVote},
		{"vote root not the votes'", nil, func(c *testChain) *Block {
			onTwo(c)
			b := withVotes(c, allVote(c, "alice")...)
			b.Votes = append(b.Votes, allVote(c, "bob")...)
			return b
		}, ErrBadVoteRoot},
		{"vote root without votes", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.VoteRoot = Hash{1}
			b.Header.Sign(keyOf(c.t, c.candidates()[0]))
			return b
		}, ErrBadVoteRoot},
		{"more votes than max_block_votes", []func(*Genesis){func(g *Genesis) { g.MaxBlockVotes = 2 }}, func(c *testChain) *Block {
			c.accept(withVotes(c))
			return withVotes(c, allVote(c, "alice", "bob", "carol")...)
		}, ErrTooManyVotes},
		{"bad vote signature", nil, func(c *testChain) *Block {
			onTwo(c)
			vs := allVote(c, "alice", "bob")
			vs[1].Signature = vs[0].Signature
			return withVotes(c, vs...)
		}, ErrBadVoteSig},
		{"vote signed for another chain", nil, func(c *testChain) *Block {
			onTwo(c)
			v := Vote{Source: c.cpAt(1), Target: c.cpAt(2)}
			v.Sign("elsewhere", testKey("alice"))
			return withVotes(c, v)
		}, ErrBadVoteSig},
		{"target is the block itself", nil, func(c *testChain) *Block {
			onTwo(c)
			return withVotes(c, vote("alice", c.cpAt(1), Checkpoint{Height: 3, Hash: Hash{3}}))
		}, ErrVoteFutureTarget},
		{"target more than 64 heights below", nil, func(c *testChain) *Block {
			onTwo(c)
			for range 64 {
				c.accept(withVotes(c))
			}
			return withVotes(c, vote("alice", c.cpAt(1), c.cpAt(2))) // block 67, target 2
		}, ErrVoteTooOld},
		{"target 64 heights below is accepted", nil, func(c *testChain) *Block {
			onTwo(c)
			for range 63 {
				c.accept(withVotes(c))
			}
			return withVotes(c, vote("alice", c.cpAt(1), c.cpAt(2))) // block 66, target 2
		}, nil},
		{"target on another branch", nil, func(c *testChain) *Block {
			onTwo(c)
			other := c.cpAt(2)
			other.Hash[0] ^= 1
			return withVotes(c, vote("alice", c.cpAt(1), other))
		}, ErrVoteUnknownCheckpoint},
		{"source on another branch", nil, func(c *testChain) *Block {
			onTwo(c)
			other := c.cpAt(1)
			other.Hash[0] ^= 1
			return withVotes(c, vote("alice", other, c.cpAt(2)))
		}, ErrVoteUnknownCheckpoint},
		{"target not a checkpoint (epoch_blocks 2)", []func(*Genesis){func(g *Genesis) { g.EpochBlocks = 2 }}, func(c *testChain) *Block {
			c.accept(withVotes(c))
			c.accept(withVotes(c))
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(0), c.cpAt(3)))
		}, ErrVoteUnknownCheckpoint},
		{"source not justified", nil, func(c *testChain) *Block {
			onTwo(c)
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(2), c.cpAt(3)))
		}, ErrVoteSourceNotJustified},
		{"voter without stake", nil, func(c *testChain) *Block {
			onTwo(c)
			return withVotes(c, vote("dave", c.cpAt(1), c.cpAt(2)))
		}, ErrVoteNoStake},
		{"stake added after the source weighs nothing", nil, func(c *testChain) *Block {
			c.accept(c.next(0, signedTx(TxExchange, "dave", testAddr("dave"), 50, 0, 1), signedTx(TxStake, "dave", testAddr("dave"), 50, 0, 2)))
			return withVotes(c, vote("dave", c.cpAt(0), c.cpAt(1)))
		}, ErrVoteNoStake},
		{"stake added before the source counts", nil, func(c *testChain) *Block {
			c.accept(c.next(0, signedTx(TxExchange, "dave", testAddr("dave"), 50, 0, 1), signedTx(TxStake, "dave", testAddr("dave"), 50, 0, 2)))
			vs := allVote(c, "alice", "bob", "carol") // 0 → 1, weighed at genesis
			c.accept(withVotes(c, vs...))             // justifies 1
			c.accept(withVotes(c))
			return withVotes(c, vote("dave", c.cpAt(1), c.cpAt(2)))
		}, nil},
		{"vote already counted on the branch", nil, func(c *testChain) *Block {
			onTwo(c)
			return withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1)))
		}, ErrVoteAlreadyCounted},
		{"the same vote twice in the block", nil, func(c *testChain) *Block {
			onTwo(c)
			v := vote("alice", c.cpAt(1), c.cpAt(2))
			return withVotes(c, v, v)
		}, ErrDuplicateVote},
		{"a vote's source justified earlier in the same block", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			c.accept(withVotes(c))
			vs := []Vote{vote("alice", c.cpAt(0), c.cpAt(1)), vote("bob", c.cpAt(0), c.cpAt(1)), vote("carol", c.cpAt(0), c.cpAt(1))}
			return withVotes(c, append(vs, vote("alice", c.cpAt(1), c.cpAt(2)))...)
		}, nil},
		{"a vote's source justified only later in the block", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			c.accept(withVotes(c))
			vs := []Vote{vote("alice", c.cpAt(1), c.cpAt(2)), vote("alice", c.cpAt(0), c.cpAt(1)), vote("bob", c.cpAt(0), c.cpAt(1)), vote("carol", c.cpAt(0), c.cpAt(1))}
			return withVotes(c, vs...)
		}, ErrVoteSourceNotJustified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gs := append([]func(*Genesis){threeStakers}, tc.genesis...)
			c := newTestChain(t, testGenesis(t, gs...))
			b := tc.build(c)
			before := c.state.Clone()
			beforeFin, _ := c.state.Finality().MarshalBinary()
			checkPrecheckedAgrees(t, c, b)
			_, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid block refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || CodeOf(err) != tc.want.Code {
				t.Fatalf("got %v, want code %s", err, tc.want.Code)
			}
			afterFin, _ := c.state.Finality().MarshalBinary()
			if !c.state.Equal(before) || !bytes.Equal(beforeFin, afterFin) {
				t.Fatalf("refused block changed the state")
			}
			// CheckVote, a pool's question, gives the stateful codes too.
			stateful := map[ErrorCode]bool{ErrBadVote.Code: true, ErrVoteFutureTarget.Code: true, ErrVoteTooOld.Code: true,
				ErrVoteUnknownCheckpoint.Code: true, ErrVoteSourceNotJustified.Code: true, ErrVoteNoStake.Code: true, ErrVoteAlreadyCounted.Code: true}
			if stateful[tc.want.Code] && len(b.Votes) == 1 {
				if err := c.state.CheckVote(c.g, &b.Votes[0], b.Height); CodeOf(err) != tc.want.Code {
					t.Fatalf("CheckVote: %v, want %s", err, tc.want.Code)
				}
			}
		})
	}
}

// TestFinalityRevertAndEncoding: Revert restores the record from its
// encoding in the undo, and every record of a chain round-trips through
// its canonical encoding.
func TestFinalityRevertAndEncoding(t *testing.T) {
	c := newTestChain(t, testGenesis(t, threeStakers))
	var undos []*Undo
	var recs [][]byte
	enc := func() []byte { b, _ := c.state.Finality().MarshalBinary(); return b }
	recs = append(recs, enc())
	undos = append(undos, c.accept(withVotes(c)))
	recs = append(recs, enc())
	for i := range 70 {
		vs := allVote(c, "alice", "bob", "carol")
		if i%5 == 3 {
			vs = vs[:2] // a stall: nothing justified this block
		}
		var txs []Transaction
		if i%7 == 0 { // stakes change: the next checkpoint gets its own table
			txs = append(txs, signedTx(TxStake, "bob", testAddr("bob"), 1, 0, uint64(i/7+1)))
		}
		b := c.next(0, txs...)
		b.SetVotes(vs)
		b.Header.Sign(keyOf(t, c.candidates()[0]))
		undos = append(undos, c.accept(b))
		recs = append(recs, enc())
	}
	for i, data := range recs {
		var f Finality
		if err := f.UnmarshalBinary(data); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		again, _ := f.MarshalBinary()
		if !bytes.Equal(again, data) {
			t.Fatalf("record %d: re-encoding differs", i)
		}
	}
	// Tables are shared: far fewer than checkpoints.
	var f Finality
	f.UnmarshalBinary(recs[len(recs)-1])
	tables := map[*WeightTable]bool{}
	for _, e := range f.entries {
		tables[e.table] = true
	}
	if len(tables) >= len(f.entries)/2 {
		t.Fatalf("%d tables for %d checkpoints", len(tables), len(f.entries))
	}
	for i := len(undos) - 1; i >= 0; i-- {
		c.state.Revert(undos[i])
		if got := enc(); !bytes.Equal(got, recs[i]) {
			t.Fatalf("revert of block %d: record differs", i+1)
		}
	}
	// Bad encodings are refused, never a panic.
	last := recs[len(recs)-1]
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{9}, last[1:]...),
		"truncated": last[:len(last)-1],
		"trailing":  append(append([]byte{}, last...), 0),
		"huge count": func() []byte {
			b := append([]byte{}, last[:1+80+8+1]...)
			return append(b, 0xff, 0xff, 0xff, 0x0f)
		}(),
	} {
		var f Finality
		if err := f.UnmarshalBinary(bad); !errors.Is(err, ErrDecode) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestBlockWithVotesCodec: blocks with votes round-trip through the
// binary codec (version 4) and JSON; blocks without keep versions 2 and 3.
func TestBlockWithVotesCodec(t *testing.T) {
	c := newTestChain(t, testGenesis(t, threeStakers))
	c.accept(withVotes(c))
	b := withVotes(c, allVote(c, "alice", "bob", "carol")...)
	data := EncodeBlock(b)
	if data[0] != votesCodecVersion {
		t.Fatalf("version %d", data[0])
	}
	back, err := DecodeBlock(data)
	if err != nil || back.Hash() != b.Hash() || len(back.Votes) != 3 || back.Votes[2] != b.Votes[2] || back.VoteRoot != b.VoteRoot {
		t.Fatalf("round trip: %v", err)
	}
	js, _ := json.Marshal(b)
	var fromJSON Block
	if err := json.Unmarshal(js, &fromJSON); err != nil || fromJSON.Hash() != b.Hash() || len(fromJSON.Votes) != 3 {
		t.Fatalf("json round trip: %v", err)
	}
	if !bytes.Contains(js, []byte(`"vote_root":"`)) || !bytes.Contains(js, []byte(`"votes":[`)) {
		t.Fatalf("json lacks votes: %.300s", js)
	}
	plain := c.next(0)
	if EncodeBlock(plain)[0] != blockCodecVersion {
		t.Fatal("a block without votes left version 2")
	}
	pj, _ := json.Marshal(plain)
	if bytes.Contains(pj, []byte("vote")) {
		t.Fatalf("json of a block without votes mentions votes: %s", pj)
	}
	// A header with only an evidence root and one with only a vote root
	// (the same value) never share their signing bytes.
	h1, h2 := plain.Header, plain.Header
	h1.EvidenceRoot, h2.VoteRoot = Hash{7}, Hash{7}
	if bytes.Equal(h1.SigningBytes(), h2.SigningBytes()) {
		t.Fatal("evidence root and vote root are confused")
	}
	// Version 4 for a block version 2 would write, too many votes, votes
	// that do not fit, and a bad vote inside are refused.
	v4 := plain.Header.appendV4([]byte{votesCodecVersion})
	v4 = append(v4, 0, 0, 0)
	if _, err := DecodeBlock(v4); !errors.Is(err, ErrDecode) {
		t.Fatalf("version 4 without votes: %v", err)
	}
	huge := append(plain.Header.appendV4([]byte{votesCodecVersion}), 0, 0, 0xc1, 0x20) // 4161 votes
	if _, err := DecodeBlock(huge); !errors.Is(err, ErrDecode) {
		t.Fatalf("4161 votes: %v", err)
	}
	bad := append([]byte{}, data...)
	bad[len(bad)-EncodedVoteLen] = 9
	if _, err := DecodeBlock(bad); !errors.Is(err, ErrDecode) {
		t.Fatalf("a vote of version 9: %v", err)
	}
	// Evidence of headers with votes keeps their vote roots, in a block
	// and on its own.
	e := NewEvidence(Hash{1}, &b.Header, &plain.Header)
	eb := c.next(0)
	eb.Evidence = []Evidence{e}
	back, err = DecodeBlock(EncodeBlock(eb))
	if err != nil || back.Evidence[0].ID() != e.ID() {
		t.Fatalf("evidence of headers with votes in a block: %v", err)
	}
	be, err := DecodeEvidence(EncodeEvidence(&e))
	if err != nil || be.ID() != e.ID() {
		t.Fatalf("evidence of headers with votes on its own: %v", err)
	}
}

// TestVerifyVotes: the batch path agrees with single checks, one error per vote.
func TestVerifyVotes(t *testing.T) {
	var vs []Vote
	for i := range 100 {
		vs = append(vs, vote([]string{"alice", "bob", "carol"}[i%3], Checkpoint{Height: uint64(i)}, Checkpoint{Height: uint64(i + 1)}))
	}
	vs[17].Signature[3] ^= 1
	vs[60].Source.Height++
	errs := NewSigVerifier(0).VerifyVotes(testChainID, vs)
	for i, err := range errs {
		single := vs[i].VerifySignature(testChainID)
		if (err == nil) != (single == nil) || (i == 17 || i == 60) != (err != nil) {
			t.Fatalf("vote %d: batch %v, single %v", i, err, single)
		}
		if err != nil && !errors.Is(err, ErrBadVoteSig) {
			t.Fatalf("vote %d: %v", i, err)
		}
	}
	var ve *VoteError
	if err := NewSigVerifier(0).CheckVotes(testChainID, vs); !errors.As(err, &ve) || ve.Index != 17 {
		t.Fatalf("CheckVotes: %v, want vote 17", err)
	}
}

// TestSlashableVotes pins the two commandments.
func TestSlashableVotes(t *testing.T) {
	cp := func(h uint64, b byte) Checkpoint { return Checkpoint{Height: h, Hash: Hash{b}} }
	tests := []struct {
		name string
		a, b Vote
		want string
	}{
		{"same vote", vote("alice", cp(1, 1), cp(2, 2)), vote("alice", cp(1, 1), cp(2, 2)), ""},
		{"double vote: two targets at one height", vote("alice", cp(1, 1), cp(2, 2)), vote("alice", cp(1, 1), cp(2, 3)), SlashDoubleVote},
		{"double vote: two sources, one target", vote("alice", cp(1, 1), cp(3, 3)), vote("alice", cp(2, 2), cp(3, 3)), SlashDoubleVote},
		{"surround", vote("alice", cp(1, 1), cp(5, 5)), vote("alice", cp(2, 2), cp(4, 4)), SlashSurroundVote},
		{"surrounded", vote("alice", cp(2, 2), cp(4, 4)), vote("alice", cp(1, 1), cp(5, 5)), SlashSurroundVote},
		{"same source, nested targets", vote("alice", cp(1, 1), cp(5, 5)), vote("alice", cp(1, 1), cp(4, 4)), ""},
		{"honest sequence", vote("alice", cp(1, 1), cp(2, 2)), vote("alice", cp(2, 2), cp(3, 3)), ""},
		{"overlap", vote("alice", cp(1, 1), cp(3, 3)), vote("alice", cp(2, 2), cp(4, 4)), ""},
		{"two voters", vote("alice", cp(1, 1), cp(2, 2)), vote("bob", cp(1, 1), cp(2, 3)), ""},
	}
	for _, tc := range tests {
		kind, ok := SlashableVotes(&tc.a, &tc.b)
		if kind != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: %q %v, want %q", tc.name, kind, ok, tc.want)
		}
	}
}

// FuzzDecodeVote: the vote codec never panics, and whatever decodes
// re-encodes to the same bytes and checks with a code.
func FuzzDecodeVote(f *testing.F) {
	v := vote("alice", Checkpoint{Height: 1, Hash: Hash{1}}, Checkpoint{Height: 2, Hash: Hash{2}})
	f.Add(EncodeVote(&v))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeVote(data)
		if err != nil {
			return
		}
		if again := EncodeVote(v); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs")
		}
		if err := v.CheckStateless(); err != nil && CodeOf(err) == "" {
			t.Fatalf("error without a code: %v", err)
		}
		if err := v.VerifySignature(testChainID); err != nil && CodeOf(err) == "" {
			t.Fatalf("error without a code: %v", err)
		}
	})
}

// FuzzDecodeBlockWithVotes: version 4 blocks decode losslessly or not at
// all, and their vote rules answer with a code, never a panic.
func FuzzDecodeBlockWithVotes(f *testing.F) {
	c := newTestChain(f, testGenesis(f, threeStakers))
	c.accept(withVotes(c))
	b := withVotes(c, allVote(c, "alice", "bob", "carol")...)
	f.Add(EncodeBlock(b))
	st, g := c.state, c.g
	f.Fuzz(func(t *testing.T, data []byte) {
		blk, err := DecodeBlock(data)
		if err != nil {
			return
		}
		if again := EncodeBlock(blk); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs")
		}
		if h, err := DecodeHeader(data); err != nil || *h != blk.Header {
			t.Fatalf("DecodeHeader: %v, or another header", err)
		}
		if err := checkBlockVotes(g, blk); err != nil && CodeOf(err) == "" {
			t.Fatalf("vote error without a code: %v", err)
		}
		for i := range blk.Votes {
			if err := st.CheckVote(g, &blk.Votes[i], blk.Height); err != nil && CodeOf(err) == "" {
				t.Fatalf("vote error without a code: %v", err)
			}
		}
	})
}

// FuzzFinalityRecord: the record decoder never panics and accepts only
// canonical encodings.
func FuzzFinalityRecord(f *testing.F) {
	c := newTestChain(f, testGenesis(f, threeStakers))
	c.accept(withVotes(c))
	c.accept(withVotes(c, allVote(c, "alice", "bob", "carol")...))
	data, _ := c.state.Finality().MarshalBinary()
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Finality
		if r.UnmarshalBinary(data) != nil {
			return
		}
		if again, _ := r.MarshalBinary(); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// TestGenesisV3Params: absent v3 parameters take their defaults and leave
// the hash as it was; other values change it; bad ones are refused.
func TestGenesisV3Params(t *testing.T) {
	g := testGenesis(t)
	data, _ := json.Marshal(g)
	var m map[string]any
	json.Unmarshal(data, &m)
	for _, k := range []string{"epoch_blocks", "max_block_votes", "unbonding_blocks"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("genesis JSON lacks %s: %s", k, data)
		}
		delete(m, k)
	}
	old, _ := json.Marshal(m)
	parsed, err := ParseGenesis(old)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.EpochBlocks != DefaultEpochBlocks || parsed.MaxBlockVotes != DefaultMaxBlockVotes || parsed.UnbondingBlocks != DefaultUnbondingBlocks {
		t.Fatalf("defaults not applied: %+v", parsed)
	}
	if parsed.Hash() != g.Hash() {
		t.Fatal("a genesis without v3 parameters changed hash")
	}
	for name, mut := range map[string]func(*Genesis){
		"epoch_blocks":     func(g *Genesis) { g.EpochBlocks = 2 },
		"max_block_votes":  func(g *Genesis) { g.MaxBlockVotes = 10 },
		"unbonding_blocks": func(g *Genesis) { g.UnbondingBlocks = 100 },
	} {
		if testGenesis(t, mut).Hash() == g.Hash() {
			t.Errorf("%s is not covered by the hash", name)
		}
	}
	p := DefaultGenesisParams()
	p.EpochBlocks, p.UnbondingBlocks = 4, 30
	built, err := p.Build(time.UnixMilli(1), []Allocation{{Address: testAddr("alice"), Stake: 1}})
	if err != nil || built.EpochBlocks != 4 || built.UnbondingBlocks != 30 || built.MaxBlockVotes != DefaultMaxBlockVotes {
		t.Fatalf("Build: %v %+v", err, built)
	}
	for name, mut := range map[string]func(*Genesis){
		"chain id with 0x00":        func(g *Genesis) { g.ChainID = "a\x00b" },
		"epoch_blocks 0":            func(g *Genesis) { g.EpochBlocks = 0 },
		"epoch_blocks over 64":      func(g *Genesis) { g.EpochBlocks = MaxEpochBlocks + 1 },
		"max_block_votes 0":         func(g *Genesis) { g.MaxBlockVotes = 0 },
		"max_block_votes over 4096": func(g *Genesis) { g.MaxBlockVotes = MaxBlockVotesLimit + 1 },
		"unbonding_blocks 0":        func(g *Genesis) { g.UnbondingBlocks = 0 },
	} {
		bad := testGenesis(t)
		mut(bad)
		if err := bad.Validate(); !errors.Is(err, ErrBadGenesis) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseGenesis([]byte(`{"chain_id":"x","epoch_blocks":0,"allocations":[{"address":"` + string(testAddr("alice")) + `","stake":1}]}`)); !errors.Is(err, ErrBadGenesis) {
		t.Fatalf("explicit epoch_blocks 0: %v", err)
	}
}
