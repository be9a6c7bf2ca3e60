package chain

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGenesis(t *testing.T) {
	addr := string(testAddr("alice"))
	good := `{"chain_id":"x","timestamp":1,"allocations":[{"address":"` + addr + `","balance":1000,"stake":1}]}`
	g, err := ParseGenesis([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if g.Election != "lottery" || g.SlotMs != 2000 || g.MaxRank != 8 || g.MaxBlockTxs != 10000 || !g.Exchange.Open || g.BlockReward != 0 {
		t.Fatalf("defaults not applied: %+v", g)
	}
	closed, err := ParseGenesis([]byte(strings.Replace(good, `"timestamp":1`, `"timestamp":1,"exchange":["`+addr+`"]`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if closed.Exchange.Open || !closed.Exchange.Allows(testAddr("alice")) || closed.Exchange.Allows(testAddr("bob")) {
		t.Fatalf("closed policy wrong: %+v", closed.Exchange)
	}
	if g.Hash() == closed.Hash() {
		t.Fatal("exchange policy is not part of the genesis hash")
	}

	bad := map[string]string{
		"not json":             `{`,
		"unknown field":        `{"chain_id":"x","stakez":1}`,
		"no chain id":          strings.Replace(good, `"chain_id":"x"`, `"chain_id":""`, 1),
		"unknown election":     strings.Replace(good, `"timestamp":1`, `"timestamp":1,"election":"dice"`, 1),
		"zero slot":            strings.Replace(good, `"timestamp":1`, `"timestamp":1,"slot_ms":0`, 1),
		"zero max_rank":        strings.Replace(good, `"timestamp":1`, `"timestamp":1,"max_rank":0`, 1),
		"bad exchange word":    strings.Replace(good, `"timestamp":1`, `"timestamp":1,"exchange":"closed"`, 1),
		"bad authority":        strings.Replace(good, `"timestamp":1`, `"timestamp":1,"exchange":["nope"]`, 1),
		"bad allocation":       strings.Replace(good, addr, "nope", 1),
		"nobody stakes":        strings.Replace(good, `"stake":1`, `"stake":0`, 1),
		"allocated twice":      strings.Replace(good, `]}`, `,{"address":"`+addr+`","balance":1}]}`, 1),
		"negative balance":     strings.Replace(good, `"balance":1000`, `"balance":-1`, 1),
		"chain id too long":    strings.Replace(good, `"chain_id":"x"`, `"chain_id":"`+strings.Repeat("x", 65)+`"`, 1),
		"max_block_txs zero":   strings.Replace(good, `"timestamp":1`, `"timestamp":1,"max_block_txs":0`, 1),
		"max_block_txs huge":   strings.Replace(good, `"timestamp":1`, `"timestamp":1,"max_block_txs":20001`, 1),
		"stake total overflow": strings.Replace(good, `]}`, `,{"address":"`+string(testAddr("bob"))+`","stake":18446744073709551615}]}`, 1),
	}
	for name, doc := range bad {
		_, err := ParseGenesis([]byte(doc))
		if !errors.Is(err, ErrBadGenesis) {
			t.Errorf("%s: got %v, want bad_genesis", name, err)
		}
	}
}

func TestAddress(t *testing.T) {
	a := testAddr("alice")
	if !a.Valid() || len(a) != 40 {
		t.Fatalf("derived address %q invalid", a)
	}
	for _, s := range []string{"", strings.ToUpper(string(a)), string(a[:39]), string(a) + "0", "g" + string(a[1:])} {
		if _, err := ParseAddress(s); !errors.Is(err, ErrBadAddress) {
			t.Errorf("ParseAddress(%q) = %v", s, err)
		}
	}
	if got := a.Short(); got != string(a[:4])+"…"+string(a[36:]) {
		t.Errorf("Short = %q", got)
	}
}

func TestCheckTxLeavesStateAlone(t *testing.T) {
	g := testGenesis(t)
	s := g.State()
	before := s.Clone()
	if err := s.CheckTx(ptr(signedTx(TxTransfer, "alice", testAddr("bob"), 10, 1, 1)), g); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckTx(ptr(signedTx(TxTransfer, "carol", testAddr("bob"), 1000, 1, 1)), g); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("got %v", err)
	}
	if !s.Equal(before) {
		t.Fatal("CheckTx changed the state")
	}
}

func ptr[T any](v T) *T { return &v }
