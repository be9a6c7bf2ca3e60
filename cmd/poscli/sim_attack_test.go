package main

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

// attackJSONRun runs `poscli sim --attack ... -o json` in process and
// returns the decoded report and the raw object.
func attackJSONRun(t *testing.T, args ...string) (attackJSON, map[string]any) {
	t.Helper()
	e := newTestEnv(t, "")
	e.f.Globals.Output = "json"
	if err := e.run(NewCmdSim(e.f, nil), args...); err != nil {
		t.Fatalf("sim %q: %v", args, err)
	}
	checkJSON(t, e.out.String())
	var r attackJSON
	var raw map[string]any
	if err := json.Unmarshal([]byte(e.out.String()), &r); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(e.out.String()), &raw)
	return r, raw
}

func TestSimAttackJSONShape(t *testing.T) {
	common := []string{"attack", "election", "rounds", "attacker_share", "attacker_lots", "total_lots", "honest",
		"attacker_block_share", "attacker_block_share_ci", "seed_source", "heartbeat", "seed"}
	for _, tc := range []struct {
		args []string
		keys []string
	}{
		{[]string{"--attack", "grind", "--attacker-share", "0.1", "--seed-source", "block_hash", "--election", "weighted", "--rounds", "500"},
			[]string{"variants", "blocks", "attacker_blocks", "sd", "sigmas", "longest_run"}},
		{[]string{"--attack", "withhold", "--attacker-share", "0.25", "--election", "weighted", "--rounds", "500"},
			[]string{"blocks", "attacker_blocks", "sd", "sigmas", "longest_run", "waited", "withheld", "delay_slots", "next_rank0_share"}},
		{[]string{"--attack", "private", "--attacker-share", "0.33", "--heartbeat", "off", "--finality", "off", "--election", "weighted", "--rounds", "200", "--depth", "8"},
			[]string{"depth", "idle_gap", "min_gap", "heartbeat_interval", "idle_beat", "dead_chains", "reversal", "finality", "honest_vote_share", "final_depth", "finality_stalled"}},
		{[]string{"--attack", "private", "--attacker-share", "0.33", "--heartbeat-interval", "0.25", "--min-gap", "0.1", "--idle-beat", "8", "--idle-gap", "20", "--election", "weighted", "--rounds", "200", "--depth", "8"},
			[]string{"depth", "idle_gap", "min_gap", "heartbeat_interval", "idle_beat", "dead_chains", "reversal", "deep", "honest_slots_per_block", "finality", "honest_vote_share", "final_depth", "finality_stalled"}},
	} {
		t.Run(tc.args[1], func(t *testing.T) {
			r, raw := attackJSONRun(t, tc.args...)
			for _, k := range append(common, tc.keys...) {
				if _, ok := raw[k]; !ok {
					t.Errorf("no %q in %v", k, raw)
				}
			}
			if r.Attack != tc.args[1] || r.Election != "weighted" || r.TotalLots != 100 {
				t.Errorf("report %+v", r)
			}
			if lo, hi := r.AttackerBlockCI[0], r.AttackerBlockCI[1]; !(lo <= r.AttackerBlockShare && r.AttackerBlockShare <= hi) {
				t.Errorf("block share %v outside its interval [%v, %v]", r.AttackerBlockShare, lo, hi)
			}
			if r.Attack != "private" {
				return
			}
			if r.Heartbeat != (r.Deep != nil) || r.Rounds != 200 || len(r.Reversal) != 8 {
				t.Fatalf("private report %+v", r)
			}
			for i, x := range r.Reversal {
				if x.K != i+1 || math.Abs(x.Probability-float64(x.Reversed)/200) > 1e-12 || !(x.CI[0] <= x.Probability && x.Probability <= x.CI[1]) {
					t.Errorf("reversal row %+v", x)
				}
			}
			rows := raw["reversal"].([]any)
			for _, k := range []string{"k", "probability", "reversed", "ci", "final", "final_reversed", "final_reversed_probability",
				"included_not_final_reversed", "included_not_final_reversed_probability"} {
				if _, ok := rows[0].(map[string]any)[k]; !ok {
					t.Errorf("reversal row lacks %q", k)
				}
			}
			for _, x := range r.Reversal {
				if x.FinalReversed+x.NotFinalReversed != x.Reversed || math.Abs(x.FinalReversedP-float64(x.FinalReversed)/200) > 1e-12 ||
					math.Abs(x.NotFinalReversedP-float64(x.NotFinalReversed)/200) > 1e-12 {
					t.Errorf("reversal row %+v: the split does not add up", x)
				}
			}
		})
	}
}

func TestSimAttackDefences(t *testing.T) {
	// The defence switches reach the engine: grinding pays only with
	// block_hash, the private attack needs the heartbeat off.
	ground, _ := attackJSONRun(t, "--attack", "grind", "--attacker-share", "0.1", "--seed-source", "block_hash", "--election", "weighted", "--rounds", "1000")
	fair, _ := attackJSONRun(t, "--attack", "grind", "--attacker-share", "0.1", "--seed-source", "vrf", "--election", "weighted", "--rounds", "1000")
	if ground.AttackerBlockShare < 0.9 || fair.Sigmas == nil || math.Abs(*fair.Sigmas) > 3 {
		t.Errorf("block_hash share %v, vrf %+v", ground.AttackerBlockShare, fair)
	}
	on, _ := attackJSONRun(t, "--attack", "private", "--election", "weighted", "--rounds", "300", "--heartbeat", "on", "--finality", "off")
	off, _ := attackJSONRun(t, "--attack", "private", "--election", "weighted", "--rounds", "300", "--heartbeat=false", "--finality=false")
	if !on.Heartbeat || off.Heartbeat || on.Reversal[5].Probability >= off.Reversal[5].Probability-0.3 {
		t.Errorf("k=6: heartbeat on %v, off %v", on.Reversal[5], off.Reversal[5])
	}
	// Defaults: a third of the stake, the lottery, 5000 payments.
	def, _ := attackJSONRun(t, "--attack", "private", "--depth", "2", "--rounds", "50")
	if def.AttackerShare != 0.33 || def.Election != "lottery" || def.SeedSource != "vrf" || !def.Heartbeat || def.Honest != 9 ||
		def.Finality == nil || !*def.Finality || *def.FinalDepth != 3 || *def.FinalityStalled {
		t.Errorf("defaults %+v", def)
	}
	// Finality: a rest to backdate into, 30% of the stake. On, no payment
	// 2 or more deep is reversed (3 deep it is final); off, nearly all,
	// although the votes would have made them final.
	args := []string{"--attack", "private", "--attacker-share", "0.3", "--idle-gap", "1000", "--election", "weighted", "--rounds", "200"}
	fon, _ := attackJSONRun(t, append(args, "--finality", "on")...)
	foff, _ := attackJSONRun(t, append(args, "--finality", "off")...)
	if *fon.FinalDepth != 3 || *fon.FinalityStalled || *fon.HonestVoteShare != 0.7 {
		t.Errorf("finality on: %+v", fon)
	}
	for k, x := range fon.Reversal {
		if x.FinalReversed != 0 || (k >= 1 && x.Reversed != 0) || (x.Final == 200) != (k >= 2) {
			t.Errorf("finality on, row %+v", x)
		}
	}
	if six := foff.Reversal[5]; six.Probability < 0.9 || six.FinalReversed != six.Reversed || six.Final != 200 {
		t.Errorf("finality off, k=6: %+v", six)
	}
	// At 34% the attacker stalls finality: nothing is final, the defence
	// changes nothing.
	args[3] = "0.34"
	son, _ := attackJSONRun(t, append(args, "--finality", "on")...)
	soff, _ := attackJSONRun(t, append(args, "--finality", "off")...)
	if !*son.FinalityStalled || *son.FinalDepth != 0 {
		t.Errorf("34%%: %+v", son)
	}
	for k, x := range son.Reversal {
		if x.Final != 0 || x.FinalReversed != 0 || x.Reversed != soff.Reversal[k].Reversed {
			t.Errorf("34%%, row %+v against %+v with finality off", x, soff.Reversal[k])
		}
	}
}

func TestSimAttackTable(t *testing.T) {
	e := newTestEnv(t, "")
	if err := e.run(NewCmdSim(e.f, nil), "--attack", "private", "--election", "weighted", "--rounds", "200", "--heartbeat", "off"); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{
		"private attack: attacker 33.00% of the stake (33 of 100 lots), 9 honest stakers; weighted election, seed_source vrf, heartbeat off, finality on",
		"finality on: the honest stakers hold 67.00% of the lots, more than 2/3: a payment is final at 3 confirmations, and no honest node leaves a final block\n",
		"K   REVERSED  PROBABILITY  95% CI",
		"FINAL  REVERSED FINAL  REVERSED NOT FINAL",
		"\n3   0/200     0.00%",
		"\n6   ",
		"P(reversed)\n100% |",
		"  0% +------------------------------------\n",
		" 1  2  3  4  5  6  7  8  9 10 11 12  k (confirmations)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	e = newTestEnv(t, "")
	if err := e.run(NewCmdSim(e.f, nil), "--attack", "private", "--attacker-share", "0.34", "--election", "weighted", "--rounds", "100", "--depth", "3", "--finality", "off"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		", heartbeat on, finality off;",
		"finality off (v2's fork choice): FINAL is what the votes would have made final (the honest stakers hold 66.00% of the lots, not more than 2/3: nothing), which v2 ignores\n",
		"; final: no, reversed final 0, reversed not final ",
	} {
		if !strings.Contains(e.out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, e.out.String())
		}
	}
	e = newTestEnv(t, "")
	if err := e.run(NewCmdSim(e.f, nil), "--attack", "withhold", "--election", "weighted", "--rounds", "300"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"heights            300\n", "attacker's blocks  ", "waited  ", "next rank 0  ", "stake   33.00%"} {
		if !strings.Contains(e.out.String(), want) {
			t.Errorf("withhold table lacks %q:\n%s", want, e.out.String())
		}
	}
}

func TestSimAttackOptions(t *testing.T) {
	// The command's flags land in the options; the run function is not
	// called.
	e := newTestEnv(t, "")
	var got *SimOptions
	cmd := NewCmdSim(e.f, func(o *SimOptions) error { got = o; return nil })
	if err := e.run(cmd, "--attack", "private", "--attacker-share", "0.4", "--heartbeat", "off", "--seed-source", "block_hash",
		"--honest", "3", "--variants", "10", "--depth", "5", "--idle-gap", "7", "--min-gap", "0.1", "--heartbeat-interval", "0.25", "--idle-beat", "8", "--finality", "off", "--rounds", "99"); err != nil {
		t.Fatal(err)
	}
	a := got.Attack
	if a.Kind != "private" || a.Share != 0.4 || bool(a.Heartbeat) || a.SeedSource != "block_hash" || a.Honest != 3 ||
		a.Variants != 10 || a.Depth != 5 || a.IdleGap != 7 || a.MinGap != 0.1 || a.Beat != 0.25 || a.IdleBeat != 8 || bool(a.Finality) || got.Rounds != 99 || !got.RoundsSet {
		t.Errorf("options %+v", got)
	}
	if want := []string{"attacker-share", "seed-source", "heartbeat", "honest", "variants", "depth", "idle-gap", "min-gap", "heartbeat-interval", "idle-beat", "finality"}; !slices.Equal(a.set, want) {
		t.Errorf("set %q, want %q", a.set, want)
	}
}

func TestSimAttackErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--attack", "sybil"}, `unknown attack "sybil": use grind, private or withhold`},
		{[]string{"sim", "--attack", "grind", "--attacker-share", "0"}, `--attacker-share must be above 0 and below 1, got 0`},
		{[]string{"sim", "--attack", "grind", "--attacker-share", "1.5"}, `--attacker-share must be above 0 and below 1, got 1.5`},
		{[]string{"sim", "--attack", "grind", "--seed-source", "coin"}, `--seed-source must be vrf or block_hash, got "coin"`},
		{[]string{"sim", "--attack", "private", "--heartbeat", "maybe"}, `invalid argument "maybe" for "--heartbeat" flag: want on or off, got "maybe" (see 'poscli sim --help')`},
		{[]string{"sim", "--attack", "private", "--honest", "0"}, `--honest must be 1 to 99 (the stake is 100 lots), got 0`},
		{[]string{"sim", "--attack", "private", "--depth", "65"}, `--depth must be 1 to 64 (max_reorg), got 65`},
		{[]string{"sim", "--attack", "private", "--idle-gap", "-1"}, `--idle-gap must be 0 to 1000000 slots, got -1`},
		{[]string{"sim", "--attack", "grind", "--variants", "0"}, `--variants must be 1 to 1000000, got 0`},
		{[]string{"sim", "--attack", "private", "--min-gap", "9"}, `--min-gap must be 0 to 8 slots in steps of 0.001, got 9`},
		{[]string{"sim", "--attack", "private", "--min-gap", "0.0005"}, `--min-gap must be 0 to 8 slots in steps of 0.001, got 0.0005`},
		{[]string{"sim", "--attack", "private", "--heartbeat-interval", "0"}, `--heartbeat-interval must be 0.001 to 1 slot in steps of 0.001, got 0`},
		{[]string{"sim", "--attack", "private", "--heartbeat-interval", "2"}, `--heartbeat-interval must be 0.001 to 1 slot in steps of 0.001, got 2`},
		{[]string{"sim", "--attack", "private", "--idle-beat", "-1"}, `--idle-beat must be 0 (rest) or 0.001 to 1000000 slots in steps of 0.001, got -1`},
		{[]string{"sim", "--attack", "private", "--idle-beat", "8", "--heartbeat", "off"}, `--idle-beat needs --heartbeat on`},
		{[]string{"sim", "--attack", "grind", "--heartbeat-interval", "0.5"}, `--heartbeat-interval applies to --attack private only`},
		{[]string{"sim", "--attack", "withhold", "--idle-beat", "8"}, `--idle-beat applies to --attack private only`},
		{[]string{"sim", "--stakes", "a=1", "--idle-beat", "8"}, `--idle-beat needs --attack grind|private|withhold`},
		{[]string{"sim", "--attack", "withhold", "--min-gap", "1"}, `--min-gap applies to --attack private only`},
		{[]string{"sim", "--attack", "grind", "--rounds", "0"}, `--rounds must be 1 to 10000000, got 0`},
		{[]string{"sim", "--attack", "grind", "--election", "pow"}, `unknown election "pow": use lottery or weighted`},
		{[]string{"sim", "--attack", "grind", "--depth", "3"}, `--depth applies to --attack private only`},
		{[]string{"sim", "--attack", "grind", "--stakes", "a=1"}, `--attack sets the stakes itself (--attacker-share, --honest): drop --stakes and --stakes-file`},
		{[]string{"sim", "--attack", "grind", "--reward", "1"}, `--reward cannot be used with --attack`},
		{[]string{"sim", "--attack", "grind", "--offline", "a"}, `--offline cannot be used with --attack`},
		{[]string{"sim", "--stakes", "a=1", "--heartbeat", "off"}, `--heartbeat needs --attack grind|private|withhold`},
		{[]string{"sim", "--attack", "private", "--finality", "final"}, `invalid argument "final" for "--finality" flag: want on or off, got "final" (see 'poscli sim --help')`},
		{[]string{"sim", "--attack", "grind", "--finality", "off"}, `--finality applies to --attack private only`},
		{[]string{"sim", "--stakes", "a=1", "--finality", "on"}, `--finality needs --attack grind|private|withhold`},
	} {
		e := newTestEnv(t, "")
		if code := e.main(tc.args...); code != 1 {
			t.Errorf("%q: exit %d", tc.args, code)
		}
		if got, want := e.errOut.String(), "error: "+tc.want+"\n"; got != want {
			t.Errorf("%q\n got %q\nwant %q", tc.args, got, want)
		}
		if e.out.String() != "" {
			t.Errorf("%q printed %q", tc.args, e.out.String())
		}
	}
}
