package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/poslab/posd/chain/election"
)

// simJSONRun runs `poscli sim args... -o json` in process and decodes its
// output into out.
func simJSONRun(t *testing.T, out any, args ...string) {
	t.Helper()
	e := newTestEnv(t, "")
	e.f.Globals.Output = "json"
	if err := e.run(NewCmdSim(e.f, nil), args...); err != nil {
		t.Fatalf("sim %q: %v", args, err)
	}
	checkJSON(t, e.out.String())
	if err := json.Unmarshal([]byte(e.out.String()), out); err != nil {
		t.Fatal(err)
	}
}

func TestSimSingleElectionGolden(t *testing.T) {
	// The design's lottery vector: chain/election's TestLotteryInline
	// "design", computed by testdata/lottery_reference.py.
	args := []string{"--rounds", "1", "--seed", "abc", "--stakes", "genesis=1,bob=3,alice=2"}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			e := newTestEnv(t, "")
			e.f.Globals.Output = format
			if err := e.run(NewCmdSim(e.f, nil), args...); err != nil {
				t.Fatal(err)
			}
			if format == "json" {
				checkJSON(t, e.out.String())
				var got simSingleJSON
				json.Unmarshal([]byte(e.out.String()), &got)
				if got.Winner != "bob" || !slices.Equal(got.Ranking, []string{"bob", "alice", "genesis"}) {
					t.Errorf("winner %q ranking %q, want bob [bob alice genesis]", got.Winner, got.Ranking)
				}
			}
			golden(t, "sim_single."+format+".golden", e.out.String())
		})
	}
}

func TestSimStakesFileKeysAsGiven(t *testing.T) {
	// Keys with a newline, a CR LF and a whole PEM block: the lottery must
	// see them byte for byte. The first three are chain/election's
	// "newline-key" vector from the Python reference.
	pem := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	file := filepath.Join(t.TempDir(), "stakes.json")
	write := func(stakes map[string]uint64) {
		data, _ := json.Marshal(stakes)
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write(map[string]uint64{"line1\nline2": 3, "carol": 3, "dave\r\n": 2})
	var got simSingleJSON
	simJSONRun(t, &got, "--stakes-file", file, "--rounds", "1", "--seed", "blockhash-1")
	if want := []string{"line1\nline2", "carol", "dave\r\n"}; got.Winner != want[0] || !slices.Equal(got.Ranking, want) {
		t.Errorf("winner %q ranking %q, want %q", got.Winner, got.Ranking, want)
	}

	stakes := map[string]uint64{pem: 4, "line1\nline2": 3, "carol": 3, "dave\r\n": 2}
	write(stakes)
	simJSONRun(t, &got, "--stakes-file", file, "--rounds", "1", "--seed", "blockhash-1")
	lot, _ := election.Get("lottery")
	if want := lot.Rank("blockhash-1", election.NewStakeTable(stakes), 4); !slices.Equal(got.Ranking, want) {
		t.Errorf("ranking %q, chain/election says %q", got.Ranking, want)
	}

	// The table shows the PEM key as [key 1] and quotes it in full below.
	e := newTestEnv(t, "")
	if err := e.run(NewCmdSim(e.f, nil), "--stakes-file", file, "--rounds", "1", "--seed", "blockhash-1"); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{`"line1\nline2"`, "[key 1]", `[key 1] = "-----BEGIN PUBLIC KEY-----\nMCow`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSimSeedChain(t *testing.T) {
	// Round r+1's seed is hex SHA-256(seed_r ‖ winner_r): three rounds by
	// hand against the command's counts.
	stakes := map[string]uint64{"a": 1, "b": 2, "c": 7}
	lot, _ := election.Get("lottery")
	tab := election.NewStakeTable(stakes)
	wins := map[string]int{}
	seed := "abc"
	for range 3 {
		w := lot.Rank(seed, tab, 1)[0]
		wins[w]++
		sum := sha256.Sum256([]byte(seed + w))
		seed = hex.EncodeToString(sum[:])
	}
	var got simJSON
	simJSONRun(t, &got, "--stakes", "a=1,b=2,c=7", "--rounds", "3", "--seed", "abc")
	for _, s := range got.Stakers {
		if s.Wins != wins[s.Staker] {
			t.Errorf("%s won %d rounds, by hand %d", s.Staker, s.Wins, wins[s.Staker])
		}
	}
}

// checkSimInvariants checks what holds by construction in any run.
func checkSimInvariants(t *testing.T, r simJSON) {
	t.Helper()
	var stake, win, exp float64
	wins := 0
	for _, s := range r.Stakers {
		stake += s.StakeShare
		win += s.WinShare
		exp += s.ExpectedShare
		wins += s.Wins
	}
	if wins != r.Rounds {
		t.Errorf("wins add up to %d, rounds %d", wins, r.Rounds)
	}
	for name, sum := range map[string]float64{"stake": stake, "win": win, "expected": exp} {
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s shares add up to %v", name, sum)
		}
	}
	if !(r.PValue >= 0 && r.PValue <= 1) || r.Chi2 < 0 {
		t.Errorf("chi2 %v, p-value %v", r.Chi2, r.PValue)
	}
}

func TestSimWeightedConverges(t *testing.T) {
	var r simJSON
	simJSONRun(t, &r, "--election", "weighted", "--rounds", "20000", "--stakes", "a=1,b=2,c=7")
	checkSimInvariants(t, r)
	if r.Election != "weighted" || r.Rounds != 20000 || r.DF != 2 || len(r.Stakers) != 3 || r.Stakers[0].Staker != "c" {
		t.Fatalf("unexpected report %+v", r)
	}
	for _, s := range r.Stakers {
		if math.Abs(s.WinShare-s.StakeShare) > 0.02 {
			t.Errorf("%s: win share %.4f, stake share %.4f", s.Staker, s.WinShare, s.StakeShare)
		}
		if math.Abs(s.ExpectedShare-s.StakeShare) > 1e-12 || math.Abs(s.Deviation-(s.WinShare-s.StakeShare)) > 1e-12 {
			t.Errorf("%s: expected %v deviation %v", s.Staker, s.ExpectedShare, s.Deviation)
		}
	}
	if r.PValue <= 0.001 {
		t.Errorf("p-value %v", r.PValue)
	}
}

// TestSimLotteryMeasured: over 20,000 rounds on a fixed seed the
// lottery's win counts match n × stake share within 4.5 standard errors
// of a binomial count, sqrt(n·p·(1−p)) (p = 0.1: ±191 of 2,000 wins, about
// ±1 percentage point; measured for seed "posd": within 0.4 points, p-value
// 0.76). The run is deterministic (it is repeated and must be identical),
// so the bounds fail only if the election's odds change, never by chance;
// and they are tight enough to tell the stakes apart: even odds (a third
// each) would miss every bound by more than 10 standard errors.
func TestSimLotteryMeasured(t *testing.T) {
	const rounds = 20000
	args := []string{"--rounds", "20000", "--seed", "posd", "--stakes", "a=1,b=2,c=7"}
	var r, again simJSON
	simJSONRun(t, &r, args...)
	simJSONRun(t, &again, args...)
	checkSimInvariants(t, r)
	if !reflect.DeepEqual(r, again) {
		t.Fatalf("the same seed gave two different runs:\n%+v\n%+v", r, again)
	}
	want := map[string]float64{"a": 0.1, "b": 0.2, "c": 0.7}
	if r.Rounds != rounds || len(r.Stakers) != len(want) {
		t.Fatalf("rounds %d, %d stakers", r.Rounds, len(r.Stakers))
	}
	for _, s := range r.Stakers {
		p, ok := want[s.Staker]
		if !ok || math.Abs(s.StakeShare-p) > 1e-12 {
			t.Fatalf("staker %s: stake share %v, want %v", s.Staker, s.StakeShare, p)
		}
		expect, sd := rounds*p, math.Sqrt(rounds*p*(1-p))
		t.Logf("lottery %s: %d wins, expected %.0f ± %.1f (1 sd), %+.2f sd", s.Staker, s.Wins, expect, sd, (float64(s.Wins)-expect)/sd)
		if math.Abs(float64(s.Wins)-expect) > 4.5*sd {
			t.Errorf("lottery %s: %d wins, expected %.0f ± %.0f (4.5 sd over %d rounds)", s.Staker, s.Wins, expect, 4.5*sd, rounds)
		}
		if math.Abs(s.WinShare-float64(s.Wins)/rounds) > 1e-12 {
			t.Errorf("lottery %s: win share %v for %d wins", s.Staker, s.WinShare, s.Wins)
		}
	}
	t.Logf("lottery: chi2 %.3f, df %d, p-value %.4f", r.Chi2, r.DF, r.PValue)
	if r.DF != 2 || r.PValue < 0.01 {
		t.Errorf("lottery: chi2 %.3f, df %d, p-value %.4f: want df 2 and no evidence of bias (p ≥ 0.01)", r.Chi2, r.DF, r.PValue)
	}
}

func TestSimReward(t *testing.T) {
	// Exact bookkeeping: each win adds the reward to the winner's stake.
	var r simJSON
	simJSONRun(t, &r, "--election", "weighted", "--rounds", "500", "--reward", "3", "--stakes", "a=1,b=2,c=7")
	checkSimInvariants(t, r)
	var final uint64
	var share float64
	for _, s := range r.Stakers {
		if s.FinalStake == nil || s.FinalStakeShare == nil {
			t.Fatal("no final_stake with --reward")
		}
		if *s.FinalStake != s.Stake+3*uint64(s.Wins) {
			t.Errorf("%s: final stake %d, stake %d + 3 × %d wins", s.Staker, *s.FinalStake, s.Stake, s.Wins)
		}
		final += *s.FinalStake
		share += *s.FinalStakeShare
	}
	if final != 10+3*500 || math.Abs(share-1) > 1e-9 || r.Reward == nil || *r.Reward != 3 {
		t.Errorf("final stake %d, shares %v, reward %v", final, share, r.Reward)
	}

}

func TestSimOffline(t *testing.T) {
	var r simJSON
	simJSONRun(t, &r, "--election", "weighted", "--rounds", "20000", "--stakes", "a=1,b=2,c=7", "--offline", "c")
	checkSimInvariants(t, r)
	byName := map[string]simStakerJSON{}
	for _, s := range r.Stakers {
		byName[s.Staker] = s
	}
	if c := byName["c"]; c.Wins != 0 || c.ExpectedShare != 0 {
		t.Errorf("offline c: %+v", c)
	}
	if !slices.Equal(r.Offline, []string{"c"}) || r.DF != 1 || r.MeanRank == nil {
		t.Errorf("offline %q, df %d", r.Offline, r.DF)
	}
	total := 0
	var mean float64
	for _, b := range r.RankHistogram {
		total += b.Wins
		mean += float64(b.Rank*b.Wins) / float64(r.Rounds)
	}
	if total != r.Rounds || len(r.RankHistogram) != 2 || math.Abs(mean-*r.MeanRank) > 1e-12 {
		t.Fatalf("histogram %+v, mean rank %v", r.RankHistogram, *r.MeanRank)
	}
	// c ranks first in 70% of weighted elections: then rank 1 forges.
	if s := r.RankHistogram[1].Share; math.Abs(s-0.7) > 0.02 {
		t.Errorf("rank 1 forged %.4f of the rounds, want about 0.7", s)
	}
	// a and b share the rounds 1:2.
	if s := byName["b"].WinShare; math.Abs(s-2.0/3) > 0.02 || math.Abs(byName["b"].ExpectedShare-2.0/3) > 1e-12 {
		t.Errorf("b: %+v", byName["b"])
	}

	// One election: the winner is the first online candidate.
	var one simSingleJSON
	simJSONRun(t, &one, "--rounds", "1", "--seed", "abc", "--stakes", "genesis=1,bob=3,alice=2", "--offline", "bob")
	if one.Winner != "alice" || one.WinnerRank == nil || *one.WinnerRank != 1 {
		t.Errorf("with bob offline: %+v", one)
	}
}

func TestSimTablesGolden(t *testing.T) {
	for name, args := range map[string][]string{
		"sim_rounds":      {"--election", "weighted", "--rounds", "1000", "--stakes", "a=1,b=2,c=7"},
		"sim_experiments": {"--election", "weighted", "--rounds", "1000", "--stakes", "a=1,b=2,c=7", "--reward", "1", "--offline", "b"},
	} {
		for _, format := range []string{"table", "json"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				e := newTestEnv(t, "")
				e.f.Globals.Output = format
				if err := e.run(NewCmdSim(e.f, nil), args...); err != nil {
					t.Fatal(err)
				}
				if format == "json" {
					checkJSON(t, e.out.String())
				}
				golden(t, name+"."+format+".golden", e.out.String())
			})
		}
	}
}

func TestSimErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte("{}"), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"a": 1.5}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--stakes", "a=1", "--election", "pow"}, `unknown election "pow": use lottery or weighted`},
		{[]string{"sim", "--stakes", "a=1,b=x"}, `--stakes: the stake of b must be a whole number above 0, got "x"`},
		{[]string{"sim", "--stakes", "a=1,b=-2"}, `--stakes: the stake of b must be a whole number above 0, got "-2"`},
		{[]string{"sim", "--stakes", "a=1,b=0"}, `--stakes: the stake of b must be a whole number above 0, got "0"`},
		{[]string{"sim", "--stakes", "a=1,b"}, `--stakes: "b" is not NAME=STAKE`},
		{[]string{"sim", "--stakes", "a=1,a=2"}, `--stakes: a is given twice`},
		{[]string{"sim"}, `no stakers: give --stakes NAME=N,... or --stakes-file FILE`},
		{[]string{"sim", "--stakes", "a=1", "--stakes-file", empty}, `give either --stakes or --stakes-file, not both`},
		{[]string{"sim", "--stakes-file", empty}, `--stakes-file ` + empty + ` has no stakers`},
		{[]string{"sim", "--stakes-file", bad}, `--stakes-file ` + bad + `: the stake of "a" must be a whole number above 0, got 1.5`},
		{[]string{"sim", "--stakes-file", filepath.Join(dir, "nope.json")}, `--stakes-file ` + filepath.Join(dir, "nope.json") + ` not found`},
		{[]string{"sim", "--stakes", "a=1", "--rounds", "0"}, `--rounds must be at least 1, got 0`},
		{[]string{"sim", "--stakes", "a=1,b=2", "--offline", "zed"}, `--offline "zed" is not one of the stakers`},
		{[]string{"sim", "--stakes", "a=1,b=2", "--offline", "a", "--offline", "b"}, `every staker is --offline: nobody could forge`},
		{[]string{"sim", "--stakes", "a=18446744073709551615,b=1"}, `the stakes add up to more than 2^64-1`},
		{[]string{"sim", "--stakes", "a=1", "--reward", "18446744073709551615"}, `--reward × --rounds would make the stakes overflow 2^64-1`},
		{[]string{"sim", "--stakes", "a=1", "extra"}, `poscli sim takes no arguments, got "extra" (see 'poscli sim --help')`},
	} {
		e := newTestEnv(t, "")
		if code := e.main(tc.args...); code != 1 {
			t.Errorf("%q: exit %d", tc.args, code)
		}
		want := "error: " + tc.want + "\n"
		if got := e.errOut.String(); got != want {
			t.Errorf("%q\n got %q\nwant %q", tc.args, got, want)
		}
	}
}
