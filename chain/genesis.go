package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/poslab/posd/chain/election"
)

// Defaults for genesis parameters left out of genesis.json.
const (
	DefaultElection    = "lottery"
	DefaultSlotMs      = 2000
	DefaultMaxRank     = 8
	DefaultMaxBlockTxs = 10000
	// DefaultSeedSource seeds each election with the parent's VRF output.
	DefaultSeedSource = SeedVRF
	// DefaultLotSize is one lottery lot per staked coin, as the original.
	DefaultLotSize = 1
	// DefaultMaxLots bounds the total lots so that the worst election
	// reachable by valid transactions stays under 50 ms on 2 cores (see
	// docs/PERFORMANCE.md, BenchmarkWorstElection).
	DefaultMaxLots = 200_000
	// MaxLotsLimit is the largest max_lots a genesis may set: the bound on
	// election cost holds up to it, not beyond.
	MaxLotsLimit = DefaultMaxLots
	// DefaultMinTotalStake keeps at least one coin staked, so the election
	// is never empty.
	DefaultMinTotalStake = 1
	// DefaultHeartbeatDivisor: with heartbeat_ms absent, the heartbeat beats
	// every slot_ms/4. The lab measured (docs/ATTACKS.md) that beats a
	// quarter slot apart cut a third-of-the-stake private attack on a
	// payment six deep from 22.5% (one beat a slot) to 5.9%.
	DefaultHeartbeatDivisor = 4
	// DefaultUnbondingBlocks is how many heights unstaked coins wait
	// before they return to the balance: four times the reorg limit, so
	// every evidence of an offence committed while they were bonded can
	// still reach them.
	DefaultUnbondingBlocks = 256
	// MaxUnbondingBlocks bounds unbonding_blocks so that a release height
	// never overflows.
	MaxUnbondingBlocks = 1 << 32
	// DefaultSlashPercent is the share of an equivocator's stake burned.
	DefaultSlashPercent = 50
	// MaxFutureMs is how far ahead of a node's clock a block timestamp may
	// be: the allowed clock drift. Genesis refuses slot_ms < 2 × MaxFutureMs,
	// so rank k+1 can never forge at the moment rank k may.
	MaxFutureMs = 500
	// MaxBlockTxsLimit caps max_block_txs so that a full block (a
	// transaction encodes to at most ~380 bytes) fits in one 8 MiB network
	// message; a larger block could be forged but never propagated.
	MaxBlockTxsLimit = 20000
	// MaxChainIDLen bounds chain ids so every transaction has a bounded size.
	MaxChainIDLen = 64

	// DefaultEpochBlocks makes every block a checkpoint (the v3 rules): a
	// block is final about two blocks after it was forged.
	DefaultEpochBlocks = 1
	// MaxEpochBlocks bounds epoch_blocks to max_reorg: a vote's target may
	// be at most MaxVoteAge heights below the block carrying it, so a
	// longer epoch could leave a checkpoint no vote can reach in time.
	MaxEpochBlocks = MaxVoteAge
	// DefaultMaxBlockVotes lets one block carry a vote of every staker of
	// a large devnet for a few checkpoints.
	DefaultMaxBlockVotes = 1024
	// MaxBlockVotesLimit is the largest max_block_votes a genesis may set:
	// the block decoder refuses more before it allocates, whatever the
	// genesis (4096 votes are 725 KB, well inside a network message).
	MaxBlockVotesLimit = 4096
)

// Seed sources: where the election for a block takes its seed.
const (
	// SeedVRF: the parent's seed, the VRF output of its forger over the
	// grandparent's seed. The forger cannot choose it (the v2 rules).
	SeedVRF = "vrf"
	// SeedBlockHash: the parent's hash, as in v1. The forger chooses it
	// through its timestamp and transaction set: kept only so the grinding
	// attack can be shown.
	SeedBlockHash = "block_hash"
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

	// v2 parameters. A genesis.json written before v2 leaves them out and
	// gets the defaults; the hash covers them either way.

	// SeedSource is SeedVRF or SeedBlockHash.
	SeedSource string `json:"seed_source"`
	// LotSize is the number of staked coins per election lot; a staker's
	// remainder below a whole lot does not count in the election.
	LotSize uint64 `json:"lot_size"`
	// MaxLots bounds the total lots: a STAKE that would pass it is refused
	// (stake_limit).
	MaxLots uint64 `json:"max_lots"`
	// MinTotalStake is the least stake, counted in whole lots, that must
	// stay staked: a transaction that would leave less is refused (stake_floor).
	MinTotalStake uint64 `json:"min_total_stake"`
	// Heartbeat: the rightful forger forges empty blocks while the newest
	// non-empty block is less than max_reorg deep (node policy reads it).
	Heartbeat bool `json:"heartbeat"`
	// HeartbeatMs is how old the head must be before the rank-0 candidate
	// forges an empty heartbeat block (1..slot_ms; default slot_ms/4).
	// Fallback ranks keep their rank × slot_ms wait.
	HeartbeatMs int64 `json:"heartbeat_ms"`
	// SlashPercent of an equivocator's stake is burned (0..100).
	SlashPercent uint32 `json:"slash_percent"`
	// MinFee is the least fee a transaction may carry (fee_too_low).
	MinFee uint64 `json:"min_fee"`
	// Lab marks a network made for experiments (attack engines may run).
	Lab bool `json:"lab"`

	// v3 parameters (the v3 rules, docs/CONSENSUS.md). A genesis.json written before v3
	// leaves them out and gets the defaults. The hash covers them, but
	// leaves each out while it holds its default (see Hash): every network
	// made before v3 keeps its genesis hash, so its stored chains and its
	// peers stay valid, and a network choosing another value is another
	// network.

	// EpochBlocks: every block whose height is a multiple of it is a
	// checkpoint (1..MaxEpochBlocks).
	EpochBlocks uint64 `json:"epoch_blocks,omitzero"`
	// MaxBlockVotes bounds the votes one block carries (too_many_votes).
	MaxBlockVotes int `json:"max_block_votes,omitzero"`
	// UnbondingBlocks is how many heights after its UNSTAKE stake stays
	// unbonding (no lots, still slashable) before it returns to the
	// balance; evidence older than that expires. A genesis file always
	// has one (1..MaxUnbondingBlocks); a Genesis built in code with 0
	// (tests only: Validate refuses it) returns unstaked coins at once, as
	// in v2, and keeps v2's evidence age (MaxEvidenceAge).
	UnbondingBlocks uint64 `json:"unbonding_blocks,omitzero"`
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

		SeedSource:    DefaultSeedSource,
		LotSize:       DefaultLotSize,
		MaxLots:       DefaultMaxLots,
		MinTotalStake: DefaultMinTotalStake,
		Heartbeat:     true,
		HeartbeatMs:   DefaultSlotMs / DefaultHeartbeatDivisor,
		SlashPercent:  DefaultSlashPercent,

		EpochBlocks:     DefaultEpochBlocks,
		MaxBlockVotes:   DefaultMaxBlockVotes,
		UnbondingBlocks: DefaultUnbondingBlocks,
	}
}

// heartbeatUnset marks heartbeat_ms absent from genesis.json while it is
// decoded: its default depends on slot_ms, known only after decoding, and
// an explicit 0 must still be refused.
const heartbeatUnset = -1

// ParseGenesis decodes genesis.json, fills defaults for absent parameters and
// validates the result.
func ParseGenesis(data []byte) (*Genesis, error) {
	g := DefaultGenesis()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	g.HeartbeatMs = heartbeatUnset
	if err := dec.Decode(g); err != nil {
		return nil, ruleErrorf(ErrBadGenesis, "decode genesis: %v", err)
	}
	if g.HeartbeatMs == heartbeatUnset {
		g.HeartbeatMs = g.SlotMs / DefaultHeartbeatDivisor
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
	case strings.IndexByte(g.ChainID, 0) >= 0:
		// A vote's signing bytes end the chain id with 0x00 (Vote.SigningBytes).
		return bad("chain_id must not hold a 0x00 byte")
	case g.SlotMs < 2*MaxFutureMs:
		return bad("slot_ms must be at least %d (twice the allowed clock drift of %d ms), got %d", 2*MaxFutureMs, MaxFutureMs, g.SlotMs)
	case g.MaxRank == 0:
		return bad("max_rank must be at least 1")
	case g.MaxBlockTxs <= 0 || g.MaxBlockTxs > MaxBlockTxsLimit:
		return bad("max_block_txs must be 1..%d, got %d", MaxBlockTxsLimit, g.MaxBlockTxs)
	case g.SeedSource != SeedVRF && g.SeedSource != SeedBlockHash:
		return bad("seed_source must be %q or %q, got %q", SeedVRF, SeedBlockHash, g.SeedSource)
	case g.LotSize == 0:
		return bad("lot_size must be at least 1")
	case g.MaxLots == 0 || g.MaxLots > MaxLotsLimit:
		return bad("max_lots must be 1..%d, got %d", MaxLotsLimit, g.MaxLots)
	case g.MaxLots > math.MaxUint64/g.LotSize:
		return bad("max_lots × lot_size overflows")
	case g.MinTotalStake == 0:
		return bad("min_total_stake must be at least 1: with no stake nobody could ever forge")
	case g.HeartbeatMs < 1 || g.HeartbeatMs > g.SlotMs:
		return bad("heartbeat_ms must be 1..slot_ms (%d), got %d", g.SlotMs, g.HeartbeatMs)
	case g.SlashPercent > 100:
		return bad("slash_percent must be 0..100, got %d", g.SlashPercent)
	case g.EpochBlocks < 1 || g.EpochBlocks > MaxEpochBlocks:
		return bad("epoch_blocks must be 1..%d, got %d", MaxEpochBlocks, g.EpochBlocks)
	case g.MaxBlockVotes < 1 || g.MaxBlockVotes > MaxBlockVotesLimit:
		return bad("max_block_votes must be 1..%d, got %d", MaxBlockVotesLimit, g.MaxBlockVotes)
	case g.UnbondingBlocks < 1 || g.UnbondingBlocks > MaxUnbondingBlocks:
		return bad("unbonding_blocks must be 1..%d, got %d", uint64(MaxUnbondingBlocks), g.UnbondingBlocks)
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
	var stake, lots uint64
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
		lots += al.Stake / g.LotSize
	}
	if stake == 0 {
		return bad("no allocation holds stake, so nobody could ever forge")
	}
	if lots > g.MaxLots {
		return bad("allocations hold %d lots, max_lots is %d", lots, g.MaxLots)
	}
	if lots*g.LotSize < g.MinTotalStake {
		return bad("allocations stake %d in whole lots of %d, min_total_stake is %d", lots*g.LotSize, g.LotSize, g.MinTotalStake)
	}
	return nil
}

// Hash identifies the network: SHA-256 of a domain prefix and the genesis
// JSON with allocations sorted by address. Peers on another hash are another
// network.
func (g *Genesis) Hash() Hash {
	c := *g
	// v3 parameters at their defaults are left out (zero, omitzero), so
	// the hash of every network made before v3 stays what it was.
	if c.EpochBlocks == DefaultEpochBlocks {
		c.EpochBlocks = 0
	}
	if c.MaxBlockVotes == DefaultMaxBlockVotes {
		c.MaxBlockVotes = 0
	}
	if c.UnbondingBlocks == DefaultUnbondingBlocks {
		c.UnbondingBlocks = 0
	}
	c.Allocations = append([]Allocation(nil), g.Allocations...)
	sort.Slice(c.Allocations, func(i, j int) bool { return c.Allocations[i].Address < c.Allocations[j].Address })
	data, err := json.Marshal(&c)
	if err != nil {
		// Every field of Genesis marshals; this cannot happen.
		panic(err)
	}
	return sha256.Sum256(append([]byte(genesisDomain), data...))
}

// Block returns block 0: height 0, no forger, no transactions, prev_hash
// and seed the genesis hash, timestamp the genesis timestamp.
func (g *Genesis) Block() *Block {
	h := g.Hash()
	return &Block{Header: Header{Height: 0, PrevHash: h, Timestamp: g.Timestamp, TxRoot: MerkleRoot(nil), Seed: h}}
}

// State returns the accounts as genesis allocates them, and the finality
// record in which block 0 is justified and final.
func (g *Genesis) State() *State {
	s := NewState()
	for _, al := range g.Allocations {
		s.put(al.Address, Account{Balance: al.Balance, Stake: al.Stake})
	}
	s.fin = genesisFinality(g, s)
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
