package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain/election"
	"github.com/poslab/posd/lab/attack"
)

// attackHelp is the part of `poscli sim --help` about --attack.
const attackHelp = `Attacks (--attack): simulate a dishonest staker holding --attacker-share of
the stake (one key) against --honest honest stakers sharing the rest
equally, with the protocol's rules: the chosen --election run on every
height, at most max_rank 8 candidates, rank k forging k slots after its
parent, fork choice (higher chain; at equal height the lower rank of the
first differing block), max_reorg 64. Time is counted in slots and
messages arrive at once. Stakes are whole lots (100 in all): the report
shows the attacker's exact share.

  grind     The forger of a block tries --variants versions of it (timestamp,
            transaction order) and keeps one whose seed elects it again.
            With --seed-source block_hash (v1) the seed is the block's hash,
            which it chooses; with vrf (v2) the seed is the VRF of the
            parent seed under its key, the same for every version.
  withhold  When rank 0, the attacker waits for the rank-1 block, then
            publishes its own (lower rank: it wins) or lets the rank-1 block
            stand, whichever seed elects it next: the one bit a VRF leaves.
            Each wait costs the chain a slot. With block_hash it also
            grinds its own block, as grind does.
  private   The attacker pays a merchant, forks from the block before the
            payment and forges privately wherever it is elected (at its rank,
            waiting rank × slot), then publishes when the fork choice
            prefers its chain, reversing the payment (with block_hash it
            grinds each private block for its next rank). With --heartbeat on
            the honest chain forges an empty block every slot until the
            payment is 64 deep; off, an idle chain does not grow (k-1 blocks
            of other traffic, one a slot, bring the payment k deep).
            Reported: the probability that a payment k blocks deep (k
            confirmations) is reversed, k = 1..--depth, with 95% Wilson
            intervals, as a table and a plot.
            --finality on|off (default on, the v3 rules; off: v2's fork
            choice): every block is a checkpoint; the honest stakers vote
            for each honest block, the attacker only for its own private
            blocks (which alone carry its votes); a block is justified by
            votes of more than 2/3 of the lots from a justified source and
            final when the next one is justified from it, so with more than
            2/3 honest the payment's block is final two blocks later. No
            honest node leaves a final block; then the higher justified
            checkpoint wins; then v2's rule. Reversals are split into those
            of payments final when the attacker published (0 below a third
            of the stake) and of payments included but not final. With a
            third of the stake or more the attacker stalls finality: nothing
            honest is final and the v2 figures come back. With --finality
            off, "final" is what the votes would have made final, which
            v2's fork choice ignores: compare
              poscli sim --attack private --attacker-share 0.3 --idle-gap 1000
              poscli sim --attack private --attacker-share 0.3 --idle-gap 1000 --finality off

Seeds are modelled as pseudo-random functions of (forger, parent seed,
height), and of the block's contents with block_hash; honest stakers never
grind or withhold. --idle-gap N lets the chain rest N slots before the
payment: the private attacker may date its blocks into that gap.
--min-gap G makes every block cost G slots on top of its rank (rank k
forges (k+G) slots after its parent): the v2 rules have G = 0, so a rank-0
block may reuse its parent's timestamp and a private chain's rank-0 blocks
cost no time; G = 1 (or 0.1) is a proposed rule, shown for comparison.
--heartbeat-interval F makes the honest rank 0 forge its empty block when
the head is F slots old (the v2 rules first said 1; fallback ranks
still wait rank × slot). --idle-beat M makes a resting chain forge an empty block every M
slots: with --idle-gap longer than M the payment's parent is the last
beat, and the attacker tries a fork from each of the 63 beats below it
too (each costs it one more honest block to out-grow). Fractions of a
slot are whole thousandths.

JSON (-o json) with --attack: {"attack", "election", "rounds",
"attacker_share", "attacker_lots", "total_lots", "honest",
"attacker_block_share", "attacker_block_share_ci": [lo, hi], "seed_source",
"heartbeat", "seed"}; grind and withhold add "blocks", "attacker_blocks",
"sd", "sigmas", "longest_run" (withhold: "waited", "withheld",
"delay_slots", "next_rank0_share"); private adds "depth", "idle_gap",
"min_gap", "heartbeat_interval", "idle_beat", "dead_chains", "finality",
"honest_vote_share", "final_depth" (confirmations at which a payment is
final; 0: never), "finality_stalled" and "reversal": [{"k", "reversed",
"probability", "ci": [lo, hi], "final" (payments final when accepted),
"final_reversed", "final_reversed_probability",
"included_not_final_reversed", "included_not_final_reversed_probability"}];
with the heartbeat on, "deep" (a payment 64 deep, same shape) and
"honest_slots_per_block". attacker_share is the attacker's share of
the stake; for private, attacker_block_share is its share of the blocks
forged during the race (how fast it builds against the honest chain).
docs/ATTACKS.md explains each attack and its defence, with figures.`

// AttackOptions are the options of `poscli sim --attack`.
type AttackOptions struct {
	Kind       string  // --attack
	Share      float64 // --attacker-share
	SeedSource string  // --seed-source
	Heartbeat  onOff   // --heartbeat
	Finality   onOff   // --finality
	Honest     int     // --honest
	Variants   int     // --variants
	Depth      int     // --depth
	IdleGap    int     // --idle-gap
	MinGap     float64 // --min-gap
	Beat       float64 // --heartbeat-interval
	IdleBeat   float64 // --idle-beat

	// set lists the attack flags given on the command line.
	set []string
}

// attackOnlyFlags are the flags that mean nothing without --attack.
var attackOnlyFlags = []string{"attacker-share", "seed-source", "heartbeat", "honest", "variants", "depth", "idle-gap", "min-gap", "heartbeat-interval", "idle-beat", "finality"}

// onOff is a boolean flag that takes on/off as well as true/false
// (--heartbeat off, --heartbeat=false).
type onOff bool

func (b *onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		*b = true
	case "off", "false", "0", "no":
		*b = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

func (b *onOff) String() string {
	if *b {
		return "on"
	}
	return "off"
}

func (b *onOff) Type() string { return "on|off" }

func addAttackFlags(cmd *cobra.Command, o *AttackOptions) {
	o.Share = 0.33
	o.SeedSource = string(attack.SeedVRF)
	o.Heartbeat = true
	o.Finality = true
	fl := cmd.Flags()
	fl.StringVar(&o.Kind, "attack", "", "simulate an attack: grind, private or withhold (see above)")
	fl.Float64Var(&o.Share, "attacker-share", o.Share, "the attacker's share of the stake, above 0 and below 1")
	fl.StringVar(&o.SeedSource, "seed-source", o.SeedSource, "where block seeds come from: vrf (v2) or block_hash (v1, grindable)")
	fl.Var(&o.Heartbeat, "heartbeat", "heartbeat on or off: an idle honest chain forges an empty block each slot while a payment is less than 64 deep")
	fl.IntVar(&o.Honest, "honest", attack.DefaultHonest, "how many honest stakers share the rest of the stake equally")
	fl.IntVar(&o.Variants, "variants", attack.DefaultVariants, "versions of its block a grinding forger tries (block_hash only)")
	fl.IntVar(&o.Depth, "depth", attack.DefaultDepth, "private: report payments 1 to `K` blocks deep")
	fl.IntVar(&o.IdleGap, "idle-gap", 0, "private: `SLOTS` the chain rested between the payment's parent block and the payment")
	fl.Float64Var(&o.MinGap, "min-gap", 0, "private: `SLOTS` every block costs on top of its rank (0: the v2 rules; 1 or 0.1: proposed rules)")
	fl.Float64Var(&o.Beat, "heartbeat-interval", 1, "private: the heartbeat forges when the head is `F` slots old (rank 0; fallbacks wait rank × slot)")
	fl.Float64Var(&o.IdleBeat, "idle-beat", 0, "private: a resting chain still forges an empty block every `M` slots (0: it rests, the v2 rules)")
	fl.Var(&o.Finality, "finality", "private: the finality defence on (the v3 rules: no node leaves a final block) or off (v2's fork choice)")
	_ = cmd.RegisterFlagCompletionFunc("attack", cobra.FixedCompletions([]string{"grind", "private", "withhold"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("seed-source", cobra.FixedCompletions([]string{"vrf", "block_hash"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("heartbeat", cobra.FixedCompletions([]string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("finality", cobra.FixedCompletions([]string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp))
}

// attackFlagsSet lists the attack-only flags given on cmd's command line.
func attackFlagsSet(cmd *cobra.Command) []string {
	var set []string
	for _, name := range attackOnlyFlags {
		if cmd.Flags().Changed(name) {
			set = append(set, name)
		}
	}
	return set
}

// attackReversalJSON is one depth of the private attack's table.
type attackReversalJSON struct {
	K           int        `json:"k"`
	Reversed    int        `json:"reversed"`
	Probability float64    `json:"probability"`
	CI          [2]float64 `json:"ci"`
	// Final: payments final when the merchant accepted them. The
	// reversals split by whether the payment was final when the attacker
	// published; probabilities are of all rounds.
	Final             int     `json:"final"`
	FinalReversed     int     `json:"final_reversed"`
	FinalReversedP    float64 `json:"final_reversed_probability"`
	NotFinalReversed  int     `json:"included_not_final_reversed"`
	NotFinalReversedP float64 `json:"included_not_final_reversed_probability"`
}

// attackJSON is the JSON shape of `poscli sim --attack`.
type attackJSON struct {
	Attack             string     `json:"attack"`
	Election           string     `json:"election"`
	Rounds             int        `json:"rounds"`
	AttackerShare      float64    `json:"attacker_share"`
	AttackerLots       uint64     `json:"attacker_lots"`
	TotalLots          uint64     `json:"total_lots"`
	Honest             int        `json:"honest"`
	AttackerBlockShare float64    `json:"attacker_block_share"`
	AttackerBlockCI    [2]float64 `json:"attacker_block_share_ci"`
	SeedSource         string     `json:"seed_source"`
	Heartbeat          bool       `json:"heartbeat"`
	Seed               string     `json:"seed"`
	Variants           *int       `json:"variants,omitempty"`

	// grind and withhold
	Blocks         *int     `json:"blocks,omitempty"`
	AttackerBlocks *int     `json:"attacker_blocks,omitempty"`
	SD             *float64 `json:"sd,omitempty"`
	Sigmas         *float64 `json:"sigmas,omitempty"`
	LongestRun     *int     `json:"longest_run,omitempty"`
	// withhold
	Waited         *int     `json:"waited,omitempty"`
	Withheld       *int     `json:"withheld,omitempty"`
	DelaySlots     *int     `json:"delay_slots,omitempty"`
	NextRank0Share *float64 `json:"next_rank0_share,omitempty"`
	// private
	Depth      *int     `json:"depth,omitempty"`
	IdleGap    *int     `json:"idle_gap,omitempty"`
	MinGap     *float64 `json:"min_gap,omitempty"`
	Interval   *float64 `json:"heartbeat_interval,omitempty"`
	IdleBeat   *float64 `json:"idle_beat,omitempty"`
	DeadChains *int     `json:"dead_chains,omitempty"`
	Finality   *bool    `json:"finality,omitempty"`
	// HonestVoteShare is the honest stakers' share of the lots; FinalDepth
	// the confirmations at which a payment is final (0: never);
	// FinalityStalled whether nothing honest becomes final.
	HonestVoteShare *float64             `json:"honest_vote_share,omitempty"`
	FinalDepth      *int                 `json:"final_depth,omitempty"`
	FinalityStalled *bool                `json:"finality_stalled,omitempty"`
	Reversal        []attackReversalJSON `json:"reversal,omitempty"`
	// Deep is the reversal of a payment max_reorg (64) deep, heartbeat on.
	Deep *attackReversalJSON `json:"deep,omitempty"`
	// HonestSlotsPerBlock: the honest chain's mean slots per block after
	// the payment, heartbeat on.
	HonestSlotsPerBlock *float64 `json:"honest_slots_per_block,omitempty"`
}

func valPtr[T any](v T) *T { return &v }

// attackRun runs `poscli sim --attack`.
func attackRun(opts *SimOptions) error {
	a := &opts.Attack
	switch {
	case opts.Stakes != "" || opts.StakesFile != "":
		return fmt.Errorf("--attack sets the stakes itself (--attacker-share, --honest): drop --stakes and --stakes-file")
	case opts.Reward > 0:
		return fmt.Errorf("--reward cannot be used with --attack")
	case len(opts.Offline) > 0:
		return fmt.Errorf("--offline cannot be used with --attack")
	}
	kind := attack.Kind(a.Kind)
	switch kind {
	case attack.Grind, attack.Private, attack.Withhold:
	default:
		return fmt.Errorf("unknown attack %q: use grind, private or withhold", a.Kind)
	}
	alg, err := election.Get(opts.Election)
	if err != nil {
		return fmt.Errorf("unknown election %q: use %s", opts.Election, strings.Join(election.Names(), " or "))
	}
	switch {
	case !(a.Share > 0 && a.Share < 1):
		return fmt.Errorf("--attacker-share must be above 0 and below 1, got %v", a.Share)
	case a.SeedSource != string(attack.SeedVRF) && a.SeedSource != string(attack.SeedBlockHash):
		return fmt.Errorf("--seed-source must be vrf or block_hash, got %q", a.SeedSource)
	case a.Honest < 1 || a.Honest > 99:
		return fmt.Errorf("--honest must be 1 to 99 (the stake is 100 lots), got %d", a.Honest)
	case a.Variants < 1 || a.Variants > 1_000_000:
		return fmt.Errorf("--variants must be 1 to 1000000, got %d", a.Variants)
	case a.Depth < 1 || a.Depth > attack.DefaultMaxReorg:
		return fmt.Errorf("--depth must be 1 to %d (max_reorg), got %d", attack.DefaultMaxReorg, a.Depth)
	case a.IdleGap < 0 || a.IdleGap > 1_000_000:
		return fmt.Errorf("--idle-gap must be 0 to 1000000 slots, got %d", a.IdleGap)
	case !(a.MinGap >= 0 && a.MinGap <= 8) || !wholeTicks(a.MinGap):
		return fmt.Errorf("--min-gap must be 0 to 8 slots in steps of 0.001, got %v", a.MinGap)
	case !(a.Beat >= 0.001 && a.Beat <= 1) || !wholeTicks(a.Beat):
		return fmt.Errorf("--heartbeat-interval must be 0.001 to 1 slot in steps of 0.001, got %v", a.Beat)
	case !(a.IdleBeat == 0 || a.IdleBeat >= 0.001 && a.IdleBeat <= 1_000_000) || !wholeTicks(a.IdleBeat):
		return fmt.Errorf("--idle-beat must be 0 (rest) or 0.001 to 1000000 slots in steps of 0.001, got %v", a.IdleBeat)
	case a.IdleBeat > 0 && !bool(a.Heartbeat):
		return fmt.Errorf("--idle-beat needs --heartbeat on")
	case opts.RoundsSet && (opts.Rounds < 1 || opts.Rounds > 10_000_000):
		return fmt.Errorf("--rounds must be 1 to 10000000, got %d", opts.Rounds)
	}
	if kind != attack.Private {
		for _, f := range []string{"depth", "idle-gap", "min-gap", "heartbeat-interval", "idle-beat", "finality"} {
			if contains(a.set, f) {
				return fmt.Errorf("--%s applies to --attack private only", f)
			}
		}
	}
	cfg := attack.Config{
		Attack: kind, Election: alg, AttackerShare: a.Share, Honest: a.Honest,
		SeedSource: attack.SeedSource(a.SeedSource), Heartbeat: bool(a.Heartbeat),
		Finality: bool(a.Finality) && kind == attack.Private,
		Variants: a.Variants, Depth: a.Depth, IdleGap: a.IdleGap, MinGap: a.MinGap, Seed: opts.Seed,
		HeartbeatInterval: a.Beat, IdleBeat: a.IdleBeat,
		Workers: runtime.GOMAXPROCS(0),
	}
	if opts.RoundsSet {
		cfg.Rounds = opts.Rounds
	}
	var done, total atomic.Int64
	cfg.Progress = func(d, t int) { done.Store(int64(d)); total.Store(int64(t)) }
	var live *liveLine
	if opts.IO.ErrIsTerminal {
		start := time.Now()
		live = startLiveLine(opts.IO.ErrOut, simProgressAfter, func() string {
			d, t := done.Load(), max(1, total.Load())
			eta := ""
			if d > 0 {
				left := time.Duration(float64(time.Since(start)) * float64(t-d) / float64(d))
				eta = "  about " + left.Round(time.Second).String() + " left"
			}
			return fmt.Sprintf("%s: round %d/%d %s%s", kind, d, t, progressBar(float64(d)/float64(t), 20), eta)
		})
	}
	res, err := attack.Run(ctxOr(opts.Ctx), cfg)
	live.Stop()
	if err != nil {
		return err
	}
	out := attackReport(res)
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, out)
	}
	return attackTable(opts, res, out)
}

// wholeTicks reports whether slots is a whole number of the model's ticks
// (a thousandth of a slot).
func wholeTicks(slots float64) bool {
	t := slots * attack.TicksPerSlot
	return math.Abs(t-math.Round(t)) < 1e-6
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// attackReport is the JSON shape of res.
func attackReport(res *attack.Result) attackJSON {
	c := res.Config
	out := attackJSON{
		Attack: string(c.Attack), Election: c.Election.Name(), Rounds: c.Rounds,
		AttackerShare: res.AttackerStakeShare, AttackerLots: res.AttackerStake, TotalLots: res.TotalStake,
		Honest: c.Honest, AttackerBlockShare: res.AttackerBlockShare, AttackerBlockCI: [2]float64{res.Lo, res.Hi},
		SeedSource: string(c.SeedSource), Heartbeat: c.Heartbeat, Seed: c.Seed,
	}
	if c.SeedSource == attack.SeedBlockHash || c.Attack == attack.Grind {
		out.Variants = valPtr(c.Variants)
	}
	switch c.Attack {
	case attack.Grind, attack.Withhold:
		out.Blocks, out.AttackerBlocks = valPtr(res.Blocks), valPtr(res.AttackerBlocks)
		out.SD, out.Sigmas, out.LongestRun = valPtr(res.SD), valPtr(res.Sigmas), valPtr(res.LongestRun)
		if c.Attack == attack.Withhold {
			out.Waited, out.Withheld, out.DelaySlots = valPtr(res.Waited), valPtr(res.Withheld), valPtr(res.DelaySlots)
			share := 0.0
			if res.AfterRankZero > 0 {
				share = float64(res.NextRankZero) / float64(res.AfterRankZero)
			}
			out.NextRank0Share = &share
		}
	case attack.Private:
		out.Depth, out.IdleGap, out.MinGap, out.DeadChains = valPtr(c.Depth), valPtr(c.IdleGap), valPtr(c.MinGap), valPtr(res.DeadChains)
		out.Interval, out.IdleBeat = valPtr(c.HeartbeatInterval), valPtr(c.IdleBeat)
		out.Finality, out.HonestVoteShare = valPtr(c.Finality), valPtr(res.HonestVoteShare)
		out.FinalDepth, out.FinalityStalled = valPtr(res.FinalDepth), valPtr(res.FinalityStalled)
		if d := res.Deep; d != nil {
			out.Deep = valPtr(reversalJSON(*d))
			out.HonestSlotsPerBlock = valPtr(res.HonestSlotsPerBlock)
		}
		for _, r := range res.Reversal {
			out.Reversal = append(out.Reversal, reversalJSON(r))
		}
	}
	return out
}

func reversalJSON(r attack.Reversal) attackReversalJSON {
	return attackReversalJSON{K: r.K, Reversed: r.Reversed, Probability: r.Probability, CI: [2]float64{r.Lo, r.Hi},
		Final: r.Final, FinalReversed: r.FinalReversed, FinalReversedP: r.FinalProbability,
		NotFinalReversed: r.NotFinalReversed, NotFinalReversedP: r.NotFinalProbability}
}

// attackTable prints an attack's outcome for people.
func attackTable(opts *SimOptions, res *attack.Result, out attackJSON) error {
	cs := opts.IO.ColorScheme()
	w := opts.IO.Out
	c := res.Config
	hb := "on"
	if !c.Heartbeat {
		hb = "off"
	}
	fmt.Fprintf(w, "%s attack: attacker %s of the stake (%d of %d lots), %d honest stakers; %s election, seed_source %s",
		c.Attack, percent(out.AttackerShare), out.AttackerLots, out.TotalLots, c.Honest, out.Election, out.SeedSource)
	if c.Attack == attack.Private {
		fin := "on"
		if !c.Finality {
			fin = "off"
		}
		fmt.Fprintf(w, ", heartbeat %s, finality %s", hb, fin)
	}
	fmt.Fprintf(w, "; seed %s\n\n", strconv.Quote(c.Seed))
	ci := func(lo, hi float64) string { return "[" + percent(lo) + ", " + percent(hi) + "]" }

	switch c.Attack {
	case attack.Grind, attack.Withhold:
		fl := fields{cs: cs}
		fl.Add("heights", strconv.Itoa(res.Blocks))
		share := fmt.Sprintf("%s (%d blocks), 95%% CI %s", percent(res.AttackerBlockShare), res.AttackerBlocks, ci(res.Lo, res.Hi))
		fl.Add("attacker's blocks", share)
		fl.Add("its stake share", percent(res.AttackerStakeShare))
		verdict := fmt.Sprintf("%+.1f standard deviations of a fair chain (sd %.2f pp)", res.Sigmas, 100*res.SD)
		if math.Abs(res.Sigmas) <= 3 {
			verdict = cs.Green(verdict + ": fair, as far as chance can tell")
		} else if res.Sigmas > 3 {
			verdict = cs.Red(verdict + ": the attacker takes more than its share")
		}
		fl.Add("deviation", verdict)
		fl.Add("longest run", fmt.Sprintf("%d consecutive attacker blocks", res.LongestRun))
		if c.Attack == attack.Grind && c.SeedSource == attack.SeedBlockHash {
			fl.Add("variants", fmt.Sprintf("%d versions of each of its blocks tried at most", c.Variants))
		}
		if c.Attack == attack.Withhold {
			fl.Add("waited", fmt.Sprintf("%d times rank 0, each costing the chain a slot (%.3f slots per block)", res.Waited, float64(res.DelaySlots)/float64(max(1, res.Blocks))))
			fl.Add("withheld", fmt.Sprintf("%d blocks given up for a seed that elected it next", res.Withheld))
			fl.Add("next rank 0", fmt.Sprintf("%s of the heights after one where it was rank 0 (fair: %s)", percent(*out.NextRank0Share), percent(res.AttackerStakeShare)))
		}
		if err := fl.Write(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
		line := func(what string, share float64, paint func(string) string) {
			fmt.Fprintf(w, "%-6s %7s  %s\n", what, percent(share), paint(bar(share, 40)))
		}
		line("stake", res.AttackerStakeShare, cs.Faint)
		line("blocks", res.AttackerBlockShare, cs.Green)
		return nil
	}

	fmt.Fprintf(w, "%d payments; the merchant accepts after k confirmations; %d of the attacker's chains died (not elected within max_rank)\n",
		c.Rounds, res.DeadChains)
	if c.IdleGap > 0 {
		fmt.Fprintf(w, "the chain rested %d slots before the payment: the attacker dates its blocks into that gap\n", c.IdleGap)
	}
	if c.IdleGap > 0 && c.IdleBeat > 0 {
		fmt.Fprintf(w, "while it rested it forged an empty block every %v slots (--idle-beat): the attacker may fork from any of them\n", c.IdleBeat)
	}
	if c.MinGap > 0 {
		fmt.Fprintf(w, "every block costs %v slot(s) on top of its rank (--min-gap; the v2 rules say 0)\n", c.MinGap)
	}
	if c.Heartbeat {
		fmt.Fprintf(w, "the heartbeat forges when the head is %v slot old (--heartbeat-interval); the honest chain took %.3f slots per block\n", c.HeartbeatInterval, res.HonestSlotsPerBlock)
	}
	fmt.Fprintf(w, "the attacker forged %s of the blocks in the race (its stake share %s)\n", percent(res.AttackerBlockShare), percent(res.AttackerStakeShare))
	votes := fmt.Sprintf("the honest stakers hold %s of the lots", percent(res.HonestVoteShare))
	switch {
	case res.FinalityStalled && c.Finality:
		votes += ", not more than 2/3: finality stalls, no honest block is final, and the fork choice comes down to v2's rule"
	case res.FinalityStalled:
		votes += ", not more than 2/3: nothing"
	case c.Finality:
		votes += fmt.Sprintf(", more than 2/3: a payment is final at %d confirmations, and no honest node leaves a final block", res.FinalDepth)
	default:
		votes += fmt.Sprintf(", more than 2/3: a payment at %d confirmations", res.FinalDepth)
	}
	if c.Finality {
		fmt.Fprintf(w, "finality on: %s\n\n", votes)
	} else {
		fmt.Fprintf(w, "finality off (v2's fork choice): FINAL is what the votes would have made final (%s), which v2 ignores\n\n", votes)
	}
	t := newTable(w, "k", "reversed", "probability", "95% CI", "final", "reversed final", "reversed not final", "")
	for _, r := range res.Reversal {
		t.Append(strconv.Itoa(r.K), strconv.Itoa(r.Reversed)+"/"+strconv.Itoa(r.Rounds), percent(r.Probability), ci(r.Lo, r.Hi),
			finalCell(r), strconv.Itoa(r.FinalReversed), strconv.Itoa(r.NotFinalReversed), cs.Red(bar(r.Probability, 30)))
	}
	if err := t.Render(); err != nil {
		return err
	}
	if d := res.Deep; d != nil {
		fmt.Fprintf(w, "\n%d deep (the deepest reorg): %d/%d reversed, %s %s; final: %s, reversed final %d, reversed not final %d\n",
			d.K, d.Reversed, d.Rounds, percent(d.Probability), ci(d.Lo, d.Hi), finalCell(*d), d.FinalReversed, d.NotFinalReversed)
	}
	fmt.Fprintln(w)
	return reversalPlot(w, res.Reversal, cs)
}

// finalCell says whether the payments were final when the merchant
// accepted them: yes, no, or how many of them.
func finalCell(r attack.Reversal) string {
	switch r.Final {
	case r.Rounds:
		return "yes"
	case 0:
		return "no"
	}
	return strconv.Itoa(r.Final) + "/" + strconv.Itoa(r.Rounds)
}

// reversalPlot draws the reversal probability against k as columns, ten
// rows high, with the 95% interval's ends marked.
func reversalPlot(w io.Writer, rs []attack.Reversal, cs ColorScheme) error {
	const rows = 10
	var sb strings.Builder
	sb.WriteString("P(reversed)\n")
	for row := rows; row >= 1; row-- {
		top := float64(row) / rows
		bottom := float64(row-1) / rows
		label := "    "
		switch row {
		case rows:
			label = "100%"
		case rows / 2:
			label = " 50%"
		}
		sb.WriteString(label + " |")
		for _, r := range rs {
			cell := "   "
			switch {
			case r.Probability >= top || (r.Probability > bottom && r.Probability-bottom >= 0.5/rows):
				cell = " " + cs.Red("█") + " "
			case r.Hi > bottom:
				cell = " " + cs.Faint("┆") + " "
			}
			sb.WriteString(cell)
		}
		sb.WriteString("\n")
	}
	sb.WriteString("  0% +" + strings.Repeat("---", len(rs)) + "\n")
	sb.WriteString("      ")
	for _, r := range rs {
		sb.WriteString(fmt.Sprintf("%2d ", r.K))
	}
	sb.WriteString(" k (confirmations)\n")
	return writeTrimmed(w, sb.String())
}
