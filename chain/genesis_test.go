package chain

import (
	"errors"
	"strings"
	"testing"
	"time"
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

// TestGenesisHeartbeatMs pins heartbeat_ms: slot_ms/4 when absent (of the
// genesis's own slot_ms), 1..slot_ms when given, in the hash, and the same
// default through GenesisParams.Build.
func TestGenesisHeartbeatMs(t *testing.T) {
	addr := string(testAddr("alice"))
	doc := func(fields string) string {
		return `{"chain_id":"x","timestamp":1` + fields + `,"allocations":[{"address":"` + addr + `","balance":1000,"stake":2}]}`
	}
	for _, tc := range []struct {
		name, fields string
		want         int64 // 0: refused with bad_genesis
	}{
		{"absent, default slot", "", 500},
		{"absent, slot 10000", `,"slot_ms":10000`, 2500},
		{"explicit", `,"heartbeat_ms":700`, 700},
		{"one", `,"heartbeat_ms":1`, 1},
		{"equal to slot", `,"heartbeat_ms":2000`, 2000},
		{"zero", `,"heartbeat_ms":0`, 0},
		{"negative", `,"heartbeat_ms":-5`, 0},
		{"above slot", `,"heartbeat_ms":2001`, 0},
		{"above a short slot", `,"slot_ms":1000,"heartbeat_ms":1500`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGenesis([]byte(doc(tc.fields)))
			if tc.want == 0 {
				if !errors.Is(err, ErrBadGenesis) {
					t.Fatalf("got %v, want bad_genesis", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.HeartbeatMs != tc.want {
				t.Fatalf("heartbeat_ms %d, want %d", g.HeartbeatMs, tc.want)
			}
		})
	}
	a, _ := ParseGenesis([]byte(doc("")))
	b, _ := ParseGenesis([]byte(doc(`,"heartbeat_ms":501`)))
	if a.Hash() == b.Hash() {
		t.Error("heartbeat_ms is not covered by the genesis hash")
	}
	if DefaultGenesis().HeartbeatMs != DefaultSlotMs/4 {
		t.Errorf("DefaultGenesis heartbeat_ms %d", DefaultGenesis().HeartbeatMs)
	}
	p := DefaultGenesisParams()
	p.SlotMs = 4000
	g, err := p.Build(time.UnixMilli(1), []Allocation{{Address: Address(addr), Balance: 1, Stake: 1}})
	if err != nil || g.HeartbeatMs != 1000 {
		t.Fatalf("Build with slot 4000: %v, heartbeat_ms %v", err, g)
	}
	p.HeartbeatMs = 4001
	if _, err := p.Build(time.UnixMilli(1), []Allocation{{Address: Address(addr), Balance: 1, Stake: 1}}); !errors.Is(err, ErrBadGenesis) {
		t.Fatalf("Build with heartbeat_ms over slot_ms: %v", err)
	}
}
