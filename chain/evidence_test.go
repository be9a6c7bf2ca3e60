package chain

import (
	"encoding/json"
	"errors"
	"testing"
)

// pair forges two different blocks for the slot after c's tip, by the
// rank-0 candidate, without accepting either.
func pair(c *testChain) (*Block, *Block) {
	c.t.Helper()
	x := c.next(0)
	y := c.next(0, signedTx(TxTransfer, "carol", testAddr("bob"), 1, 0, 1))
	return x, y
}

// equivocation accepts the first of a pair and returns the evidence.
func equivocation(c *testChain) Evidence {
	c.t.Helper()
	parent := *c.tip()
	x, y := pair(c)
	c.accept(x)
	return NewEvidence(parent.Seed, &x.Header, &y.Header)
}

// withEvidence builds a signed rank-0 block on the tip carrying ev.
func withEvidence(c *testChain, ev ...Evidence) *Block {
	c.t.Helper()
	b := c.next(0)
	b.SetEvidence(ev)
	b.Header.Sign(keyOf(c.t, c.candidates()[0]))
	return b
}

func twoStakers(g *Genesis) { g.Allocations[1].Stake = 6 }

// TestEvidenceRules is the conformance table of evidence: each case
// breaks one rule and expects its code, and the state is left alone.
func TestEvidenceRules(t *testing.T) {
	resign := func(c *testChain, h *Header) {
		h.Signature = ""
		h.Sign(keyOf(c.t, h.Forger))
	}
	tests := []struct {
		name    string
		genesis []func(*Genesis)
		build   func(c *testChain) *Block
		want    *RuleError
	}{
		{"valid evidence", nil, func(c *testChain) *Block { return withEvidence(c, equivocation(c)) }, nil},
		{"valid, two forgers", []func(*Genesis){twoStakers}, func(c *testChain) *Block {
			e1 := equivocation(c)
			return withEvidence(c, e1, equivocation(c))
		}, nil},
		{"headers at different heights", nil, func(c *testChain) *Block {
			e := equivocation(c)
			x, _ := pair(c)
			c.accept(x)
			e.B = x.Header
			return withEvidence(c, NewEvidence(e.ParentSeed, &e.A, &e.B))
		}, ErrBadEvidence},
		{"headers on different parents", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.B.PrevHash[0] ^= 1
			resign(c, &e.B)
			return withEvidence(c, NewEvidence(e.ParentSeed, &e.A, &e.B))
		}, ErrBadEvidence},
		{"headers of different forgers", []func(*Genesis){twoStakers}, func(c *testChain) *Block {
			e := equivocation(c)
			other := testKey("bob")
			if e.A.Forger == testAddr("bob") {
				other = testKey("alice")
			}
			e.B.Sign(other)
			return withEvidence(c, NewEvidence(e.ParentSeed, &e.A, &e.B))
		}, ErrBadEvidence},
		{"one header twice", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.B = e.A
			return withEvidence(c, e)
		}, ErrBadEvidence},
		{"headers out of order", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.A, e.B = e.B, e.A
			return withEvidence(c, e)
		}, ErrBadEvidence},
		{"a header's signature does not verify", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.B.Signature = e.A.Signature
			return withEvidence(c, e)
		}, ErrBadEvidence},
		{"a header's signature is not hex", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.A.Signature = "zz" + e.A.Signature[2:]
			return withEvidence(c, e)
		}, ErrBadEvidence},
		{"headers of another chain", nil, func(c *testChain) *Block {
			e := equivocation(c)
			for _, h := range []*Header{&e.A, &e.B} {
				h.ProveSeed(keyOf(c.t, h.Forger), "elsewhere", e.ParentSeed)
				resign(c, h)
			}
			return withEvidence(c, NewEvidence(e.ParentSeed, &e.A, &e.B))
		}, ErrBadEvidence},
		{"wrong parent seed", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.ParentSeed[0] ^= 1
			return withEvidence(c, e)
		}, ErrBadEvidence},
		{"forger key not the forger's", nil, func(c *testChain) *Block {
			e := equivocation(c)
			e.A.Forger, e.B.Forger = testAddr("dave"), testAddr("dave")
			return withEvidence(c, e)
		}, ErrBadEvidence},
		{"evidence of the block's own height", nil, func(c *testChain) *Block {
			parent := *c.tip()
			x, y := pair(c)
			x.SetEvidence([]Evidence{NewEvidence(parent.Seed, &x.Header, &y.Header)})
			x.Header.Sign(keyOf(c.t, x.Forger))
			return x
		}, ErrBadEvidence},
		{"evidence max_reorg old is accepted", nil, func(c *testChain) *Block {
			e := equivocation(c)
			for c.tip().Height < MaxEvidenceAge {
				c.accept(c.next(0))
			}
			return withEvidence(c, e)
		}, nil},
		{"evidence older than max_reorg", nil, func(c *testChain) *Block {
			e := equivocation(c)
			for c.tip().Height < MaxEvidenceAge+1 {
				c.accept(c.next(0))
			}
			return withEvidence(c, e)
		}, ErrEvidenceTooOld},
		{"one equivocation twice in a block", nil, func(c *testChain) *Block {
			e := equivocation(c)
			return withEvidence(c, e, e)
		}, ErrDuplicateEvidence},
		{"already slashed on this branch", nil, func(c *testChain) *Block {
			e := equivocation(c)
			c.accept(withEvidence(c, e))
			return withEvidence(c, e)
		}, ErrAlreadySlashed},
		{"already slashed, with another pair of the same slot", nil, func(c *testChain) *Block {
			parent := *c.tip()
			x, y := pair(c)
			z := c.next(0, signedTx(TxTransfer, "bob", testAddr("carol"), 1, 0, 1))
			c.accept(x)
			c.accept(withEvidence(c, NewEvidence(parent.Seed, &x.Header, &y.Header)))
			return withEvidence(c, NewEvidence(parent.Seed, &x.Header, &z.Header))
		}, ErrAlreadySlashed},
		{"evidence root does not match", nil, func(c *testChain) *Block {
			e := equivocation(c)
			b := withEvidence(c, e)
			b.EvidenceRoot[0] ^= 1
			b.Header.Sign(keyOf(c.t, b.Forger))
			return b
		}, ErrBadEvidenceRoot},
		{"evidence without a root", nil, func(c *testChain) *Block {
			e := equivocation(c)
			b := withEvidence(c, e)
			b.EvidenceRoot = Hash{}
			b.Header.Sign(keyOf(c.t, b.Forger))
			return b
		}, ErrBadEvidenceRoot},
		{"evidence added after signing", nil, func(c *testChain) *Block {
			e := equivocation(c)
			b := c.next(0)
			b.Evidence = []Evidence{e}
			return b
		}, ErrBadEvidenceRoot},
		{"too much evidence", nil, func(c *testChain) *Block {
			e := equivocation(c)
			ev := make([]Evidence, MaxBlockEvidence+1)
			for i := range ev {
				ev[i] = e
			}
			return withEvidence(c, ev...)
		}, ErrTooMuchEvidence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestChain(t, testGenesis(t, tc.genesis...))
			b := tc.build(c)
			before := c.state.Clone()
			_, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid block refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || CodeOf(err) != tc.want.Code {
				t.Fatalf("got %v (code %q), want code %s", err, CodeOf(err), tc.want.Code)
			}
			if !c.state.Equal(before) {
				t.Fatalf("refused block changed the state")
			}
		})
	}
}

// TestSlashing pins what evidence does to the state: slash_percent of the
// equivocator's stake burned, the record, the revert, and the switch off.
func TestSlashing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		percent uint32
		stake   uint64 // alice's stake before
		floor   uint64 // min_total_stake
		want    uint64 // alice's stake after
	}{
		{"default 50%", 50, 10, 1, 5},
		{"odd stake rounds the burn down", 50, 11, 1, 6},
		{"100%", 100, 10, 1, 0},
		{"switched off", 0, 10, 1, 10},
		{"never below the stake floor", 50, 10, 14, 8}, // bob's 6 + alice's 8 = 14
		{"at the floor already", 90, 10, 16, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := testGenesis(t, twoStakers, func(g *Genesis) {
				g.SlashPercent, g.MinTotalStake = tc.percent, tc.floor
				g.Allocations[0].Stake = tc.stake
			})
			c := newTestChain(t, g)
			// Make alice the equivocator: find a height where she is rank 0.
			for c.candidates()[0] != testAddr("alice") {
				c.accept(c.next(0))
			}
			at := c.tip().Height + 1
			e := equivocation(c)
			before := c.state.Clone()
			b := withEvidence(c, e)
			undo := c.accept(b)
			alice := c.state.Account(testAddr("alice"))
			if alice.Stake != tc.want {
				t.Fatalf("alice's stake %d after slashing, want %d", alice.Stake, tc.want)
			}
			rec, ok := c.state.Slashed(testAddr("alice"), at)
			if !ok || rec.IncludedIn != b.Height || rec.Burned != tc.stake-tc.want {
				t.Fatalf("slashing record %+v (%v), want burned %d in block %d", rec, ok, tc.stake-tc.want, b.Height)
			}
			for _, acc := range c.state.Accounts() {
				if !acc.Address.Valid() {
					t.Fatalf("Accounts lists the record %q", acc.Address)
				}
			}
			c.state.Revert(undo)
			// The forger's reward aside, the state is as before.
			if got, want := c.state.Account(testAddr("alice")).Stake, before.Account(testAddr("alice")).Stake; got != want {
				t.Fatalf("revert: stake %d, want %d", got, want)
			}
			if _, ok := c.state.Slashed(testAddr("alice"), at); ok {
				t.Fatal("revert left the slashing record")
			}
			if !c.state.Equal(before) {
				t.Fatal("revert did not restore the state")
			}
			if got := c.state.Lots(g.LotSize); got != before.Lots(g.LotSize) {
				t.Fatalf("lots %d after revert, want %d", got, before.Lots(g.LotSize))
			}
		})
	}
}

// TestSlashingBeforeUnstake: an UNSTAKE in the block that carries the
// evidence does not save the stake.
func TestSlashingBeforeUnstake(t *testing.T) {
	c := newTestChain(t, testGenesis(t, twoStakers))
	for c.candidates()[0] != testAddr("bob") {
		c.accept(c.next(0))
	}
	e := equivocation(c)
	b := c.next(0, signedTx(TxUnstake, "bob", testAddr("bob"), 6, 0, 1))
	b.SetEvidence([]Evidence{e})
	b.Header.Sign(keyOf(t, c.candidates()[0]))
	_, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil)
	if CodeOf(err) != ErrInsufficientStake.Code {
		t.Fatalf("got %v, want insufficient_stake (3 of 6 left after slashing)", err)
	}
}

func TestSlashAmountNoOverflow(t *testing.T) {
	g := DefaultGenesis()
	g.SlashPercent = 99
	const big = ^uint64(0)
	if got, want := SlashAmount(g, big, big), big/100*99+big%100*99/100; got != want {
		t.Fatalf("SlashAmount = %d, want %d", got, want)
	}
}

// TestEvidenceEncoded: the evidence root is in the signed bytes (only when
// there is evidence), and evidence survives JSON and the binary codec.
func TestEvidenceEncoded(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	e := equivocation(c)
	b := withEvidence(c, e)
	plain := c.next(0)
	if len(b.SigningBytes()) != len(plain.SigningBytes())+32 {
		t.Fatalf("signing bytes %d, want %d + 32", len(b.SigningBytes()), len(plain.SigningBytes()))
	}
	if EncodeBlock(plain)[0] != blockCodecVersion {
		t.Fatal("a block without evidence changed its encoding")
	}
	h1 := b.Hash()
	b.EvidenceRoot[0] ^= 1
	if b.Hash() == h1 {
		t.Fatal("evidence_root is not in the hash")
	}
	b.EvidenceRoot[0] ^= 1

	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Block
	if err := json.Unmarshal(data, &fromJSON); err != nil {
		t.Fatal(err)
	}
	fromBin, err := DecodeBlock(EncodeBlock(b))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*Block{"json": &fromJSON, "binary": fromBin} {
		if got.Hash() != b.Hash() || len(got.Evidence) != 1 || got.Evidence[0].ID() != e.ID() {
			t.Fatalf("%s round trip changed the block", name)
		}
		if err := got.Evidence[0].Check(c.g, b.Height); err != nil {
			t.Fatalf("%s round trip: evidence no longer checks: %v", name, err)
		}
	}
	var js map[string]any
	_ = json.Unmarshal(data, &js)
	if _, ok := js["evidence_root"]; !ok {
		t.Fatal("no evidence_root in the JSON")
	}
	pj, _ := json.Marshal(plain)
	js = nil
	_ = json.Unmarshal(pj, &js)
	if _, ok := js["evidence_root"]; ok {
		t.Fatal("evidence_root in the JSON of a block without evidence")
	}
	if _, ok := js["evidence"]; ok {
		t.Fatal("evidence in the JSON of a block without evidence")
	}
	// Version 3 saying "no evidence" is not a second encoding of a block.
	v3 := plain.appendV3([]byte{evidenceCodecVersion})
	v3 = append(v3, 0, 0) // no transactions, no evidence
	if _, err := DecodeBlock(v3); err == nil {
		t.Fatal("decoded a version 3 block without evidence")
	}
}

func TestEvidenceCodec(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	e := equivocation(c)
	data := EncodeEvidence(&e)
	back, err := DecodeEvidence(data)
	if err != nil || back.ID() != e.ID() {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, data[:len(data)-1], append(append([]byte{}, data...), 0)} {
		if _, err := DecodeEvidence(bad); err == nil {
			t.Fatalf("decoded %d bad bytes", len(bad))
		}
	}
}

// FuzzDecodeBlockWithEvidence: version 3 blocks decode losslessly or not
// at all, and their evidence checks answer with a code, never a panic.
func FuzzDecodeBlockWithEvidence(f *testing.F) {
	c := newTestChain(f, testGenesis(f))
	e := equivocation(c)
	b := withEvidence(c, e)
	f.Add(EncodeBlock(b))
	f.Add(EncodeEvidence(&e))
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
			if err := ev.Check(g, ev.Height()+1); err != nil && CodeOf(err) == "" {
				t.Fatalf("evidence error without a code: %v", err)
			}
		}
	})
}
