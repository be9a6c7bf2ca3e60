package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/poslab/posd/chain/election"
)

// Defaults for genesis parameters left out of genesis.json.
const (
	DefaultElection    = "lottery"
	DefaultSlotMs      = 2000
	DefaultMaxRank     = 8
	DefaultMaxBlockTxs = 10000
	// MaxFutureMs is how far ahead of a node's clock a block timestamp may be.
	MaxFutureMs = 2000
	// MaxBlockTxsLimit caps max_block_txs so that a full block (a
	// transaction encodes to at most ~380 bytes) fits in one 8 MiB network
	// message; a larger block could be forged but never propagated.
	MaxBlockTxsLimit = 20000
	// MaxChainIDLen bounds chain ids so every transaction has a bounded size.
	MaxChainIDLen = 64
)

// ExchangePolicy says who may send EXCHANGE transactions: anyone ("open", as
// in the original) or only the listed authorities.
type ExchangePolicy struct {
	Open        bool
	Authorities []Address
}

// Allows reports whether from may mint coins through EXCHANGE.
func (p ExchangePolicy) Allows(from Address) bool {
	if p.Open {
		return true
	}
	for _, a := range p.Authorities {
		if a == from {
			return true
		}
	}
	return false
}

// MarshalJSON writes "open" or the list of authority addresses.
func (p ExchangePolicy) MarshalJSON() ([]byte, error) {
	if p.Open {
		return []byte(`"open"`), nil
	}
	list := p.Authorities
	if list == nil {
		list = []Address{}
	}
	return json.Marshal(list)
}

// UnmarshalJSON reads "open" or a list of addresses.
func (p *ExchangePolicy) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if s != "open" {
			return fmt.Errorf(`exchange must be "open" or a list of addresses, got %q`, s)
		}
		*p = ExchangePolicy{Open: true}
		return nil
	}
	var list []Address
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf(`exchange must be "open" or a list of addresses: %w`, err)
	}
	*p = ExchangePolicy{Authorities: list}
	return nil
}

// Allocation is an account's state at genesis.
type Allocation struct {
	Address Address `json:"address"`
	Balance uint64  `json:"balance"`
	Stake   uint64  `json:"stake"`
}

// Genesis holds the parameters of a network and its initial accounts. It is
// hashed into block 0, so two nodes agree on every rule before they talk.
type Genesis struct {
	ChainID     string         `json:"chain_id"`
	Timestamp   int64          `json:"timestamp"` // unix milliseconds
	Election    string         `json:"election"`
	SlotMs      int64          `json:"slot_ms"`
	MaxRank     uint32         `json:"max_rank"`
	MaxBlockTxs int            `json:"max_block_txs"`
	BlockReward uint64         `json:"block_reward"`
	Exchange    ExchangePolicy `json:"exchange"`
	Allocations []Allocation   `json:"allocations"`
}

// DefaultGenesis returns a genesis with every parameter at its default and no
// allocations: the caller adds chain id, timestamp and accounts.
func DefaultGenesis() *Genesis {
	return &Genesis{
		Election:    DefaultElection,
		SlotMs:      DefaultSlotMs,
		MaxRank:     DefaultMaxRank,
		MaxBlockTxs: DefaultMaxBlockTxs,
		Exchange:    ExchangePolicy{Open: true},
	}
}

// ParseGenesis decodes genesis.json, fills defaults for absent parameters and
// validates the result.
func ParseGenesis(data []byte) (*Genesis, error) {
	g := DefaultGenesis()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(g); err != nil {
		return nil, ruleErrorf(ErrBadGenesis, "decode genesis: %v", err)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Validate checks that the parameters make a network that can run.
func (g *Genesis) Validate() error {
	bad := func(format string, args ...any) error { return ruleErrorf(ErrBadGenesis, format, args...) }
	switch {
	case g.ChainID == "" || len(g.ChainID) > MaxChainIDLen:
		return bad("chain_id must be 1..%d bytes", MaxChainIDLen)
	case g.SlotMs <= 0:
		return bad("slot_ms must be positive, got %d", g.SlotMs)
	case g.MaxRank == 0:
		return bad("max_rank must be at least 1")
	case g.MaxBlockTxs <= 0 || g.MaxBlockTxs > MaxBlockTxsLimit:
		return bad("max_block_txs must be 1..%d, got %d", MaxBlockTxsLimit, g.MaxBlockTxs)
	}
	if _, err := election.Get(g.Election); err != nil {
		return bad("%v", err)
	}
	for _, a := range g.Exchange.Authorities {
		if !a.Valid() {
			return bad("exchange authority %q is not an address", a)
		}
	}
	seen := make(map[Address]bool, len(g.Allocations))
	var stake uint64
	for _, al := range g.Allocations {
		if !al.Address.Valid() {
			return bad("allocation address %q is not an address", al.Address)
		}
		if seen[al.Address] {
			return bad("address %s allocated twice", al.Address)
		}
		seen[al.Address] = true
		if stake+al.Stake < stake {
			return bad("total stake overflows")
		}
		stake += al.Stake
	}
	if stake == 0 {
		return bad("no allocation holds stake, so nobody could ever forge")
	}
	return nil
}

// Hash identifies the network: SHA-256 of a domain prefix and the genesis
// JSON with allocations sorted by address. Peers on another hash are another
// network.
func (g *Genesis) Hash() Hash {
	c := *g
	c.Allocations = append([]Allocation(nil), g.Allocations...)
	sort.Slice(c.Allocations, func(i, j int) bool { return c.Allocations[i].Address < c.Allocations[j].Address })
	data, err := json.Marshal(&c)
	if err != nil {
		// Every field of Genesis marshals; this cannot happen.
		panic(err)
	}
	return sha256.Sum256(append([]byte(genesisDomain), data...))
}

// Block returns block 0: height 0, no forger, no transactions, prev_hash the
// genesis hash and timestamp the genesis timestamp.
func (g *Genesis) Block() *Block {
	return &Block{Header: Header{Height: 0, PrevHash: g.Hash(), Timestamp: g.Timestamp, TxRoot: MerkleRoot(nil)}}
}

// State returns the accounts as genesis allocates them.
func (g *Genesis) State() *State {
	s := NewState()
	for _, al := range g.Allocations {
		s.accounts[al.Address] = Account{Balance: al.Balance, Stake: al.Stake}
	}
	return s
}

// Algorithm returns the genesis election.
func (g *Genesis) Algorithm() (election.Algorithm, error) {
	a, err := election.Get(g.Election)
	if err != nil {
		return nil, errors.Join(ErrBadGenesis, err)
	}
	return a, nil
}
