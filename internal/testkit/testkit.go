// Package testkit builds the fixtures the project's tests share: keys that
// are the same on every run, a genesis with given stakers and allocations,
// signed transactions, and chains of blocks that pass the real chain rules
// (chain.ValidateAndApply), so a test never hand-rolls a block the node would
// refuse. Only tests import it.
//
// One name, one signature: Tx, Transfer, Stake, Unstake and Exchange all
// take the sender first and the nonce last; a fixture a package keeps for
// itself should wrap these rather than take its own argument order.
package testkit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/poslab/posd/chain"
)

// ChainID is the chain id of every fixture genesis and transaction.
const ChainID = "posd-test"

// GenesisMs is the timestamp of every fixture genesis (unix milliseconds).
const GenesisMs int64 = 1_700_000_000_000

// Key is a deterministic Ed25519 key and its address.
type Key struct {
	Priv ed25519.PrivateKey
	Addr chain.Address
}

// Public returns k's public key.
func (k Key) Public() ed25519.PublicKey { return k.Priv.Public().(ed25519.PublicKey) }

// The cast most tests need. Alice, Bob and Carol are the keys the API,
// client and wallet tests have always used (their golden files show them).
var (
	Alice = KeyN(1)
	Bob   = KeyN(2)
	Carol = KeyN(3)
	Dave  = KeyN(4)
)

// known maps every address the kit has made a key for back to the key, so
// a chain can sign for whichever staker the election picks. Bounded by the
// keys tests ask for.
var known sync.Map // chain.Address -> Key

func remember(seed []byte) Key {
	priv := ed25519.NewKeyFromSeed(seed)
	k := Key{Priv: priv, Addr: chain.AddressOf(priv.Public().(ed25519.PublicKey))}
	known.Store(k.Addr, k)
	return k
}

// KeyN returns the i-th test key. For 1 ≤ i ≤ 255 its seed is 32 bytes of
// value i (the derivation the existing golden files were made with); for
// any other i it is SHA-256 of "posd test key #i". Distinct i, distinct keys.
func KeyN(i int) Key {
	if i >= 1 && i <= 255 {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(i)
		}
		return remember(seed)
	}
	s := sha256.Sum256(fmt.Appendf(nil, "posd test key #%d", i))
	return remember(s[:])
}

// Named returns the key whose seed is SHA-256 of "posd test key <name>",
// the derivation chain's own tests and conformance vectors use.
func Named(name string) Key {
	s := sha256.Sum256([]byte("posd test key " + name))
	return remember(s[:])
}

// Keys returns n distinct keys starting at index from (KeyN(from), …).
func Keys(from, n int) []Key {
	out := make([]Key, n)
	for i := range out {
		out[i] = KeyN(from + i)
	}
	return out
}

// KeyOf returns the kit's key for address a, false if the kit made none.
func KeyOf(a chain.Address) (Key, bool) {
	k, ok := known.Load(a)
	if !ok {
		return Key{}, false
	}
	return k.(Key), true
}

// Tx is a transaction of type typ on ChainID, signed by from. An empty to
// means from itself (STAKE and UNSTAKE must name their sender).
func Tx(from Key, typ chain.TxType, to chain.Address, amount, fee, nonce uint64) chain.Transaction {
	if to == "" {
		to = from.Addr
	}
	tx := chain.Transaction{Type: typ, ChainID: ChainID, To: to, Amount: amount, Fee: fee, Nonce: nonce}
	tx.Sign(from.Priv)
	return tx
}

// Transfer is a signed TRANSFER of amount from from to to.
func Transfer(from Key, to chain.Address, amount, fee, nonce uint64) chain.Transaction {
	return Tx(from, chain.TxTransfer, to, amount, fee, nonce)
}

// Stake is a signed STAKE of amount by from.
func Stake(from Key, amount, fee, nonce uint64) chain.Transaction {
	return Tx(from, chain.TxStake, from.Addr, amount, fee, nonce)
}

// Unstake is a signed UNSTAKE of amount by from.
func Unstake(from Key, amount, fee, nonce uint64) chain.Transaction {
	return Tx(from, chain.TxUnstake, from.Addr, amount, fee, nonce)
}

// Exchange is a signed EXCHANGE minting amount to to (only an exchange
// authority's is valid when the genesis policy is closed).
func Exchange(from Key, to chain.Address, amount, fee, nonce uint64) chain.Transaction {
	return Tx(from, chain.TxExchange, to, amount, fee, nonce)
}

// Resign signs tx again with k after a test edited it (another chain id, a
// field out of range), so the edit and not the signature is what is refused.
func Resign(k Key, tx chain.Transaction) chain.Transaction {
	tx.Sign(k.Priv)
	return tx
}

// Corrupt returns tx with a well-formed signature that does not verify.
func Corrupt(tx chain.Transaction) chain.Transaction {
	tx.Signature[0] ^= 0x10 // R changed: well formed, does not verify
	return tx
}

// Nonces hands out each sender's next nonce, starting at 1.
type Nonces map[chain.Address]uint64

// Next returns k's next nonce and counts it as used.
func (n Nonces) Next(k Key) uint64 {
	n[k.Addr]++
	return n[k.Addr]
}

// Fund is k's genesis allocation.
func Fund(k Key, balance, stake uint64) chain.Allocation {
	return chain.Allocation{Address: k.Addr, Balance: balance, Stake: stake}
}

// Genesis is the default genesis on ChainID at GenesisMs with exactly
// allocs, then each mutate applied in order. It panics if the result is not
// a valid genesis: a fixture that is wrong is the test's bug, and fixtures
// are built where no testing.TB is at hand (package variables, fakes).
func Genesis(allocs []chain.Allocation, mutate ...func(*chain.Genesis)) *chain.Genesis {
	g := chain.DefaultGenesis()
	g.ChainID = ChainID
	g.Timestamp = GenesisMs
	g.Allocations = append([]chain.Allocation(nil), allocs...)
	for _, m := range mutate {
		m(g)
	}
	if err := g.Validate(); err != nil {
		panic(fmt.Sprintf("testkit: genesis invalid: %v", err))
	}
	return g
}
