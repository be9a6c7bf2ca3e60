package store

import (
	"crypto/ed25519"
	"encoding/binary"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// key returns a deterministic Ed25519 key.
func key(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

func addrOf(k ed25519.PrivateKey) chain.Address {
	return chain.AddressOf(k.Public().(ed25519.PublicKey))
}

// fixture is a genesis with one staking forger and funded users.
type fixture struct {
	g      *chain.Genesis
	forger ed25519.PrivateKey
	users  []ed25519.PrivateKey
}

func newFixture(users int) *fixture {
	f := &fixture{forger: key(0)}
	g := chain.DefaultGenesis()
	g.ChainID = "store-test"
	g.Timestamp = 1_700_000_000_000
	g.BlockReward = 10
	g.Allocations = []chain.Allocation{{Address: addrOf(f.forger), Balance: 1000, Stake: 500}}
	for i := range users {
		k := key(1 + i)
		f.users = append(f.users, k)
		g.Allocations = append(g.Allocations, chain.Allocation{Address: addrOf(k), Balance: 1_000_000_000})
	}
	f.g = g
	return f
}

func (f *fixture) tx(typ chain.TxType, from ed25519.PrivateKey, to chain.Address, amount, fee, nonce uint64) chain.Transaction {
	tx := chain.Transaction{Type: typ, ChainID: f.g.ChainID, To: to, Amount: amount, Fee: fee, Nonce: nonce}
	if to == "" {
		tx.To = addrOf(from)
	}
	tx.Sign(from)
	return tx
}

// next builds and signs a block on parent, applies it to st and returns it
// with its undo record.
func (f *fixture) next(tb testing.TB, parent *chain.Header, st *chain.State, dt int64, txs ...chain.Transaction) (*chain.Block, *chain.Undo) {
	tb.Helper()
	b := chain.NewBlock(f.g, parent, 0, parent.Timestamp+dt, txs)
	b.Header.Sign(f.forger)
	u, err := st.Apply(b, f.g)
	if err != nil {
		tb.Fatalf("apply block %d: %v", b.Height, err)
	}
	return b, u
}

func openTemp(tb testing.TB) (*Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "chain.db")
	s, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

func mustInit(tb testing.TB, s *Store, g *chain.Genesis) {
	tb.Helper()
	if err := s.Init(g); err != nil {
		tb.Fatal(err)
	}
}

type boltTx = bolt.Tx
