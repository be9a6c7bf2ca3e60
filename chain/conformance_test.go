package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// This file is the conformance suite, in the spirit of btcd's fullblocktests:
// a generated chain of valid blocks, then for every rule a block that breaks
// exactly that rule and the exact code it must be refused with.

// testChain is a chain under construction: genesis, the main-chain headers
// and the state after the last block.
type testChain struct {
	t       testing.TB
	g       *Genesis
	headers []Header
	state   *State
	nowMs   int64
}

func newTestChain(t testing.TB, g *Genesis) *testChain {
	return &testChain{t: t, g: g, headers: []Header{g.Block().Header}, state: g.State(), nowMs: g.Timestamp + 1_000_000}
}

func (c *testChain) tip() *Header { return &c.headers[len(c.headers)-1] }

func (c *testChain) candidates() []Address {
	c.t.Helper()
	cands, err := Elect(c.g, c.tip(), c.state)
	if err != nil {
		c.t.Fatal(err)
	}
	return cands
}

// next builds a valid, signed block on the tip at the given rank.
func (c *testChain) next(rank uint32, txs ...Transaction) *Block {
	c.t.Helper()
	cands := c.candidates()
	parent := c.tip()
	b := NewBlock(c.g, parent, rank, parent.Timestamp+int64(rank)*c.g.SlotMs+10, txs)
	b.Header.Sign(keyOf(c.t, cands[rank]))
	return b
}

func (c *testChain) accept(b *Block) *Undo {
	c.t.Helper()
	undo, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil)
	if err != nil {
		c.t.Fatalf("valid block %d refused: %v", b.Height, err)
	}
	c.headers = append(c.headers, b.Header)
	return undo
}

func TestValidChain(t *testing.T) {
	g := testGenesis(t, func(g *Genesis) {
		g.BlockReward = 3
		g.Allocations[1].Stake = 5 // bob stakes too, so ranks 0 and 1 both exist
	})
	c := newTestChain(t, g)
	alice, bob, carol, dave := testAddr("alice"), testAddr("bob"), testAddr("carol"), testAddr("dave")

	blocks := [][]Transaction{
		{signedTx(TxTransfer, "alice", bob, 100, 1, 1), signedTx(TxTransfer, "alice", carol, 50, 0, 2)},
		{signedTx(TxExchange, "dave", dave, 70, 0, 1)},
		{signedTx(TxStake, "bob", bob, 200, 2, 1), signedTx(TxTransfer, "dave", carol, 30, 5, 2)},
		{},
		{signedTx(TxUnstake, "bob", bob, 150, 0, 2), signedTx(TxTransfer, "carol", carol, 1, 0, 1)},
	}
	forged := map[Address]uint64{}
	for i, txs := range blocks {
		rank := uint32(i % 2) // alternate rank 0 and the rank-1 fallback
		b := c.next(rank, txs...)
		forged[b.Forger] += g.BlockReward
		for _, tx := range txs {
			forged[b.Forger] += tx.Fee
		}
		c.accept(b)
	}
	want := map[Address]Account{
		alice: {Balance: 1000 - 101 - 50, Stake: 10, Nonce: 2},
		// The unstaked 150 unbond from block 5 until 5 + unbonding_blocks.
		bob:   {Balance: 500 + 100 - 202, Stake: 5 + 200 - 150, Nonce: 2, Unbonding: 150, Release: 5 + DefaultUnbondingBlocks},
		carol: {Balance: 100 + 50 + 30, Nonce: 1},
		dave:  {Balance: 70 - 35, Nonce: 2},
	}
	for a, acc := range want {
		acc.Balance += forged[a]
		if got := c.state.Account(a); got != acc {
			t.Errorf("%s: got %+v, want %+v", a.Short(), got, acc)
		}
	}
	if len(c.headers) != len(blocks)+1 {
		t.Fatalf("chain has %d headers", len(c.headers))
	}
}

// TestBlockRules breaks one rule per case and expects exactly its code.
func TestBlockRules(t *testing.T) {
	alice, bob, carol := testAddr("alice"), testAddr("bob"), testAddr("carol")
	closed := func(g *Genesis) { g.Exchange = ExchangePolicy{Authorities: []Address{carol}} }
	twoStakers := func(g *Genesis) { g.Allocations[1].Stake = 5 }

	tests := []struct {
		name    string
		genesis []func(*Genesis)
		// build returns the offending block, built on c's tip.
		build func(c *testChain) *Block
		want  *RuleError
	}{
		{"bad tx signature", nil, func(c *testChain) *Block {
			tx := signedTx(TxTransfer, "alice", bob, 1, 0, 1)
			tx.Signature = signedTx(TxTransfer, "alice", bob, 2, 0, 1).Signature
			return c.next(0, tx)
		}, ErrBadSignature},
		{"tx without a signature", nil, func(c *testChain) *Block {
			tx := signedTx(TxTransfer, "alice", bob, 1, 0, 1)
			tx.Signature = Signature{}
			return c.next(0, tx)
		}, ErrBadSignature},
		{"wrong chain id", nil, func(c *testChain) *Block {
			tx := Transaction{Type: TxTransfer, ChainID: "other", To: bob, Amount: 1, Nonce: 1}
			tx.Sign(testKey("alice"))
			return c.next(0, tx)
		}, ErrWrongChain},
		{"replayed nonce", nil, func(c *testChain) *Block {
			c.accept(c.next(0, signedTx(TxTransfer, "alice", bob, 1, 0, 1)))
			return c.next(0, signedTx(TxTransfer, "alice", bob, 1, 0, 1))
		}, ErrBadNonce},
		{"skipped nonce", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", bob, 1, 0, 2))
		}, ErrBadNonce},
		{"same nonce twice in a block", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", bob, 1, 0, 1), signedTx(TxTransfer, "alice", carol, 1, 0, 1))
		}, ErrBadNonce},
		{"overdraft", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "carol", bob, 101, 0, 1))
		}, ErrInsufficientFunds},
		{"overdraft by the fee", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "carol", bob, 100, 1, 1))
		}, ErrInsufficientFunds},
		{"two spends that together overdraw", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "carol", bob, 60, 0, 1), signedTx(TxTransfer, "carol", alice, 60, 0, 2))
		}, ErrInsufficientFunds},
		{"stake above balance", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxStake, "carol", carol, 101, 0, 1))
		}, ErrInsufficientFunds},
		{"amount 0", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", bob, 0, 0, 1))
		}, ErrZeroAmount},
		{"amount plus fee overflows", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", bob, math.MaxUint64, 1, 1))
		}, ErrAmountOverflow},
		{"exchange overflows the balance", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxExchange, "alice", alice, math.MaxUint64-100, 0, 1))
		}, ErrAmountOverflow},
		{"unknown type", nil, func(c *testChain) *Block {
			return c.next(0, signedTx("BURN", "alice", alice, 1, 0, 1))
		}, ErrUnknownType},
		{"STAKE to another address", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxStake, "alice", bob, 1, 0, 1))
		}, ErrStakeNotSelf},
		{"UNSTAKE to another address", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxUnstake, "alice", bob, 1, 0, 1))
		}, ErrStakeNotSelf},
		{"UNSTAKE above stake", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxUnstake, "alice", alice, 11, 0, 1))
		}, ErrInsufficientStake},
		{"EXCHANGE from a non-authority under a closed policy", [](func(*Genesis)){closed}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxExchange, "alice", alice, 5, 0, 1))
		}, ErrNotExchange},
		{"from is not the key's address", nil, func(c *testChain) *Block {
			tx := signedTx(TxTransfer, "alice", bob, 1, 0, 1)
			tx.From = bob
			return c.next(0, tx)
		}, ErrFromMismatch},
		{"to is not an address", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", "BOB", 1, 0, 1))
		}, ErrBadAddress},
		{"tx without a public key", nil, func(c *testChain) *Block {
			tx := signedTx(TxTransfer, "alice", bob, 1, 0, 1)
			tx.PublicKey = PublicKey{}
			return c.next(0, tx)
		}, ErrBadPublicKey},
		{"wrong forger", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Header.Sign(testKey("bob")) // bob holds no stake
			return b
		}, ErrWrongForger},
		{"forger claims a rank that is not his", [](func(*Genesis)){twoStakers}, func(c *testChain) *Block {
			cands := c.candidates()
			b := c.next(1)
			b.Header.Sign(keyOf(c.t, cands[0])) // rank 0's forger claiming rank 1
			return b
		}, ErrWrongForger},
		{"rank beyond the candidates", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Rank = 1 // one staker: only rank 0 exists
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadRank},
		{"rank beyond max_rank", [](func(*Genesis)){twoStakers, func(g *Genesis) { g.MaxRank = 1 }}, func(c *testChain) *Block {
			b := c.next(0)
			b.Rank = 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadRank},
		{"early timestamp for the rank", [](func(*Genesis)){twoStakers}, func(c *testChain) *Block {
			b := c.next(1)
			b.Timestamp = c.tip().Timestamp + c.g.SlotMs - 1
			b.Header.Sign(keyOf(c.t, c.candidates()[1]))
			return b
		}, ErrEarlyTimestamp},
		{"timestamp before the parent", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Timestamp = c.tip().Timestamp - 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrEarlyTimestamp},
		{"future timestamp", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Timestamp = c.nowMs + MaxFutureMs + 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrFutureBlock},
		{"bad block signature", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Timestamp++ // signed bytes changed after signing
			return b
		}, ErrBadBlockSig},
		{"block signature in upper-case hex", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Signature = strings.ToUpper(b.Signature) // same bytes, another spelling
			return b
		}, ErrBadBlockSig},
		{"block signature not hex", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Signature = "zz" + b.Signature[2:]
			return b
		}, ErrBadBlockSig},
		{"block signature short", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Signature = b.Signature[:len(b.Signature)-2]
			return b
		}, ErrBadBlockSig},
		{"bad tx root", nil, func(c *testChain) *Block {
			b := c.next(0, signedTx(TxTransfer, "alice", bob, 1, 0, 1))
			b.Transactions = append(b.Transactions, signedTx(TxTransfer, "alice", bob, 1, 0, 2))
			return b
		}, ErrBadTxRoot},
		{"too many txs", [](func(*Genesis)){func(g *Genesis) { g.MaxBlockTxs = 1 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", bob, 1, 0, 1), signedTx(TxTransfer, "alice", bob, 1, 0, 2))
		}, ErrTooManyTxs},
		{"wrong prev hash", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.PrevHash[0] ^= 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadPrevHash},
		{"wrong height", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Height++
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadHeight},
		{"forger key not the forger's", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Header.Sign(testKey("alice"))
			b.ForgerPublicKey = PublicKey(testKey("bob").Public().(ed25519.PublicKey))
			return b
		}, ErrWrongForger},

		// The v2 rules (docs/CONSENSUS.md).
		{"STAKE over max_lots", [](func(*Genesis)){func(g *Genesis) { g.MaxLots = 15 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxStake, "alice", alice, 6, 0, 1)) // 10 + 6 lots > 15
		}, ErrStakeLimit},
		{"STAKE over max_lots in whole lots of lot_size", [](func(*Genesis)){func(g *Genesis) { g.LotSize, g.MaxLots = 5, 3 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxStake, "alice", alice, 5, 0, 1)) // 15 coins = 3 lots: fine; 20 = 4
		}, nil},
		{"STAKE over max_lots by one lot of lot_size", [](func(*Genesis)){func(g *Genesis) { g.LotSize, g.MaxLots = 5, 3 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxStake, "alice", alice, 10, 0, 1))
		}, ErrStakeLimit},
		{"EXCHANGE then STAKE of 2^62 (v1 froze every node)", nil, func(c *testChain) *Block {
			dave := testAddr("dave")
			return c.next(0, signedTx(TxExchange, "dave", dave, 1<<62, 0, 1), signedTx(TxStake, "dave", dave, 1<<62, 0, 2))
		}, ErrStakeLimit},
		{"STAKE of 2^64-1 lots cannot wrap the lot total", [](func(*Genesis)){func(g *Genesis) { g.Allocations[1].Balance = math.MaxUint64 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxStake, "bob", bob, math.MaxUint64, 0, 1))
		}, ErrStakeLimit},
		{"UNSTAKE of the whole stake (v1 halted the chain)", nil, func(c *testChain) *Block {
			return c.next(0, signedTx(TxUnstake, "alice", alice, 10, 0, 1))
		}, ErrStakeFloor},
		{"UNSTAKE below min_total_stake", [](func(*Genesis)){func(g *Genesis) { g.MinTotalStake = 5 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxUnstake, "alice", alice, 6, 0, 1))
		}, ErrStakeFloor},
		{"UNSTAKE leaving min_total_stake only in a remainder below a lot", [](func(*Genesis)){func(g *Genesis) { g.LotSize, g.MinTotalStake = 4, 8 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxUnstake, "alice", alice, 3, 0, 1)) // 7 coins = 1 lot of 4 < 8
		}, ErrStakeFloor},
		{"fee below min_fee", [](func(*Genesis)){func(g *Genesis) { g.MinFee = 2 }}, func(c *testChain) *Block {
			return c.next(0, signedTx(TxTransfer, "alice", bob, 1, 1, 1))
		}, ErrFeeTooLow},
		{"timestamp past the 500 ms drift", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Timestamp = c.nowMs + 501
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrFutureBlock},
		{"no seed proof", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.SeedProof = VRFProof{}
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadSeedProof},
		{"seed proof altered", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.SeedProof[40] ^= 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadSeedProof},
		{"seed proof made with another key", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.ProveSeed(testKey("bob"), c.g.ChainID, c.tip().Seed)
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadSeedProof},
		{"seed proof over another parent seed", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.ProveSeed(testKey("alice"), c.g.ChainID, Hash{1})
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadSeedProof},
		{"seed proof for another chain", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.ProveSeed(testKey("alice"), "elsewhere", c.tip().Seed)
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadSeedProof},
		{"seed chosen by the forger, not the proof's output", nil, func(c *testChain) *Block {
			b := c.next(0)
			b.Seed[0] ^= 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadSeed},

		// The v3 rules (docs/CONSENSUS.md): alice holds every lot, so her vote
		// alone justifies. votedTwo: block 2 carries her 0 → 1.
		{"a vote justifying block 1", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1)))
		}, nil},
		{"vote root not the votes'", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			b := withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1)))
			b.VoteRoot[0] ^= 1
			b.Header.Sign(testKey("alice"))
			return b
		}, ErrBadVoteRoot},
		{"votes over max_block_votes", [](func(*Genesis)){func(g *Genesis) { g.MaxBlockVotes = 1 }}, func(c *testChain) *Block {
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1)), vote("bob", c.cpAt(0), c.cpAt(1)))
		}, ErrTooManyVotes},
		{"vote target not above its source", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(1), c.cpAt(0)))
		}, ErrBadVote},
		{"vote signature", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			v := vote("alice", c.cpAt(0), c.cpAt(1))
			v.Signature[0] ^= 1
			return withVotes(c, v)
		}, ErrBadVoteSig},
		{"vote for a block not below this one", nil, func(c *testChain) *Block {
			return withVotes(c, vote("alice", c.cpAt(0), Checkpoint{Height: 1}))
		}, ErrVoteFutureTarget},
		{"vote for a target on another branch", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(0), Checkpoint{Height: 1, Hash: Hash{1}}))
		}, ErrVoteUnknownCheckpoint},
		{"vote from an unjustified source", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			c.accept(withVotes(c))
			return withVotes(c, vote("alice", c.cpAt(1), c.cpAt(2)))
		}, ErrVoteSourceNotJustified},
		{"vote by a key without lots at the source", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			return withVotes(c, vote("bob", c.cpAt(0), c.cpAt(1)))
		}, ErrVoteNoStake},
		{"vote already on the branch", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			c.accept(withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1))))
			return withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1)))
		}, ErrVoteAlreadyCounted},
		{"one vote twice in a block", nil, func(c *testChain) *Block {
			c.accept(withVotes(c))
			v := vote("alice", c.cpAt(0), c.cpAt(1))
			return withVotes(c, v, v)
		}, ErrDuplicateVote},
		{"vote more than 64 heights old", nil, func(c *testChain) *Block {
			for range 66 {
				c.accept(withVotes(c))
			}
			return withVotes(c, vote("alice", c.cpAt(0), c.cpAt(1)))
		}, ErrVoteTooOld},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestChain(t, testGenesis(t, tc.genesis...))
			b := tc.build(c)
			before := c.state.Clone()
			checkPrecheckedAgrees(t, c, b)
			_, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil)
			if tc.want == nil { // a valid neighbour of a refused case
				if err != nil {
					t.Fatalf("valid block refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want code %s", err, tc.want.Code)
			}
			if CodeOf(err) != tc.want.Code {
				t.Fatalf("CodeOf = %q, want %q", CodeOf(err), tc.want.Code)
			}
			if !c.state.Equal(before) {
				t.Fatalf("refused block changed the state")
			}
		})
	}
}

// checkPrecheckedAgrees: for a block whose transactions pass the checks a
// node makes before taking its lock (CheckBlockTxs),
// ValidatePrecheckedAndApply reaches ValidateAndApply's verdict, code for
// code, and leaves the same state.
func checkPrecheckedAgrees(t *testing.T, c *testChain, b *Block) {
	t.Helper()
	if CheckBlockTxs(c.g, b, nil) != nil {
		return // refused before the lock; ValidatePrecheckedAndApply never sees it
	}
	full, pre := c.state.Clone(), c.state.Clone()
	_, errFull := ValidateAndApply(c.g, c.tip(), b, c.candidates(), full, c.nowMs, nil)
	_, errPre := ValidatePrecheckedAndApply(c.g, c.tip(), b, c.candidates(), pre, c.nowMs)
	if CodeOf(errFull) != CodeOf(errPre) || (errFull == nil) != (errPre == nil) {
		t.Fatalf("ValidateAndApply: %v; ValidatePrecheckedAndApply: %v", errFull, errPre)
	}
	if !full.Equal(pre) {
		t.Fatal("ValidatePrecheckedAndApply left another state than ValidateAndApply")
	}
}

// TestTxIDCached: a transaction's id is cached where it comes into being
// (Sign, the binary and JSON decoders), always the hash of its fields; an
// id in JSON input is never trusted; copies of one transaction compare
// equal however they came; and a block whose root does not match its
// transactions' ids is refused by the prechecked path too.
func TestTxIDCached(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 1)
	want := Hash(sha256.Sum256(tx.SigningBytes()))
	if tx.id != want || tx.ID() != want {
		t.Fatalf("signed: cached %s, ID %s, want %s", tx.id, tx.ID(), want)
	}
	bin, err := DecodeTx(EncodeTx(&tx))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON Transaction
	if err := json.Unmarshal(js, &fromJSON); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]Transaction{"binary": *bin, "json": fromJSON} {
		if got.id != want || got != tx {
			t.Fatalf("%s: cached %s, equal %v; want %s, equal", name, got.id, got == tx, want)
		}
	}
	// A made-up id in the input is ignored.
	lying := bytes.Replace(js, []byte(want.String()), []byte(Hash{7}.String()), 1)
	if bytes.Equal(lying, js) {
		t.Fatal("the JSON carries no id to forge")
	}
	var fromLie Transaction
	if err := json.Unmarshal(lying, &fromLie); err != nil || fromLie.ID() != want {
		t.Fatalf("JSON with a forged id: ID %s, %v; want %s", fromLie.ID(), err, want)
	}
	// A transaction built field by field has no cache and is hashed.
	plain := Transaction{Type: tx.Type, ChainID: tx.ChainID, From: tx.From, To: tx.To, Amount: tx.Amount, Nonce: tx.Nonce, PublicKey: tx.PublicKey}
	if plain.id != (Hash{}) || plain.ID() != want {
		t.Fatalf("unsigned: cached %s, ID %s; want none, %s", plain.id, plain.ID(), want)
	}
	// CacheID follows a field change; the block a peer decodes hashes
	// fresh, so a stale cache can never pass another node's root check.
	changed := tx
	changed.Amount = 2
	changed.CacheID()
	if changed.ID() == want || changed.ID() != sha256.Sum256(changed.SigningBytes()) {
		t.Fatalf("CacheID after a change: %s", changed.ID())
	}
	txs := []Transaction{tx, signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 2)}
	b := c.next(0, txs...)
	b.TxRoot = Hash{1}
	b.Header.Sign(keyOf(t, b.Forger))
	if _, err := ValidatePrecheckedAndApply(c.g, c.tip(), b, c.candidates(), c.state.Clone(), c.nowMs); !errors.Is(err, ErrBadTxRoot) {
		t.Fatalf("prechecked block with a wrong root: %v, want bad_tx_root", err)
	}
	good := c.next(0, txs...)
	stale := *good
	stale.Transactions = slices.Clone(good.Transactions)
	stale.Transactions[1].Amount = 9 // cache left stale on purpose
	dec, err := DecodeBlock(EncodeBlock(&stale))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ValidatePrecheckedAndApply(c.g, c.tip(), dec, c.candidates(), c.state.Clone(), c.nowMs); !errors.Is(err, ErrBadTxRoot) {
		t.Fatalf("decoded block with a changed transaction: %v, want bad_tx_root", err)
	}
}

// TestApplyRevertIdentity applies blocks of every transaction type and
// reverts them newest first: the state must come back byte for byte.
func TestApplyRevertIdentity(t *testing.T) {
	g := testGenesis(t, func(g *Genesis) { g.BlockReward = 7 })
	c := newTestChain(t, g)
	bob, carol, dave := testAddr("bob"), testAddr("carol"), testAddr("dave")
	snapshots := []*State{c.state.Clone()}
	var undos []*Undo
	for i, txs := range [][]Transaction{
		{signedTx(TxTransfer, "alice", bob, 10, 1, 1), signedTx(TxExchange, "dave", dave, 9, 0, 1)},
		{signedTx(TxStake, "bob", bob, 20, 1, 1), signedTx(TxTransfer, "bob", carol, 5, 0, 2), signedTx(TxTransfer, "carol", carol, 1, 1, 1)},
		{signedTx(TxUnstake, "bob", bob, 20, 1, 3), signedTx(TxUnstake, "alice", testAddr("alice"), 3, 0, 2)},
	} {
		undos = append(undos, c.accept(c.next(0, txs...)))
		if c.state.Equal(snapshots[i]) {
			t.Fatalf("block %d changed nothing", i+1)
		}
		snapshots = append(snapshots, c.state.Clone())
	}
	for i := len(undos) - 1; i >= 0; i-- {
		c.state.Revert(undos[i])
		if !c.state.Equal(snapshots[i]) {
			t.Fatalf("after reverting block %d: %v, want %v", i+1, c.state.Accounts(), snapshots[i].Accounts())
		}
	}
}

// TestFeesAndRewardGoToForger pins who gets the fee and the block reward.
func TestFeesAndRewardGoToForger(t *testing.T) {
	g := testGenesis(t, func(g *Genesis) { g.BlockReward = 4 })
	c := newTestChain(t, g)
	c.accept(c.next(0, signedTx(TxTransfer, "bob", testAddr("carol"), 10, 3, 1)))
	if got := c.state.Account(testAddr("alice")).Balance; got != 1000+4+3 {
		t.Fatalf("forger balance %d, want %d", got, 1007)
	}
	if got := c.state.Account(testAddr("bob")).Balance; got != 500-13 {
		t.Fatalf("sender balance %d, want %d", got, 487)
	}
}

// TestLargeBlockReportsFirstBadTx exercises the parallel signature checks:
// with bad transactions at indexes 70 and 90 of 100, the error names 70.
func TestLargeBlockReportsFirstBadTx(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	txs := make([]Transaction, 100)
	for i := range txs {
		txs[i] = signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, uint64(i+1))
	}
	for _, bad := range []int{90, 70} {
		txs[bad].Signature = txs[bad-1].Signature
	}
	b := c.next(0, txs...)
	_, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil)
	var te *BlockTxError
	if !errors.As(err, &te) || te.Index != 70 || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v, want bad_signature at transaction 70", err)
	}
}
