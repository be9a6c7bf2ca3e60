package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain/election"
	"github.com/poslab/posd/lab/sim"
	"github.com/poslab/posd/lab/stats"
)

// SimOptions are the options of `poscli sim`.
type SimOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Ctx     context.Context

	Stakes     string   // --stakes alice=100,bob=50
	StakesFile string   // --stakes-file FILE: {"key": stake}
	Election   string   // --election
	Rounds     int      // --rounds
	Seed       string   // --seed: the first round's seed
	Reward     uint64   // --reward: added to the winner's stake each round
	Offline    []string // --offline NAME, repeatable

	// RoundsSet is whether --rounds was given (attacks have their own
	// default).
	RoundsSet bool
	// Attack options (sim_attack.go): --attack and the defence switches.
	Attack AttackOptions
}

// Defaults of `poscli sim`.
const (
	defaultSimRounds = 10000
	defaultSimSeed   = "posd"
	// simProgressAfter is how long a simulation runs before it shows
	// progress on a terminal.
	simProgressAfter = time.Second
)

// NewCmdSim builds `poscli sim`.
func NewCmdSim(f *Factory, runF func(*SimOptions) error) *cobra.Command {
	opts := &SimOptions{IO: f.IO, Globals: f.Globals}
	cmd := &cobra.Command{
		Use:   "sim (--stakes NAME=N,... | --attack grind|private|withhold) [--rounds N] [--seed S] [--election E]",
		Short: "Run forger elections and attacks offline: who wins, how fairly, what cheating gets",
		Long: `Run the chain's forger elections (chain/election) on your own stakes,
without a node, to see what they do.

With --rounds 1 it runs one election on --seed and prints the ranked
candidates: the first may forge the next block, the next ones take over
when those before them are offline. Keys are used exactly as given, so a
lottery winner can be checked against the original Python project by hand.

With more rounds it runs a chain of elections. Round 1 uses --seed; the
seed of round r+1 is the lowercase hex SHA-256 of the bytes of round r's
seed followed by the bytes of round r's winner (a chain seeds each election
with the hash of the block the last winner forged; this stands in for it).
It then compares how often each staker won with its share of the stake:
the deviation, a chi-square test of "wins are proportional to stake" with
its p-value (small p: the wins are further from the stake shares than
chance explains), and a bar chart.

Experiments:
  --reward R     the winner's stake grows by R each round (block rewards
                 compounded into stake): watch the stake shares drift.
  --offline NAME that staker never forges: the first online candidate of
                 the ranking wins instead; a histogram shows how often each
                 rank forged (on a chain, rank k forges k × slot_ms late).

The expected share of a staker is the average over the rounds of its stake
divided by the stake of the online stakers in that round (its stake share
when there is neither --reward nor --offline). With --reward that
expectation moves with the draws, so the p-value is approximate.

The lottery hashes once per staked coin (about 0.15 µs per coin and round):
stakes of millions take a while. A terminal shows progress after a second.

JSON (-o json), --rounds 1: {"election", "seed", "winner", "ranking":
[string]} (with --offline also "winner_rank"). More rounds: {"election",
"rounds", "seed", "stakers": [{"staker", "stake", "stake_share", "wins",
"win_share", "expected_share", "deviation"}], "chi2", "df", "p_value"};
with --reward also "reward" and per staker "final_stake",
"final_stake_share"; with --offline also "offline": [string] and
"rank_histogram": [{"rank", "wins", "share"}], "mean_rank". Shares are
fractions in [0, 1]; deviation is win_share - expected_share.

` + attackHelp,
		Example: `  poscli sim --stakes genesis=1,bob=3,alice=2 --rounds 1 --seed abc
  poscli sim --stakes a=1,b=2,c=7 --rounds 20000
  poscli sim --stakes a=1,b=2,c=7 --election weighted -o json | jq .p_value
  poscli sim --stakes a=10,b=10 --election weighted --reward 1 --rounds 1000
  poscli sim --stakes a=1,b=2,c=7 --offline c
  poscli sim --stakes-file stakes.json --rounds 1 --seed 5c1e0d3f...
  poscli sim --attack grind --attacker-share 0.1 --seed-source block_hash
  poscli sim --attack private --attacker-share 0.33 --heartbeat off
  poscli sim --attack private --attacker-share 0.3 --idle-gap 1000 --finality off
  poscli sim --attack withhold --attacker-share 0.25 -o json | jq .next_rank0_share`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			opts.RoundsSet = cmd.Flags().Changed("rounds")
			opts.Attack.set = attackFlagsSet(cmd)
			if runF != nil {
				return runF(opts)
			}
			return simRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Stakes, "stakes", "", "the stakers: `NAME=N,...` (names trimmed; --stakes-file for exact keys)")
	fl.StringVar(&opts.StakesFile, "stakes-file", "", "read the stakers from `FILE`, a JSON object {\"key\": stake}; keys may be any string")
	fl.StringVar(&opts.Election, "election", "lottery", "election rule: "+strings.Join(election.Names(), " or "))
	fl.IntVar(&opts.Rounds, "rounds", defaultSimRounds, "how many elections to run, each seeded by the last (--attack: heights; private: payments, default 5000)")
	fl.StringVar(&opts.Seed, "seed", defaultSimSeed, "seed of the first election (on a chain: the parent block's hash)")
	fl.Uint64Var(&opts.Reward, "reward", 0, "add `R` to the winner's stake after each round")
	fl.StringArrayVar(&opts.Offline, "offline", nil, "staker `NAME` that never forges (repeatable)")
	_ = cmd.RegisterFlagCompletionFunc("election", cobra.FixedCompletions(election.Names(), cobra.ShellCompDirectiveNoFileComp))
	addAttackFlags(cmd, &opts.Attack)
	return cmd
}

// simSingleJSON is the JSON shape of `poscli sim --rounds 1`.
type simSingleJSON struct {
	Election   string   `json:"election"`
	Seed       string   `json:"seed"`
	Winner     string   `json:"winner"`
	WinnerRank *int     `json:"winner_rank,omitempty"`
	Ranking    []string `json:"ranking"`
}

// simStakerJSON is one staker in `poscli sim -o json`.
type simStakerJSON struct {
	Staker          string   `json:"staker"`
	Stake           uint64   `json:"stake"`
	StakeShare      float64  `json:"stake_share"`
	Wins            int      `json:"wins"`
	WinShare        float64  `json:"win_share"`
	ExpectedShare   float64  `json:"expected_share"`
	Deviation       float64  `json:"deviation"`
	FinalStake      *uint64  `json:"final_stake,omitempty"`
	FinalStakeShare *float64 `json:"final_stake_share,omitempty"`
}

// simRankJSON is one bar of the winning-rank histogram.
type simRankJSON struct {
	Rank  int     `json:"rank"`
	Wins  int     `json:"wins"`
	Share float64 `json:"share"`
}

// simJSON is the JSON shape of `poscli sim` over many rounds.
type simJSON struct {
	Election      string          `json:"election"`
	Rounds        int             `json:"rounds"`
	Seed          string          `json:"seed"`
	Reward        *uint64         `json:"reward,omitempty"`
	Offline       []string        `json:"offline,omitempty"`
	Stakers       []simStakerJSON `json:"stakers"`
	Chi2          float64         `json:"chi2"`
	DF            int             `json:"df"`
	PValue        float64         `json:"p_value"`
	RankHistogram []simRankJSON   `json:"rank_histogram,omitempty"`
	MeanRank      *float64        `json:"mean_rank,omitempty"`
}

// simStakes is the parsed --stakes or --stakes-file: stake by key, and the
// keys in display order (largest stake first, then key).
type simStakes struct {
	stake map[string]uint64
	order []string
}

func (s *simStakes) sort() {
	s.order = s.order[:0]
	for k := range s.stake {
		s.order = append(s.order, k)
	}
	slices.SortFunc(s.order, func(a, b string) int {
		if s.stake[a] != s.stake[b] {
			if s.stake[a] > s.stake[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
}

// parseStakesFlag reads --stakes "alice=100,bob=50".
func parseStakesFlag(spec string) (*simStakes, error) {
	s := &simStakes{stake: map[string]uint64{}}
	for _, item := range strings.Split(spec, ",") {
		i := strings.LastIndexByte(item, '=')
		if i < 0 {
			return nil, fmt.Errorf("--stakes: %q is not NAME=STAKE", strings.TrimSpace(item))
		}
		name, val := strings.TrimSpace(item[:i]), strings.TrimSpace(item[i+1:])
		if name == "" {
			return nil, fmt.Errorf("--stakes: %q has no name before '='", strings.TrimSpace(item))
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("--stakes: the stake of %s must be a whole number above 0, got %q", name, val)
		}
		if _, dup := s.stake[name]; dup {
			return nil, fmt.Errorf("--stakes: %s is given twice", name)
		}
		s.stake[name] = v
	}
	s.sort()
	return s, nil
}

// parseStakesFile reads a JSON object of key → stake.
func parseStakesFile(path string) (*simStakes, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--stakes-file %s not found", path)
	}
	if err != nil {
		return nil, fmt.Errorf("--stakes-file: %v", err)
	}
	var raw map[string]json.Number
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		why := "not a JSON object"
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf(`--stakes-file %s must hold a JSON object {"key": stake, ...}: %s`, path, why)
	}
	if dec.More() {
		return nil, fmt.Errorf("--stakes-file %s holds more than one JSON value", path)
	}
	s := &simStakes{stake: map[string]uint64{}}
	for k, num := range raw {
		v, err := strconv.ParseUint(num.String(), 10, 64)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("--stakes-file %s: the stake of %s must be a whole number above 0, got %s", path, strconv.Quote(k), num)
		}
		s.stake[k] = v
	}
	if len(s.stake) == 0 {
		return nil, fmt.Errorf("--stakes-file %s has no stakers", path)
	}
	s.sort()
	return s, nil
}

func simRun(opts *SimOptions) error {
	ctx := ctxOr(opts.Ctx)
	if opts.Attack.Kind != "" {
		return attackRun(opts)
	}
	if len(opts.Attack.set) > 0 {
		return fmt.Errorf("--%s needs --attack grind|private|withhold", opts.Attack.set[0])
	}
	var st *simStakes
	var err error
	switch {
	case opts.Stakes != "" && opts.StakesFile != "":
		return errors.New("give either --stakes or --stakes-file, not both")
	case opts.Stakes != "":
		st, err = parseStakesFlag(opts.Stakes)
	case opts.StakesFile != "":
		st, err = parseStakesFile(opts.StakesFile)
	default:
		return errors.New("no stakers: give --stakes NAME=N,... or --stakes-file FILE")
	}
	if err != nil {
		return err
	}
	alg, err := election.Get(opts.Election)
	if err != nil {
		return fmt.Errorf("unknown election %q: use %s", opts.Election, strings.Join(election.Names(), " or "))
	}
	if opts.Rounds < 1 {
		return fmt.Errorf("--rounds must be at least 1, got %d", opts.Rounds)
	}
	offline := map[string]bool{}
	for _, name := range opts.Offline {
		if _, ok := st.stake[name]; !ok {
			return fmt.Errorf("--offline %s is not one of the stakers", strconv.Quote(name))
		}
		offline[name] = true
	}
	if len(offline) == len(st.stake) {
		return errors.New("every staker is --offline: nobody could forge")
	}
	var total uint64
	for _, v := range st.stake {
		var carry uint64
		if total, carry = bits.Add64(total, v, 0); carry != 0 {
			return errors.New("the stakes add up to more than 2^64-1")
		}
	}
	if opts.Reward > 0 {
		hi, grow := bits.Mul64(opts.Reward, uint64(opts.Rounds))
		if _, carry := bits.Add64(total, grow, 0); hi != 0 || carry != 0 {
			return errors.New("--reward × --rounds would make the stakes overflow 2^64-1")
		}
	}

	if opts.Rounds == 1 {
		return simSingle(opts, alg, st, offline)
	}

	cfg := sim.Config{Election: alg, Stakes: st.stake, Rounds: opts.Rounds, Seed: opts.Seed, Reward: opts.Reward, Offline: offline}
	var done atomic.Int64
	cfg.Progress = func(n int) { done.Store(int64(n)) }
	var live *liveLine
	if opts.IO.ErrIsTerminal {
		start := time.Now()
		live = startLiveLine(opts.IO.ErrOut, simProgressAfter, func() string {
			n := int(done.Load())
			eta := ""
			if n > 0 {
				left := time.Duration(float64(time.Since(start)) * float64(opts.Rounds-n) / float64(n))
				eta = "  about " + left.Round(time.Second).String() + " left"
			}
			return fmt.Sprintf("round %d/%d %s%s", n, opts.Rounds, progressBar(float64(n)/float64(opts.Rounds), 20), eta)
		})
	}
	res, err := sim.Run(ctx, cfg)
	live.Stop()
	if err != nil {
		return err
	}
	return simReport(opts, st, offline, res)
}

// simSingle runs one election and prints the ranking.
func simSingle(opts *SimOptions, alg election.Algorithm, st *simStakes, offline map[string]bool) error {
	tab := election.NewStakeTable(st.stake)
	ranking := alg.Rank(opts.Seed, tab, tab.Len())
	rank := slices.IndexFunc(ranking, func(s string) bool { return !offline[s] })
	out := simSingleJSON{Election: alg.Name(), Seed: opts.Seed, Winner: ranking[rank], Ranking: ranking}
	if len(offline) > 0 {
		out.WinnerRank = &rank
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, out)
	}
	cs := opts.IO.ColorScheme()
	w := opts.IO.Out
	fmt.Fprintf(w, "%s election, seed %s\n\n", alg.Name(), strconv.Quote(opts.Seed))
	lb := newKeyLabels()
	t := newTable(w, "rank", "staker", "stake", "share")
	total := float64(tab.Total())
	for i, s := range ranking {
		name := lb.label(s)
		if offline[s] {
			name += cs.Yellow(" (offline)")
		}
		if i == rank {
			name = cs.Green(name)
		}
		t.Append(strconv.Itoa(i), name, u64(st.stake[s]), percent(float64(st.stake[s])/total))
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if rank == 0 {
		fmt.Fprintf(w, "winner: %s\n", cs.Green(lb.label(out.Winner)))
	} else {
		fmt.Fprintf(w, "winner: %s, rank %d: every candidate before it is offline\n", cs.Green(lb.label(out.Winner)), rank)
	}
	return lb.legend(w)
}

// simChi2 is Pearson's chi-square of the wins against the expected wins,
// over the online stakers, with its degrees of freedom and p-value.
func simChi2(st *simStakes, offline map[string]bool, res *sim.Result) (chi2 float64, df int, p float64) {
	k := 0
	for _, s := range st.order {
		if offline[s] {
			continue
		}
		k++
		e := res.Expected[s]
		if e > 0 {
			d := float64(res.Wins[s]) - e
			chi2 += d * d / e
		}
	}
	df = k - 1
	if df < 1 {
		return 0, 0, 1
	}
	return chi2, df, stats.ChiSquareSF(chi2, df)
}

// simReport prints the outcome of a simulation.
func simReport(opts *SimOptions, st *simStakes, offline map[string]bool, res *sim.Result) error {
	var total, finalTotal uint64
	for _, s := range st.order {
		total += st.stake[s]
		finalTotal += res.Final[s]
	}
	rounds := float64(opts.Rounds)
	out := simJSON{Election: opts.Election, Rounds: opts.Rounds, Seed: opts.Seed}
	for _, s := range st.order {
		row := simStakerJSON{
			Staker:        s,
			Stake:         st.stake[s],
			StakeShare:    float64(st.stake[s]) / float64(total),
			Wins:          res.Wins[s],
			WinShare:      float64(res.Wins[s]) / rounds,
			ExpectedShare: res.Expected[s] / rounds,
		}
		row.Deviation = row.WinShare - row.ExpectedShare
		if opts.Reward > 0 {
			fs := res.Final[s]
			share := float64(fs) / float64(finalTotal)
			row.FinalStake, row.FinalStakeShare = &fs, &share
		}
		out.Stakers = append(out.Stakers, row)
	}
	out.Chi2, out.DF, out.PValue = simChi2(st, offline, res)
	if opts.Reward > 0 {
		out.Reward = &opts.Reward
	}
	if len(offline) > 0 {
		out.Offline = []string{}
		for _, s := range st.order {
			if offline[s] {
				out.Offline = append(out.Offline, s)
			}
		}
		var sum float64
		for k, n := range res.RankHist {
			out.RankHistogram = append(out.RankHistogram, simRankJSON{Rank: k, Wins: n, Share: float64(n) / rounds})
			sum += float64(k * n)
		}
		mean := sum / rounds
		out.MeanRank = &mean
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, out)
	}
	return simTable(opts, out, offline)
}

// simTable prints a simulation's outcome for people.
func simTable(opts *SimOptions, out simJSON, offline map[string]bool) error {
	cs := opts.IO.ColorScheme()
	w := opts.IO.Out
	fmt.Fprintf(w, "%s election, %d rounds from seed %s; next seed = hex SHA-256(seed ‖ winner)\n",
		out.Election, out.Rounds, strconv.Quote(out.Seed))
	if out.Reward != nil {
		fmt.Fprintf(w, "the winner's stake grows by %d each round\n", *out.Reward)
	}
	fmt.Fprintln(w)

	lb := newKeyLabels()
	moving := out.Reward != nil || len(offline) > 0 // expected share differs from stake share
	headers := []string{"staker", "stake", "stake share", "wins", "win share"}
	if moving {
		headers = append(headers, "expected")
	}
	headers = append(headers, "deviation")
	if out.Reward != nil {
		headers = append(headers, "final stake", "final share")
	}
	t := newTable(w, headers...)
	for _, r := range out.Stakers {
		name := lb.label(r.Staker)
		if offline[r.Staker] {
			name += cs.Yellow(" (offline)")
		}
		row := []string{name, u64(r.Stake), percent(r.StakeShare), strconv.Itoa(r.Wins), percent(r.WinShare)}
		expected, deviation := percent(r.ExpectedShare), fmt.Sprintf("%+.2f pp", 100*r.Deviation)
		if offline[r.Staker] {
			expected, deviation = "-", "-"
		}
		if moving {
			row = append(row, expected)
		}
		row = append(row, deviation)
		if r.FinalStake != nil {
			row = append(row, u64(*r.FinalStake), percent(*r.FinalStakeShare))
		}
		t.Append(row...)
	}
	if err := t.Render(); err != nil {
		return err
	}

	// The bar chart: stake share (and final share) against win share.
	fmt.Fprintln(w)
	width := 0
	for _, r := range out.Stakers {
		width = max(width, utf8.RuneCountInString(lb.label(r.Staker)))
	}
	line := func(name, what string, share float64, paint func(string) string) {
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(name))
		text := fmt.Sprintf("%s%s  %-5s  %7s  %s", name, pad, what, percent(share), paint(bar(share, 40)))
		fmt.Fprintln(w, strings.TrimRight(text, " "))
	}
	for _, r := range out.Stakers {
		line(lb.label(r.Staker), "stake", r.StakeShare, cs.Faint)
		if r.FinalStakeShare != nil {
			line("", "final", *r.FinalStakeShare, cs.Faint)
		}
		line("", "wins", r.WinShare, cs.Green)
	}
	fmt.Fprintln(w)

	if len(out.RankHistogram) > 0 {
		h := newTable(w, "winning rank", "rounds", "share", "")
		for _, b := range out.RankHistogram {
			h.Append(strconv.Itoa(b.Rank), strconv.Itoa(b.Wins), percent(b.Share), cs.Green(bar(b.Share, 40)))
		}
		if err := h.Render(); err != nil {
			return err
		}
		mean := *out.MeanRank
		fmt.Fprintf(w, "mean winning rank %.3f: rank k may forge only k × slot_ms after its parent, so blocks come %.3f slots late on average (%s with slot_ms 2000)\n\n",
			mean, mean, formatMs(int64(math.Round(mean*2000))))
	}

	if out.DF == 0 {
		fmt.Fprintln(w, "one online staker: it wins every round, there is nothing to test")
	} else {
		dof := "degrees"
		if out.DF == 1 {
			dof = "degree"
		}
		fmt.Fprintf(w, "chi-square %.2f with %d %s of freedom, p-value %s: %s\n",
			out.Chi2, out.DF, dof, formatP(out.PValue), simVerdict(out.PValue, cs))
	}
	return lb.legend(w)
}

// formatP formats a p-value.
func formatP(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}

// simVerdict says in words what a p-value means.
func simVerdict(p float64, cs ColorScheme) string {
	switch {
	case p < 0.001:
		return cs.Yellow("the wins are far from the expected shares; chance alone would almost never do this")
	case p < 0.05:
		return "deviations this large are rare by chance (a fair election still gives p < 0.05 one run in twenty: try other --seed values)"
	}
	return cs.Green("the wins match the expected shares as well as chance allows")
}

// keyLabels shows staker keys in tables: as they are when short and
// printable, else as [key N] with the key in a legend below.
type keyLabels struct {
	long map[string]int
	keys []string
}

func newKeyLabels() *keyLabels { return &keyLabels{long: map[string]int{}} }

func (l *keyLabels) label(k string) string {
	if plainKey(k) {
		return k
	}
	if q := strconv.Quote(k); len(q) <= 40 {
		return q
	}
	n, ok := l.long[k]
	if !ok {
		l.keys = append(l.keys, k)
		n = len(l.keys)
		l.long[k] = n
	}
	return fmt.Sprintf("[key %d]", n)
}

// legend lists the keys shown as [key N], quoted in full.
func (l *keyLabels) legend(w io.Writer) error {
	if len(l.keys) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	for i, k := range l.keys {
		if _, err := fmt.Fprintf(w, "[key %d] = %s\n", i+1, strconv.Quote(k)); err != nil {
			return err
		}
	}
	return nil
}

// plainKey reports whether k can be shown as it is: 1 to 40 printable
// characters without spaces at either end.
func plainKey(k string) bool {
	if k == "" || utf8.RuneCountInString(k) > 40 || !utf8.ValidString(k) || strings.TrimSpace(k) != k {
		return false
	}
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// progressBar draws share (0..1) as a bar of width cells between brackets.
func progressBar(share float64, width int) string {
	b := bar(share, width)
	return "[" + b + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(b))) + "]"
}

// liveLine redraws one status line on a terminal every 100 ms, from delay
// on, until stopped; then erases it. A nil liveLine does nothing.
type liveLine struct {
	w    io.Writer
	text func() string
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startLiveLine(w io.Writer, delay time.Duration, text func() string) *liveLine {
	l := &liveLine{w: w, text: text, stop: make(chan struct{}), done: make(chan struct{})}
	go l.run(delay)
	return l
}

func (l *liveLine) run(delay time.Duration) {
	defer close(l.done)
	wait := time.NewTimer(delay)
	defer wait.Stop()
	select {
	case <-l.stop:
		return
	case <-wait.C:
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		fmt.Fprintf(l.w, "\r\033[K%s", l.text())
		select {
		case <-l.stop:
			fmt.Fprint(l.w, "\r\033[K")
			return
		case <-t.C:
		}
	}
}

// Stop erases the line.
func (l *liveLine) Stop() {
	if l == nil {
		return
	}
	l.once.Do(func() { close(l.stop) })
	<-l.done
}
