package chain

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/ecvrf"

	"github.com/poslab/posd/chain/election"
)

func TestGenesisV2Defaults(t *testing.T) {
	addr := string(testAddr("alice"))
	v1 := `{"chain_id":"x","timestamp":1,"allocations":[{"address":"` + addr + `","balance":1000,"stake":2}]}`
	g, err := ParseGenesis([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultGenesis()
	if g.SeedSource != SeedVRF || g.LotSize != 1 || g.MaxLots != 200_000 || g.MinTotalStake != 1 ||
		!g.Heartbeat || g.SlashPercent != 50 || g.MinFee != 0 || g.Lab {
		t.Fatalf("v2 defaults not applied to a v1 genesis: %+v", g)
	}
	if g.SeedSource != want.SeedSource || g.Heartbeat != want.Heartbeat {
		t.Fatal("ParseGenesis and DefaultGenesis disagree")
	}
	// The hash covers every v2 field.
	for name, field := range map[string]string{
		"seed_source": `"seed_source":"block_hash"`, "lot_size": `"lot_size":2`, "max_lots": `"max_lots":100`,
		"min_total_stake": `"min_total_stake":1,"lot_size":1,"max_lots":199999`, "heartbeat": `"heartbeat":false`,
		"slash_percent": `"slash_percent":10`, "min_fee": `"min_fee":1`, "lab": `"lab":true`,
	} {
		other, err := ParseGenesis([]byte(strings.Replace(v1, `"timestamp":1`, `"timestamp":1,`+field, 1)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if other.Hash() == g.Hash() {
			t.Errorf("%s is not covered by the genesis hash", name)
		}
	}
	// Written out and read back, a genesis keeps its hash.
	data, _ := json.Marshal(g)
	back, err := ParseGenesis(data)
	if err != nil || back.Hash() != g.Hash() {
		t.Fatalf("round trip: %v, hash %s vs %s", err, back.Hash(), g.Hash())
	}
}

func TestGenesisV2Refusals(t *testing.T) {
	addr := string(testAddr("alice"))
	good := `{"chain_id":"x","timestamp":1,"allocations":[{"address":"` + addr + `","balance":1000,"stake":10}]}`
	with := func(field string) string { return strings.Replace(good, `"timestamp":1`, `"timestamp":1,`+field, 1) }
	if _, err := ParseGenesis([]byte(with(`"slot_ms":1000`))); err != nil {
		t.Fatalf("slot_ms = 2 × drift refused: %v", err)
	}
	bad := map[string]string{
		"slot_ms below twice the drift": with(`"slot_ms":999`),
		"unknown seed_source":           with(`"seed_source":"dice"`),
		"lot_size 0":                    with(`"lot_size":0`),
		"max_lots 0":                    with(`"max_lots":0`),
		"max_lots past the bound":       with(`"max_lots":200001`),
		"min_total_stake 0":             with(`"min_total_stake":0`),
		"slash_percent over 100":        with(`"slash_percent":101`),
		"allocations over max_lots":     with(`"max_lots":9`),
		"stake below min_total_stake":   with(`"min_total_stake":11`),
		"stake only in remainders":      with(`"lot_size":11`),
		"no stake at all":               strings.Replace(good, `"stake":10`, `"stake":0`, 1),
	}
	for name, doc := range bad {
		if _, err := ParseGenesis([]byte(doc)); !errors.Is(err, ErrBadGenesis) {
			t.Errorf("%s: got %v, want bad_genesis", name, err)
		}
	}
}

func TestGenesisParamsBuild(t *testing.T) {
	alloc := []Allocation{{Address: testAddr("alice"), Balance: 1000, Stake: 1}}
	now := time.UnixMilli(1_700_000_000_000)
	g, err := DefaultGenesisParams().Build(now, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if g.ChainID != DefaultChainID || g.Timestamp != now.UnixMilli() || !g.Heartbeat || g.SeedSource != SeedVRF || g.SlashPercent != 50 {
		t.Fatalf("defaults: %+v", g)
	}
	p := DefaultGenesisParams()
	p.SeedSource, p.LotSize, p.MinFee, p.Heartbeat, p.Exchange = SeedBlockHash, 1, 3, false, string(testAddr("bob"))
	g, err = p.Build(now, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if g.SeedSource != SeedBlockHash || g.MinFee != 3 || g.Heartbeat || g.Exchange.Open || !g.Exchange.Allows(testAddr("bob")) {
		t.Fatalf("params not applied: %+v", g)
	}
	p = DefaultGenesisParams()
	p.SlotMs = 200
	if _, err := p.Build(now, alloc); !errors.Is(err, ErrBadGenesis) {
		t.Fatalf("slot_ms 200: %v, want bad_genesis", err)
	}
	p = DefaultGenesisParams()
	p.Exchange = "nope"
	if _, err := p.Build(now, alloc); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("bad exchange: %v, want bad_address", err)
	}
}

// TestECVRFRFC9381Vectors checks the VRF the seed uses against RFC 9381,
// appendix B.3 (ECVRF-EDWARDS25519-SHA512-ELL2, examples 19 to 21): the
// proof from the secret key, its verification and its output.
func TestECVRFRFC9381Vectors(t *testing.T) {
	vectors := []struct{ sk, pk, alpha, pi, beta string }{
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
			"7d9c633ffeee27349264cf5c667579fc583b4bda63ab71d001f89c10003ab46f14adf9a3cd8b8412d9038531e865c341cafa73589b023d14311c331a9ad15ff2fb37831e00f0acaa6d73bc9997b06501",
			"9d574bf9b8302ec0fc1e21c3ec5368269527b87b462ce36dab2d14ccf80c53cccf6758f058c5b1c856b116388152bbe509ee3b9ecfe63d93c3b4346c1fbc6c54"},
		{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
			"47b327393ff2dd81336f8a2ef10339112401253b3c714eeda879f12c509072ef055b48372bb82efbdce8e10c8cb9a2f9d60e93908f93df1623ad78a86a028d6bc064dbfc75a6a57379ef855dc6733801",
			"38561d6b77b71d30eb97a062168ae12b667ce5c28caccdf76bc88e093e4635987cd96814ce55b4689b3dd2947f80e59aac7b7675f8083865b46c89b2ce9cc735"},
		{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
			"926e895d308f5e328e7aa159c06eddbe56d06846abf5d98c2512235eaa57fdce35b46edfc655bc828d44ad09d1150f31374e7ef73027e14760d42e77341fe05467bb286cc2c9d7fde29120a0b2320d04",
			"121b7f9b9aaaa29099fc04a94ba52784d44eac976dd1a3cca458733be5cd090a7b5fbd148444f17f8daf1fb55cb04b1ae85a626e30a54b4b0f8abf4a43314a58"},
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, v := range vectors {
		priv := ed25519.NewKeyFromSeed(unhex(v.sk))
		pub := priv.Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, unhex(v.pk)) {
			t.Fatalf("vector %d: public key %x", i, pub)
		}
		pi := ecvrf.Prove(voi.PrivateKey(priv), unhex(v.alpha))
		if hex.EncodeToString(pi) != v.pi {
			t.Errorf("vector %d: pi %x", i, pi)
		}
		ok, beta := ecvrf.Verify(voi.PublicKey(pub), unhex(v.pi), unhex(v.alpha))
		if !ok || hex.EncodeToString(beta) != v.beta {
			t.Errorf("vector %d: verify %v, beta %x", i, ok, beta)
		}
		if ok, _ := ecvrf.Verify(voi.PublicKey(pub), unhex(v.pi), []byte("other")); ok {
			t.Errorf("vector %d: proof verifies for another alpha", i)
		}
	}
}

// TestSeedChain: block 0's seed is the genesis hash; each block's seed is
// the VRF output over its parent's seed; the election seed follows the
// genesis seed_source.
func TestSeedChain(t *testing.T) {
	for _, src := range []string{SeedVRF, SeedBlockHash} {
		g := testGenesis(t, func(g *Genesis) { g.SeedSource = src })
		c := newTestChain(t, g)
		if c.tip().Seed != g.Hash() {
			t.Fatal("block 0 seed is not the genesis hash")
		}
		for range 3 {
			parent := *c.tip()
			b := c.next(0)
			alpha := SeedAlpha(g.ChainID, parent.Seed, b.Height)
			want := append([]byte("posd/seed/v1"+testChainID+"\x00"), parent.Seed[:]...)
			want = append(want, 0, 0, 0, 0, 0, 0, 0, byte(b.Height))
			if !bytes.Equal(alpha, want) {
				t.Fatalf("alpha %x, want %x", alpha, want)
			}
			ok, beta := ecvrf.Verify(voi.PublicKey(testKey("alice").Public().(ed25519.PublicKey)), b.SeedProof[:], alpha)
			if !ok || !bytes.Equal(beta[:32], b.Seed[:]) {
				t.Fatalf("seed is not the VRF output over the parent seed")
			}
			c.accept(b)
			wantSeed := b.Seed.String()
			if src == SeedBlockHash {
				wantSeed = b.Hash().String()
			}
			if got := ElectionSeed(g, c.tip()); got != wantSeed {
				t.Fatalf("%s: election seed %s, want %s", src, got, wantSeed)
			}
		}
	}
}

// TestSeedIgnoresTimestampAndTxs is the property grinding needs to fail:
// the same forger on the same parent gets the same seed whatever block it
// builds.
func TestSeedIgnoresTimestampAndTxs(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	a := c.next(0)
	b := c.next(0, signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 1))
	b.Timestamp += 777
	b.Header.Sign(testKey("alice"))
	if a.Hash() == b.Hash() || a.Seed != b.Seed {
		t.Fatalf("seeds differ for one parent and forger: %s vs %s", a.Seed, b.Seed)
	}
}

func TestHeaderSeedFieldsEncoded(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	b := c.next(0, signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 1))
	back, err := DecodeBlock(EncodeBlock(b))
	if err != nil || back.SeedProof != b.SeedProof || back.Seed != b.Seed || back.Hash() != b.Hash() {
		t.Fatalf("codec lost the seed: %v", err)
	}
	data, _ := json.Marshal(b)
	var fromJSON Block
	if err := json.Unmarshal(data, &fromJSON); err != nil || fromJSON.Seed != b.Seed || fromJSON.SeedProof != b.SeedProof {
		t.Fatalf("JSON lost the seed: %v", err)
	}
	if !strings.Contains(string(data), `"seed":"`+b.Seed.String()+`"`) || !strings.Contains(string(data), `"seed_proof":"`+hex.EncodeToString(b.SeedProof[:])+`"`) {
		t.Fatalf("seed fields not hex in JSON: %s", data)
	}
	// Both fields are signed: changing either breaks the signature.
	for _, mut := range []func(h *Header){func(h *Header) { h.Seed[5] ^= 1 }, func(h *Header) { h.SeedProof[0] ^= 1 }, func(h *Header) { h.SeedProof = VRFProof{} }} {
		h := b.Header
		mut(&h)
		if err := h.VerifySignature(); !errors.Is(err, ErrBadBlockSig) {
			t.Fatalf("seed field not covered by the signature: %v", err)
		}
	}
}

func loadZIP215(t testing.TB) [][2]string {
	f, err := os.Open("testdata/zip215.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var vs [][2]string
	if err := json.NewDecoder(zr).Decode(&vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestZIP215Vectors: all 196 vectors are valid by the chain's rule, in the
// single check and in the batch check; crypto/ed25519 refuses some of
// them, which is why the rule has to be one library's everywhere.
func TestZIP215Vectors(t *testing.T) {
	vs := loadZIP215(t)
	if len(vs) != 196 {
		t.Fatalf("%d vectors, want 196", len(vs))
	}
	msg := []byte("Zcash")
	v := NewSigVerifier(0)
	var items []sigItem
	stdlibRefuses := 0
	for i, tv := range vs {
		pub, _ := hex.DecodeString(tv[0])
		sig, _ := hex.DecodeString(tv[1])
		if !verifyZIP215(pub, msg, sig) {
			t.Errorf("vector %d refused by the single check", i)
		}
		if !ed25519.Verify(pub, msg, sig) {
			stdlibRefuses++
		}
		key, err := v.expanded(PublicKey(pub))
		if err != nil {
			t.Fatalf("vector %d: key: %v", i, err)
		}
		items = append(items, sigItem{key: key, msg: msg, sig: sig})
	}
	if bad := v.run(items, false); bad >= 0 {
		t.Fatalf("batch refused vector %d", bad)
	}
	for i := 0; i+minBatchChunk <= len(items); i += minBatchChunk {
		if !batchOK(items[i : i+minBatchChunk]) {
			t.Fatalf("batch over vectors %d.. refused", i)
		}
	}
	if stdlibRefuses == 0 {
		t.Fatal("crypto/ed25519 accepts every vector: the vectors test nothing")
	}
	t.Logf("crypto/ed25519 refuses %d of %d", stdlibRefuses, len(vs))
}

func manyTransfers(n int) []Transaction {
	senders := []string{"alice", "bob", "carol", "dave", "erin"}
	txs := make([]Transaction, n)
	for i := range txs {
		txs[i] = signedTx(TxTransfer, senders[i%len(senders)], testAddr("bob"), 1, 0, uint64(i/len(senders)+1))
	}
	return txs
}

// TestSigVerifierFindsLowestBad: the error names the lowest bad index,
// and one bad signature costs a handful of single checks, not one per
// transaction.
func TestSigVerifierFindsLowestBad(t *testing.T) {
	v := NewSigVerifier(0)
	txs := manyTransfers(512)
	if err := v.CheckTxs(txs); err != nil {
		t.Fatal(err)
	}
	for _, bads := range [][]int{{300}, {511, 7}, {0}, {64, 65, 66}} {
		bad := append([]Transaction(nil), txs...)
		lowest := len(bad)
		for _, i := range bads {
			bad[i].Signature = bad[(i+1)%len(bad)].Signature
			lowest = min(lowest, i)
		}
		singles := batchStats.singles.Load()
		err := v.CheckTxs(bad)
		var te *BlockTxError
		if !errors.As(err, &te) || te.Index != lowest || !errors.Is(err, ErrBadSignature) {
			t.Fatalf("bad %v: got %v, want bad_signature at %d", bads, err, lowest)
		}
		if n := batchStats.singles.Load() - singles; n > 8*int64(len(bads)) {
			t.Fatalf("bad %v: %d single checks for %d transactions", bads, n, len(bad))
		}
		errs := v.VerifyTxs(bad)
		for i, err := range errs {
			isBad := false
			for _, b := range bads {
				isBad = isBad || b == i
			}
			if isBad != (err != nil) {
				t.Fatalf("VerifyTxs[%d] = %v, bad %v", i, err, isBad)
			}
		}
	}
	// Malformed encodings are bad without any check.
	bad := append([]Transaction(nil), txs[:10]...)
	bad[3].Signature = Signature{}                               // none
	bad[5].PublicKey = PublicKey(bytes.Repeat([]byte{0xff}, 32)) // not a point
	var te *BlockTxError
	if err := v.CheckTxs(bad); !errors.As(err, &te) || te.Index != 3 {
		t.Fatalf("got %v, want transaction 3", err)
	}
	if errs := v.VerifyTxs(bad); errs[5] == nil || CodeOf(errs[5]) == "" {
		t.Fatalf("key not on the curve: %v", errs[5])
	}
}

func TestSigVerifierCacheBounded(t *testing.T) {
	v := NewSigVerifier(2)
	for _, n := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if _, err := v.expanded(PublicKey(testKey(n).Public().(ed25519.PublicKey))); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.cur)+len(v.prev) > 4 {
		t.Fatalf("cache holds %d keys, bound 4", len(v.cur)+len(v.prev))
	}
}

func TestCheckBlockTxsBatchSkipsVerified(t *testing.T) {
	g := testGenesis(t)
	txs := manyTransfers(100)
	txs[40].Signature = txs[41].Signature
	txs[60].Amount = 0 // stateless failure after the bad signature
	b := &Block{Transactions: txs}
	var te *BlockTxError
	if err := CheckBlockTxs(g, b, nil); !errors.As(err, &te) || te.Index != 40 || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v, want bad_signature at 40", err)
	}
	// A verifier that vouches for transaction 40 leaves 60 as the first fault.
	vouched := func(tx *Transaction) bool { return tx.Nonce == txs[40].Nonce && tx.From == txs[40].From }
	if err := CheckBlockTxsBatch(g, b, NewSigVerifier(0), vouched); !errors.As(err, &te) || te.Index != 60 || !errors.Is(err, ErrZeroAmount) {
		t.Fatalf("got %v, want zero_amount at 60", err)
	}
	txs[60].Amount = 2 // now its signature is the fault
	if err := CheckBlockTxsBatch(g, b, NewSigVerifier(0), vouched); !errors.As(err, &te) || te.Index != 60 || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("got %v, want bad_signature at 60", err)
	}
}

// TestTxTable pins the table of types: codes, targets, effects.
func TestTxTable(t *testing.T) {
	codes := map[byte]bool{}
	for _, s := range TxTypes() {
		if codes[s.Code] || s.Code == 0 {
			t.Fatalf("code %d of %s reused or zero", s.Code, s.Type)
		}
		codes[s.Code] = true
		if got, ok := LookupTxType(s.Type); !ok || got != s {
			t.Fatalf("lookup %s", s.Type)
		}
	}
	if _, ok := LookupTxType("BURN"); ok {
		t.Fatal("unknown type found")
	}
	cases := []struct {
		typ  TxType
		want Effect
	}{
		{TxExchange, Effect{Debit: Amounts{Balance: 2}, Credit: Amounts{Balance: 10}}},
		{TxTransfer, Effect{Debit: Amounts{Balance: 12}, Credit: Amounts{Balance: 10}}},
		{TxStake, Effect{Debit: Amounts{Balance: 12}, Credit: Amounts{Stake: 10}}},
		{TxUnstake, Effect{Debit: Amounts{Balance: 2, Stake: 10}, Credit: Amounts{Unbonding: 10}}},
	}
	for _, c := range cases {
		tx := Transaction{Type: c.typ, Amount: 10, Fee: 2}
		got, err := tx.Effect()
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.typ, got, err, c.want)
		}
		if cost, _ := tx.Cost(); cost != c.want.Debit {
			t.Errorf("%s: cost %+v", c.typ, cost)
		}
	}
	if _, err := (&Transaction{Type: "BURN", Amount: 1}).Effect(); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
}

// TestCheckPayable is the typed pre-check pools and wallets use: each
// refusal with its code, and agreement with State.CheckTx.
func TestCheckPayable(t *testing.T) {
	g := testGenesis(t, func(g *Genesis) {
		g.MinFee = 1
		g.Exchange = ExchangePolicy{Authorities: []Address{testAddr("carol")}}
	})
	alice, bob := testAddr("alice"), testAddr("bob")
	st := g.State()
	tests := []struct {
		name string
		tx   Transaction
		want *RuleError
	}{
		{"transfer", signedTx(TxTransfer, "alice", bob, 10, 1, 1), nil},
		{"fee below min_fee", signedTx(TxTransfer, "alice", bob, 10, 0, 1), ErrFeeTooLow},
		{"overdraft", signedTx(TxTransfer, "alice", bob, 1000, 1, 1), ErrInsufficientFunds},
		{"unstake above stake", signedTx(TxUnstake, "alice", alice, 11, 1, 1), ErrInsufficientStake},
		{"exchange by a non-authority", signedTx(TxExchange, "alice", alice, 5, 1, 1), ErrNotExchange},
		{"exchange by the authority", signedTx(TxExchange, "carol", bob, 5, 1, 1), nil},
		{"unknown type", signedTx("BURN", "alice", alice, 1, 1, 1), ErrUnknownType},
	}
	for _, tc := range tests {
		err := g.CheckPayable(&tc.tx, st.Account(tc.tx.From), st.Account(tc.tx.To))
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		} else if CodeOf(err) != tc.want.Code {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want.Code)
		}
		if CodeOf(st.CheckTx(&tc.tx, g)) != CodeOf(err) {
			t.Errorf("%s: State.CheckTx says %v, CheckPayable %v", tc.name, st.CheckTx(&tc.tx, g), err)
		}
	}
	// Overflow of the recipient's balance.
	tx := signedTx(TxExchange, "carol", bob, 10, 1, 1)
	if err := g.CheckPayable(&tx, st.Account(tx.From), Account{Balance: ^uint64(0) - 5}); !errors.Is(err, ErrAmountOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	// The genesis-only rules, with the stateless ones.
	tx = signedTx(TxTransfer, "alice", bob, 10, 0, 1)
	if err := g.CheckTx(&tx); !errors.Is(err, ErrFeeTooLow) {
		t.Fatalf("CheckTx: %v", err)
	}
}

// TestStakeTotalsFollowRevert: the lot total State keeps stays exact
// through apply, revert, SetAccount and Clone.
func TestStakeTotalsFollowRevert(t *testing.T) {
	g := testGenesis(t, func(g *Genesis) { g.LotSize = 3; g.Allocations[1].Stake = 7 })
	c := newTestChain(t, g)
	bob := testAddr("bob")
	undo := c.accept(c.next(0, signedTx(TxStake, "bob", bob, 5, 0, 1)))
	check := func(s *State) {
		t.Helper()
		if got, want := s.lots(g.LotSize), s.Lots(g.LotSize); got != want {
			t.Fatalf("kept total %d, counted %d", got, want)
		}
	}
	check(c.state)
	cl := c.state.Clone()
	c.state.Revert(undo)
	check(c.state)
	check(cl)
	cl.SetAccount(bob, Account{})
	check(cl)
}

// TestElectionTableKeptUpToDate: the cached lot table, updated from the
// stake changes of blocks and reverts, always equals a table built afresh.
func TestElectionTableKeptUpToDate(t *testing.T) {
	g := testGenesis(t, func(g *Genesis) { g.LotSize = 2; g.Allocations[1].Stake = 7 })
	c := newTestChain(t, g)
	bob, carol := testAddr("bob"), testAddr("carol")
	fresh := func(s *State) *election.StakeTable {
		lots := map[string]uint64{}
		for _, e := range s.Accounts() {
			lots[string(e.Address)] = e.Stake / g.LotSize
		}
		return election.NewStakeTable(lots)
	}
	check := func(s *State) {
		t.Helper()
		if got, want := ElectionTable(g, s), fresh(s); !reflect.DeepEqual(got.Stakers(), want.Stakers()) || got.Total() != want.Total() {
			t.Fatalf("table %v (%d lots), want %v (%d)", got.Stakers(), got.Total(), want.Stakers(), want.Total())
		}
	}
	check(c.state)
	var undos []*Undo
	for _, txs := range [][]Transaction{
		{signedTx(TxStake, "bob", bob, 5, 0, 1), signedTx(TxStake, "carol", carol, 3, 0, 1)},
		{signedTx(TxUnstake, "bob", bob, 12, 0, 2)},
		{},
		{signedTx(TxStake, "carol", carol, 1, 0, 2), signedTx(TxUnstake, "carol", carol, 4, 0, 3)},
	} {
		undos = append(undos, c.accept(c.next(0, txs...)))
		check(c.state)
		check(c.state.Clone())
	}
	for i := len(undos) - 1; i >= 0; i-- {
		c.state.Revert(undos[i])
		check(c.state)
	}
}

// FuzzBatchAgreesWithSingle: for any key, message and signature, the batch
// verifier (with its bisection) and the single check give one answer: the
// property that lets nodes take either path without ever splitting.
func FuzzBatchAgreesWithSingle(f *testing.F) {
	for i, tv := range loadZIP215(f) {
		if i%20 != 0 {
			continue
		}
		pub, _ := hex.DecodeString(tv[0])
		sig, _ := hex.DecodeString(tv[1])
		f.Add(pub, []byte("Zcash"), sig)
	}
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 1, 0, 1)
	pub, sig := tx.PublicKey[:], bytes.Clone(tx.Signature[:])
	f.Add(pub, tx.SigningBytes(), sig)
	sig[63] ^= 0x10 // S ≥ ℓ
	f.Add(pub, tx.SigningBytes(), sig)
	good := manyTransfers(5)
	v := NewSigVerifier(0)
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != 32 || len(sig) != 64 {
			return
		}
		single := verifyZIP215(pub, msg, sig)
		items := make([]sigItem, 0, len(good)+1)
		for i := range good {
			items = append(items, v.prepare(&good[i]))
		}
		key, err := v.expanded(PublicKey(pub))
		it := sigItem{key: key, msg: msg, sig: sig}
		if err != nil {
			it = sigItem{err: errSigDoesNotVerify}
		}
		items = append(items, it)
		bad := v.run(items, true)
		if (bad < 0) != single {
			t.Fatalf("single says %v, batch says first bad %d", single, bad)
		}
		if bad >= 0 && bad != len(good) {
			t.Fatalf("a good signature (%d) reported bad", bad)
		}
	})
}

// TestCheckTxLeavesNoPendingChanges: checking stake transactions against a
// state (as pools do, many times) leaves its table's pending changes alone.
func TestCheckTxLeavesNoPendingChanges(t *testing.T) {
	g := testGenesis(t)
	st := g.State()
	ElectionTable(g, st)
	alice := testAddr("alice")
	for i := range 100 {
		tx := signedTx(TxStake, "alice", alice, uint64(i+1), 0, 1)
		if err := st.CheckTx(&tx, g); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.pending) != 0 {
		t.Fatalf("%d pending changes after checks only", len(st.pending))
	}
	c := newTestChain(t, g)
	c.state = st
	b := c.next(0, signedTx(TxStake, "alice", alice, 5, 0, 1), signedTx(TxTransfer, "alice", alice, 1, 0, 9))
	if _, err := st.Apply(b, g); err == nil || len(st.pending) != 0 {
		t.Fatalf("refused block: %v, %d pending changes", err, len(st.pending))
	}
}

// TestSlotsServeUrgentFirst: with every slot taken, a block's check
// (urgent) waiting behind a pool admission gets the next free slot first.
func TestSlotsServeUrgentFirst(t *testing.T) {
	s := newSlots(1)
	s.acquire(false)
	order := make(chan string, 2)
	waiting := func(urgent, normal int) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.urgent) == urgent && len(s.normal) == normal
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.acquire(false); order <- "admission"; s.release() })
	for !waiting(0, 1) {
		runtime.Gosched()
	}
	wg.Go(func() { s.acquire(true); order <- "block"; s.release() })
	for !waiting(1, 1) {
		runtime.Gosched()
	}
	s.release()
	if first, second := <-order, <-order; first != "block" || second != "admission" {
		t.Fatalf("served %s then %s; the block's check should go first", first, second)
	}
	wg.Wait()
	if s.inUse != 0 {
		t.Fatalf("%d slots in use after every release, want 0", s.inUse)
	}
}
