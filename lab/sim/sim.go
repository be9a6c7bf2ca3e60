// Package sim runs chained forger elections offline, with the chain's own
// election rules (chain/election), to see who wins and how fairly: win
// counts against stake shares, what compounding block rewards into stake
// does, and how often each rank forges when some stakers are offline.
//
// A chain seeds each election with something the last forger produced; the
// simulation stands in for it with NextSeed, a hash of the last seed and
// winner, so a run is reproducible from its first seed.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/poslab/posd/chain/election"
)

// Config is one simulation.
type Config struct {
	// Election is the rule to run (election.Get("lottery"), ...).
	Election election.Algorithm
	// Stakes are the initial stakes by staker key; the map is not modified.
	Stakes map[string]uint64
	// Rounds is how many chained elections to run (at least 1).
	Rounds int
	// Seed is the first round's seed.
	Seed string
	// Reward is added to each round's winner's stake.
	Reward uint64
	// Offline stakers never forge: the first online candidate wins.
	Offline map[string]bool
	// Progress, if set, is called before each round with the rounds done,
	// and once more at the end with Rounds. It runs on the caller's
	// goroutine and must be quick.
	Progress func(done int)
}

// Result is what a simulation counted.
type Result struct {
	// Wins are the rounds each staker won.
	Wins map[string]int
	// Expected are the expected wins of each staker: the sum over the
	// rounds of its win probability in that round (stake over online
	// stake). Offline stakers have none.
	Expected map[string]float64
	// Final are the stakes after the last round's reward.
	Final map[string]uint64
	// RankHist[k] counts the rounds won by the candidate of rank k.
	RankHist []int
	// LastSeed is the seed the round after the last would use.
	LastSeed string
}

// NextSeed is the seed of the round after one with seed and winner: the
// lowercase hex SHA-256 of seed ‖ winner.
func NextSeed(seed, winner string) string {
	h := sha256.New()
	h.Write([]byte(seed))
	h.Write([]byte(winner))
	return hex.EncodeToString(h.Sum(nil))
}

// Run runs cfg.Rounds chained elections. It stops early, with ctx's error,
// when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	switch {
	case cfg.Election == nil:
		return nil, errors.New("sim: no election")
	case cfg.Rounds < 1:
		return nil, fmt.Errorf("sim: rounds must be at least 1, got %d", cfg.Rounds)
	}
	stake := make(map[string]uint64, len(cfg.Stakes))
	var online uint64 // stake of the online stakers
	for k, v := range cfg.Stakes {
		stake[k] = v
		if !cfg.Offline[k] {
			online += v
		}
	}
	if online == 0 {
		return nil, errors.New("sim: no online stake: nobody could forge")
	}
	res := &Result{Wins: map[string]int{}, Expected: map[string]float64{}}
	// Expected wins without an O(stakers) sum per round: a staker's win
	// probability is stake/online, and its stake only changes when it wins,
	// so expected += stake × (sum of 1/online over the rounds since its
	// stake last changed). inv is that running sum over all rounds
	// (compensated: invC holds what float64 rounding lost); mark[k] its value
	// when k's stake last changed. Without a reward it is just
	// rounds × stake/online.
	var inv, invC float64
	mark := map[string]float64{}
	addInv := func(x float64) { // Neumaier's summation
		t := inv + x
		if math.Abs(inv) >= math.Abs(x) {
			invC += (inv - t) + x
		} else {
			invC += (x - t) + inv
		}
		inv = t
	}
	depth := min(len(cfg.Offline)+1, len(stake)) // enough candidates to reach an online one
	tab := election.NewStakeTable(stake)
	seed := cfg.Seed
	for r := range cfg.Rounds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(r)
		}
		ranking := cfg.Election.Rank(seed, tab, depth)
		rank := slices.IndexFunc(ranking, func(s string) bool { return !cfg.Offline[s] })
		if rank < 0 { // cannot happen: depth exceeds the offline stakers
			return nil, fmt.Errorf("round %d: no online candidate among %q", r+1, ranking)
		}
		winner := ranking[rank]
		res.Wins[winner]++
		for len(res.RankHist) <= rank {
			res.RankHist = append(res.RankHist, 0)
		}
		res.RankHist[rank]++
		if cfg.Reward > 0 {
			addInv(1 / float64(online))
			res.Expected[winner] += float64(stake[winner]) * (inv + invC - mark[winner])
			mark[winner] = inv + invC
			stake[winner] += cfg.Reward
			online += cfg.Reward
			tab = election.NewStakeTable(stake)
		}
		seed = NextSeed(seed, winner)
	}
	for k, v := range stake {
		switch {
		case cfg.Offline[k]:
		case cfg.Reward == 0:
			res.Expected[k] = float64(cfg.Rounds) * float64(v) / float64(online)
		default:
			res.Expected[k] += float64(v) * (inv + invC - mark[k])
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(cfg.Rounds)
	}
	res.Final = stake
	res.LastSeed = seed
	return res, nil
}
