package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"testing"

	"github.com/poslab/posd/chain/election"
)

func TestNextSeed(t *testing.T) {
	sum := sha256.Sum256([]byte("abcbob"))
	if got := NextSeed("abc", "bob"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("NextSeed is not hex SHA-256(seed ‖ winner): %s", got)
	}
}

func TestRunChainsSeeds(t *testing.T) {
	// Round r+1's seed is NextSeed(seed_r, winner_r): three rounds by hand.
	stakes := map[string]uint64{"a": 1, "b": 2, "c": 7}
	lot, _ := election.Get("lottery")
	tab := election.NewStakeTable(stakes)
	wins := map[string]int{}
	seed := "abc"
	for range 3 {
		w := lot.Rank(seed, tab, 1)[0]
		wins[w]++
		seed = NextSeed(seed, w)
	}
	var calls []int
	res, err := Run(context.Background(), Config{Election: lot, Stakes: stakes, Rounds: 3, Seed: "abc", Progress: func(n int) { calls = append(calls, n) }})
	if err != nil {
		t.Fatal(err)
	}
	for s, n := range wins {
		if res.Wins[s] != n {
			t.Errorf("%s won %d rounds, by hand %d", s, res.Wins[s], n)
		}
	}
	if res.LastSeed != seed {
		t.Errorf("last seed %s, by hand %s", res.LastSeed, seed)
	}
	if fmt.Sprint(calls) != "[0 1 2 3]" {
		t.Errorf("progress calls %v", calls)
	}
}

func TestRunErrors(t *testing.T) {
	w, _ := election.Get("weighted")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, tc := range map[string]struct {
		ctx context.Context
		cfg Config
	}{
		"no election": {context.Background(), Config{Stakes: map[string]uint64{"a": 1}, Rounds: 1}},
		"no rounds":   {context.Background(), Config{Election: w, Stakes: map[string]uint64{"a": 1}}},
		"all offline": {context.Background(), Config{Election: w, Stakes: map[string]uint64{"a": 1}, Rounds: 1, Offline: map[string]bool{"a": true}}},
		"cancelled":   {ctx, Config{Election: w, Stakes: map[string]uint64{"a": 1}, Rounds: 1}},
	} {
		if _, err := Run(tc.ctx, tc.cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRewardIsAMartingale(t *testing.T) {
	// What the reward does to the largest staker's share, over 300 runs of
	// 300 rounds from different seeds (weighted, stakes 1:2:7). The share
	// is a martingale (a Pólya urn): no drift on average, measured mean
	// within 0.04 of 0.7 (4 standard errors with reward 1), but the spread
	// of the final shares grows with the reward.
	alg, _ := election.Get("weighted")
	spread := map[uint64]float64{}
	for _, reward := range []uint64{1, 10} {
		var sum, sq float64
		const runs = 300
		for k := range runs {
			res, err := Run(context.Background(), Config{
				Election: alg, Stakes: map[string]uint64{"a": 1, "b": 2, "c": 7}, Rounds: 300,
				Seed: fmt.Sprintf("run-%d", k), Reward: reward,
			})
			if err != nil {
				t.Fatal(err)
			}
			s := float64(res.Final["c"]) / float64(10+300*reward)
			sum += s
			sq += s * s
		}
		mean := sum / runs
		spread[reward] = math.Sqrt(sq/runs - mean*mean)
		t.Logf("reward %d: largest staker's final share: mean %.4f (initial 0.7000), standard deviation %.4f", reward, mean, spread[reward])
		if math.Abs(mean-0.7) > 0.04 {
			t.Errorf("reward %d: mean final share %.4f drifted from 0.7", reward, mean)
		}
	}
	if spread[10] <= spread[1] {
		t.Errorf("spread with reward 10 (%.4f) not above reward 1 (%.4f)", spread[10], spread[1])
	}
}
