package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
)

// FinalityOptions are the options of `poscli finality`.
type FinalityOptions struct{ QueryEnv }

// NewCmdFinality builds `poscli finality`.
func NewCmdFinality(f *Factory, runF func(*FinalityOptions) error) *cobra.Command {
	opts := &FinalityOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "finality",
		Short: "Show the latest checkpoints, the stake that voted for each, and who is missing",
		Long: `Show the finality record of the node's main chain (GET /v1/finality): the
justified and final checkpoints, then the newest checkpoints above the final
one, each with the lots that voted for it out of all lots, a bar toward the
2/3 line (|) that justifies it, and whether it is justified or final; then
the stakers that have not voted for the newest checkpoint.

A checkpoint is justified when votes of more than 2/3 of the lots link it to
a justified source; the source becomes final when the next checkpoint is
justified from it. Final blocks are never reverted. When finality stalls
(more than a third of the lots not voting), this says so and which stake is
missing. A node without finality answers not_supported.

JSON (-o json): {"head", "epoch_blocks", "justified", "finalized",
"stalled", "checkpoints"} as the node sends it: justified and finalized are
{"height", "hash"}; each checkpoint is {"height", "hash", "source",
"voted_lots", "total_lots", "threshold_lots", "voted_stake", "total_stake",
"justified", "final", "voters", "missing"}, voters and missing lists of
{"address", "stake", "lots"}; stalled is absent unless finality stalls.`,
		Example: `  poscli finality
  poscli finality -o json | jq '.checkpoints[0].missing'`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return finalityRun(opts)
	})
}

func finalityRun(opts *FinalityOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	f, err := c.Finality(opts.ctx())
	if client.IsNotSupported(err) {
		return fmt.Errorf("the node at %s does not report finality (a version before finality, or finality off)", c.BaseURL())
	}
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		f.Checkpoints = nonNil(f.Checkpoints)
		return writeJSON(opts.IO.Out, f)
	}
	own, cs := opts.own(), opts.IO.ColorScheme()
	w := opts.IO.Out
	if f.Stalled != nil {
		fmt.Fprintln(w, cs.Red(cs.Bold(stallLine(f.Stalled))))
		fmt.Fprintln(w)
	}
	fl := fields{cs: cs}
	fl.Add("justified", fmt.Sprintf("%d  %s", f.Justified.Height, shortHash(f.Justified.Hash)))
	behind := ""
	if f.Head >= f.Finalized.Height {
		behind = fmt.Sprintf("  (head %d, %d behind)", f.Head, f.Head-f.Finalized.Height)
	}
	fl.Add("final", fmt.Sprintf("%d  %s%s", f.Finalized.Height, shortHash(f.Finalized.Hash), behind))
	if err := fl.Write(w); err != nil {
		return err
	}
	if len(f.Checkpoints) == 0 {
		fmt.Fprintln(w, "\nno checkpoint above the final one yet")
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "checkpoint", "hash", "voted", "toward 2/3", "status")
	for _, cp := range f.Checkpoints {
		t.Append(u64(cp.Height), shortHash(cp.Hash), votedCell(cp), thirdsBar(cp, 24), checkpointMark(cp, cs))
	}
	if err := t.Render(); err != nil {
		return err
	}
	newest := f.Checkpoints[0]
	fmt.Fprintln(w)
	if len(newest.Missing) == 0 {
		fmt.Fprintf(w, "every staker voted for checkpoint %d\n", newest.Height)
		return nil
	}
	fmt.Fprintf(w, "missing at checkpoint %d (not voted yet):\n", newest.Height)
	mt := newTable(w, "staker", "stake", "lots")
	for _, s := range newest.Missing {
		mt.Append(own.label(s.Address, cs), u64(s.Stake), u64(s.Lots))
	}
	if err := mt.Render(); err != nil {
		return err
	}
	if newest.MissingMore > 0 {
		fmt.Fprintf(w, "… and %d more\n", newest.MissingMore)
	}
	return nil
}

// votedCell is "voted/total (pct%)" in lots.
func votedCell(cp rpc.CheckpointTally) string {
	return fmt.Sprintf("%d/%d (%s)", cp.VotedLots, cp.TotalLots, lotPercent(cp.VotedLots, cp.TotalLots))
}

func lotPercent(n, total uint64) string {
	if total == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(total))
}

// thirdsBar draws the voted share in width cells with "|" at the
// threshold, so the gap to 2/3 is seen at a glance: ██████████░░░░░|░░░.
func thirdsBar(cp rpc.CheckpointTally, width int) string {
	if cp.TotalLots == 0 {
		return strings.Repeat("░", width)
	}
	share := min(float64(cp.VotedLots)/float64(cp.TotalLots), 1)
	filled := int(share*float64(width) + 0.5)
	line := (width*2 + 2) / 3 // cells before the line: 2/3 of the width
	var b strings.Builder
	for i := range width {
		if i == line {
			b.WriteString("|")
		}
		if i < filled {
			b.WriteString("█")
		} else {
			b.WriteString("░")
		}
	}
	if line >= width {
		b.WriteString("|")
	}
	return b.String()
}

// checkpointMark says where a checkpoint stands.
func checkpointMark(cp rpc.CheckpointTally, cs ColorScheme) string {
	switch {
	case cp.Final:
		return cs.Green("final")
	case cp.Justified:
		return cs.Green("justified")
	case cp.VotedLots < cp.ThresholdLots:
		return fmt.Sprintf("needs %d more lots", cp.ThresholdLots-cp.VotedLots)
	}
	return "-"
}

// stallLine is the one loud line of a stalled finality.
func stallLine(s *rpc.FinalityStall) string {
	return fmt.Sprintf("FINALITY STALLED: %.0f%% of the stake's lots (%d of %d, stake %d) did not vote; final is %d blocks behind the head",
		s.MissingPercent, s.MissingLots, s.TotalLots, s.MissingStake, s.Behind)
}

// writeStalledStakers lists the missing stakers of a stall, for status.
func writeStalledStakers(w io.Writer, s *rpc.FinalityStall, own ownKeys, cs ColorScheme) {
	for _, m := range s.Missing {
		fmt.Fprintf(w, "  missing: %s stake %d (%d lots)\n", own.label(m.Address, cs), m.Stake, m.Lots)
	}
	if s.MissingMore > 0 {
		fmt.Fprintf(w, "  … and %d more\n", s.MissingMore)
	}
}
