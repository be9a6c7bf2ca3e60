package chainmgr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// The per-block costs on states of growing size: what a node pays per
// block must follow what the block changed, not how many accounts exist
// (docs/PERFORMANCE.md, "Per-block cost and state size").
//
//	go test -run '^$' -bench BenchmarkStateSize -benchtime 40x ./daemon/chainmgr/

// scaleSenders is the number of funded keys a 1000-tx block spends from,
// two transfers each (so the 10^3-account state can hold them).
const scaleSenders = 500

// bulkAddress is the i-th filler account of a big state.
func bulkAddress(i int) chain.Address {
	h := sha256.Sum256(fmt.Appendf(nil, "bulk %d", i))
	return chain.Address(hex.EncodeToString(h[:20]))
}

// bigStore is a store whose state, once loaded, also holds bulk filler
// accounts: a state of a million accounts is written directly, not built
// from a million signed transactions. Commits write what blocks touch,
// so the store never needs the filler.
type bigStore struct {
	Store
	bulk []chain.Address
}

func (s bigStore) LoadState() (*chain.State, error) {
	st, err := s.Store.LoadState()
	if err != nil {
		return nil, err
	}
	for i, a := range s.bulk {
		st.SetAccount(a, chain.Account{Balance: 1 + uint64(i%1000), Nonce: uint64(i % 7)})
	}
	return st, nil
}

type scaleChain struct {
	g       *chain.Genesis
	forger  *keystore.Key
	senders []*keystore.Key
	bulk    []chain.Address
	m       *Manager
	dir     string
	nonce   uint64 // the senders' last nonce
}

// newScaleChain is a manager on a real store whose state holds accounts
// accounts: the forger (the only staker), scaleSenders funded senders
// and filler.
func newScaleChain(b *testing.B, accounts int, senders []*keystore.Key) *scaleChain {
	b.Helper()
	forger, _ := keystore.Generate()
	g := chain.DefaultGenesis()
	g.ChainID = "scale-bench"
	g.Timestamp = time.Now().Add(-time.Hour).UnixMilli()
	g.Allocations = []chain.Allocation{{Address: forger.Address(), Balance: 1000, Stake: g.MinTotalStake}}
	for _, k := range senders {
		g.Allocations = append(g.Allocations, chain.Allocation{Address: k.Address(), Balance: 1 << 40})
	}
	if err := g.Validate(); err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "posd-scale-bench")
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "chain.db"))
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		b.Fatal(err)
	}
	bulk := make([]chain.Address, accounts-len(g.Allocations))
	for i := range bulk {
		bulk[i] = bulkAddress(i)
	}
	m, err := New(Config{Genesis: g, Store: bigStore{st, bulk}})
	if err != nil {
		b.Fatal(err)
	}
	if n := m.Snapshot().Len(); n != accounts {
		b.Fatalf("state holds %d accounts, want %d", n, accounts)
	}
	return &scaleChain{g: g, forger: forger, senders: senders, bulk: bulk, m: m, dir: dir}
}

func (c *scaleChain) close() {
	c.m.Close()
	os.RemoveAll(c.dir)
}

// next is the forger's next block on the head with txs, whose signatures
// the verifier has checked already (as the pool does at admission).
func (c *scaleChain) next(txs []chain.Transaction) *chain.Block {
	errs := make([]error, len(txs))
	c.m.Verifier().VerifyTxs(txs, errs)
	head := c.m.Head()
	b := chain.NewBlock(c.g, &head.Header, 0, head.Timestamp+1, txs)
	c.forger.SignHeader(&b.Header)
	return b
}

// transfers is two transfers from each sender to filler accounts spread
// over the state (so the block writes all over it): 1000 transactions.
func (c *scaleChain) transfers() []chain.Transaction {
	txs := make([]chain.Transaction, 0, 2*len(c.senders))
	for n := range 2 {
		for i, k := range c.senders {
			to := c.senders[(i+1)%len(c.senders)].Address()
			if len(c.bulk) > 0 {
				to = c.bulk[(int(c.nonce)*len(c.senders)+len(txs))*7919%len(c.bulk)]
			}
			tx := chain.Transaction{Type: chain.TxTransfer, ChainID: c.g.ChainID, To: to, Amount: 1, Fee: 1, Nonce: c.nonce + uint64(n) + 1}
			k.SignTx(&tx)
			txs = append(txs, tx)
		}
	}
	c.nonce += 2
	return txs
}

// commit imports b and waits for the election on it, as a node does
// before it can take the next block: one block's whole cost.
func (c *scaleChain) commit(b *testing.B, blk *chain.Block) {
	if err := c.m.ProcessOwnBlock(blk); err != nil {
		b.Fatal(err)
	}
	if len(c.m.Snapshot().Candidates()) == 0 {
		b.Fatal("no candidates")
	}
}

// BenchmarkStateSize commits an empty block and a block of 1000
// transfers (store commit, snapshot, and the election on the new head
// included), and runs an election after a stake change, on states of
// 10^3, 10^5 and 10^6 accounts. Signing and signature checks are outside
// the timed part (the forger's pool checked them at admission).
func BenchmarkStateSize(b *testing.B) {
	senders := make([]*keystore.Key, scaleSenders)
	for i := range senders {
		senders[i], _ = keystore.Generate()
	}
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		// Built on first use (a -bench filter may skip every case of a
		// size) and kept across the cases and runs of that size.
		var c *scaleChain
		setup := func(b *testing.B) {
			if c == nil {
				c = newScaleChain(b, n, senders)
			}
		}
		b.Run(fmt.Sprintf("accounts=%d/commit=empty", n), func(b *testing.B) {
			setup(b)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				blk := c.next(nil)
				b.StartTimer()
				c.commit(b, blk)
			}
		})
		b.Run(fmt.Sprintf("accounts=%d/commit=1000tx", n), func(b *testing.B) {
			setup(b)
			// Signed before the clock starts, so a profile of the run
			// shows the commit, not the signing.
			rounds := make([][]chain.Transaction, b.N)
			for i := range rounds {
				rounds[i] = c.transfers()
			}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				blk := c.next(rounds[i])
				rounds[i] = nil
				b.StartTimer()
				c.commit(b, blk)
			}
		})
		b.Run(fmt.Sprintf("accounts=%d/election", n), func(b *testing.B) {
			setup(b)
			snap := c.m.Snapshot()
			alg, _ := c.g.Algorithm()
			forger := c.forger.Address()
			acc := snap.Account(forger)
			// Each election follows a stake change (so the table is
			// updated, not taken as is), on a copy of the snapshot's state.
			st := snap.ReadState().Clone()
			seed := chain.ElectionSeed(c.g, &snap.Head().Header)
			b.ResetTimer()
			for i := range b.N {
				acc.Stake = c.g.MinTotalStake + uint64(i%2+1)*c.g.LotSize
				st.SetAccount(forger, acc)
				if len(chain.ElectWith(alg, c.g.MaxRank, seed, chain.ElectionTable(c.g, st))) == 0 {
					b.Fatal("no candidates")
				}
			}
		})
		if c != nil {
			c.close()
		}
	}
}
