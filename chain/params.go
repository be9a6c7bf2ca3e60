package chain

import (
	"fmt"
	"strings"
	"time"
)

// GenesisParams are the parameters of a new network as a node operator
// gives them (flags of posd start --genesis and posd devnet): Build turns
// them and the initial accounts into a validated Genesis.
//
// Start from DefaultGenesisParams. In Build, an empty or zero ChainID,
// Election, SlotMs, MaxRank, MaxBlockTxs, Exchange, SeedSource, LotSize,
// MaxLots, MinTotalStake, HeartbeatMs and Timestamp take their defaults
// (now for the timestamp, slot_ms/4 for HeartbeatMs); BlockReward,
// Heartbeat, SlashPercent, MinFee, Lab and UnbondingBlocks are taken as they are, zero
// being a meaningful value for each.
type GenesisParams struct {
	ChainID     string
	Election    string
	SlotMs      int64
	MaxRank     uint32
	MaxBlockTxs int
	BlockReward uint64
	// Exchange is "open" or a comma-separated list of addresses.
	Exchange string
	// Allocations are added to the genesis node's own (stake 1, balance 1000).
	Allocations []Allocation
	// Timestamp in unix ms; 0 means now.
	Timestamp int64

	SeedSource    string
	LotSize       uint64
	MaxLots       uint64
	MinTotalStake uint64
	Heartbeat     bool
	// HeartbeatMs 0 means slot_ms/4 (of the genesis's slot_ms).
	HeartbeatMs  int64
	SlashPercent uint32
	MinFee       uint64
	Lab          bool
	// UnbondingBlocks is taken as it is: 0 turns unbonding off (see
	// Genesis.UnbondingBlocks).
	UnbondingBlocks uint64
}

// DefaultChainID names a network made without --chain-id.
const DefaultChainID = "posd-local"

// DefaultGenesisParams are the original's (lottery, one staker) with the
// v2 defaults.
func DefaultGenesisParams() GenesisParams {
	g := DefaultGenesis()
	return GenesisParams{
		ChainID: DefaultChainID, Election: g.Election, SlotMs: g.SlotMs, MaxRank: g.MaxRank,
		MaxBlockTxs: g.MaxBlockTxs, Exchange: "open",
		SeedSource: g.SeedSource, LotSize: g.LotSize, MaxLots: g.MaxLots, MinTotalStake: g.MinTotalStake,
		Heartbeat: g.Heartbeat, SlashPercent: g.SlashPercent, MinFee: g.MinFee, Lab: g.Lab,
		UnbondingBlocks: g.UnbondingBlocks,
	}
}

// Build makes the genesis these parameters describe, with these accounts,
// and validates it (bad_genesis). now is the timestamp when p has none.
func (p GenesisParams) Build(now time.Time, allocs []Allocation) (*Genesis, error) {
	g := DefaultGenesis()
	g.ChainID = firstNonEmpty(p.ChainID, DefaultChainID)
	g.Election = firstNonEmpty(p.Election, g.Election)
	setIfPositive(&g.SlotMs, p.SlotMs)
	setIfPositive(&g.MaxRank, p.MaxRank)
	setIfPositive(&g.MaxBlockTxs, p.MaxBlockTxs)
	g.BlockReward = p.BlockReward
	g.Timestamp = p.Timestamp
	if g.Timestamp == 0 {
		g.Timestamp = now.UnixMilli()
	}
	var err error
	if g.Exchange, err = ParseExchangePolicy(firstNonEmpty(p.Exchange, "open")); err != nil {
		return nil, err
	}
	g.SeedSource = firstNonEmpty(p.SeedSource, g.SeedSource)
	setIfPositive(&g.LotSize, p.LotSize)
	setIfPositive(&g.MaxLots, p.MaxLots)
	setIfPositive(&g.MinTotalStake, p.MinTotalStake)
	g.Heartbeat = p.Heartbeat
	g.HeartbeatMs = p.HeartbeatMs
	if g.HeartbeatMs == 0 {
		g.HeartbeatMs = g.SlotMs / DefaultHeartbeatDivisor
	}
	g.SlashPercent = p.SlashPercent
	g.MinFee = p.MinFee
	g.Lab = p.Lab
	g.UnbondingBlocks = p.UnbondingBlocks
	g.Allocations = allocs
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// ParseExchangePolicy reads "open" or a comma-separated list of addresses.
func ParseExchangePolicy(s string) (ExchangePolicy, error) {
	if s == "open" {
		return ExchangePolicy{Open: true}, nil
	}
	var p ExchangePolicy
	for _, part := range strings.Split(s, ",") {
		a, err := ParseAddress(strings.TrimSpace(part))
		if err != nil {
			return p, fmt.Errorf("exchange: %w", err)
		}
		p.Authorities = append(p.Authorities, a)
	}
	return p, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func setIfPositive[T int | int64 | uint32 | uint64](dst *T, v T) {
	if v > 0 {
		*dst = v
	}
}
