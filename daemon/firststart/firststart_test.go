package firststart

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// fakeChain records metadata and knows which transactions are committed.
type fakeChain struct {
	meta      map[string][]byte
	committed map[chain.Hash]bool
	balance   uint64
}

var errNoMeta = errors.New("not found")

func (c *fakeChain) Account(chain.Address) chain.Account { return chain.Account{Balance: c.balance} }
func (c *fakeChain) TxLocation(id chain.Hash) (uint64, int, error) {
	if c.committed[id] {
		return 1, 0, nil
	}
	return 0, 0, errNoMeta
}
func (c *fakeChain) Meta(key string) ([]byte, error) {
	if v, ok := c.meta[key]; ok {
		return v, nil
	}
	return nil, errNoMeta
}
func (c *fakeChain) PutMeta(key string, v []byte) error { c.meta[key] = v; return nil }

// fakeSubmit counts what is submitted and how.
type fakeSubmit struct{ again, own []chain.Transaction }

func (s *fakeSubmit) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	s.again = append(s.again, tx)
	return tx.ID(), nil
}
func (s *fakeSubmit) SubmitOwn(tx chain.Transaction) (chain.Transaction, error) {
	tx.Nonce = uint64(len(s.own) + 1)
	s.own = append(s.own, tx)
	return tx, nil
}

type noPeers struct{}

func (noPeers) Peers() []rpc.Peer { return nil }

// TestOncePerHome: a fresh home funds and stakes with new transactions and
// records them; a restart resubmits what is recorded but not committed, and
// submits nothing once it is committed.
func TestOncePerHome(t *testing.T) {
	c := &fakeChain{meta: map[string][]byte{}, committed: map[chain.Hash]bool{}, balance: 50}
	s := &fakeSubmit{}
	cfg := Config{Chain: c, Submit: s, Address: "me", ChainID: "test", Fund: 100, Stake: 40, Log: slog.New(slog.DiscardHandler)}
	Run(context.Background(), cfg, time.Millisecond)
	if len(s.own) != 2 || s.own[0].Type != chain.TxExchange || s.own[0].Amount != 100 || s.own[1].Type != chain.TxStake || s.own[1].Amount != 40 {
		t.Fatalf("first start submitted %+v, want an EXCHANGE of 100 then a STAKE of 40", s.own)
	}
	if len(c.meta) != 2 {
		t.Fatalf("recorded %d transactions, want 2", len(c.meta))
	}

	// Restart before either is committed: the same two again, nothing new.
	*s = fakeSubmit{}
	Run(context.Background(), cfg, time.Millisecond)
	if len(s.own) != 0 || len(s.again) != 2 {
		t.Fatalf("restart: %d new, %d again; want 0 new, 2 again", len(s.own), len(s.again))
	}
	for key, v := range c.meta {
		var tx chain.Transaction
		if err := json.Unmarshal(v, &tx); err != nil {
			t.Fatal(key, err)
		}
		c.committed[tx.ID()] = true
	}

	// Restart after both are committed: nothing.
	*s = fakeSubmit{}
	Run(context.Background(), cfg, time.Millisecond)
	if len(s.own)+len(s.again) != 0 {
		t.Fatalf("restart after commit submitted %d new, %d again", len(s.own), len(s.again))
	}
}

// TestStakeWaitsForBalance: the STAKE waits until the committed balance
// covers it, and gives up when the node stops.
func TestStakeWaitsForBalance(t *testing.T) {
	c := &fakeChain{meta: map[string][]byte{}, committed: map[chain.Hash]bool{}, balance: 10}
	s := &fakeSubmit{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	Run(ctx, Config{Chain: c, Submit: s, Net: noPeers{}, Address: "me", ChainID: "test", Stake: 40, Log: slog.New(slog.DiscardHandler)}, time.Hour)
	if len(s.own)+len(s.again) != 0 || len(c.meta) != 0 {
		t.Fatalf("staked %+v with balance 10 < 40", s.own)
	}
}
