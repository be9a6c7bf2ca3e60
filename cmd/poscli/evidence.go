package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain/rpc"
)

// EvidenceOptions are the options of `poscli evidence`.
type EvidenceOptions struct{ QueryEnv }

// NewCmdEvidence builds `poscli evidence`.
func NewCmdEvidence(f *Factory, runF func(*EvidenceOptions) error) *cobra.Command {
	opts := &EvidenceOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "evidence",
		Short: "List equivocations the node saw and the stake they burned",
		Long: `List the equivocations the node knows (GET /v1/evidence): a forger that
signed two blocks for one slot (height and parent). Evidence is pending until
a block carries it; that block burns the genesis slash_percent of the
forger's stake (never below min_total_stake; nothing with slash_percent 0).

JSON (-o json): a list of {"id", "height", "forger", "hashes", "included_in",
"slashed", "seen_at"} as the node sends it; included_in and slashed are
absent while the evidence is pending.`,
		Example: `  poscli evidence
  poscli evidence -o json | jq '.[] | select(.included_in) | .slashed'`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return evidenceRun(opts)
	})
}

func evidenceRun(opts *EvidenceOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	list, err := c.Evidence(opts.ctx())
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, nonNil(list))
	}
	if len(list) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no equivocation seen")
		return nil
	}
	own, cs := opts.own(), opts.IO.ColorScheme()
	t := newTable(opts.IO.Out, "height", "forger", "blocks", "included in", "slashed")
	for _, e := range list {
		t.Append(u64(e.Height), own.label(e.Forger, cs), evidenceBlocks(e), includedIn(e), slashed(e))
	}
	return t.Render()
}

func evidenceBlocks(e rpc.Evidence) string {
	if len(e.Hashes) != 2 {
		return "?"
	}
	return shortHash(e.Hashes[0]) + " " + shortHash(e.Hashes[1])
}

func includedIn(e rpc.Evidence) string {
	if e.IncludedIn == nil {
		return "pending"
	}
	return "block " + u64(*e.IncludedIn)
}

func slashed(e rpc.Evidence) string {
	if e.Slashed == nil {
		return "–"
	}
	return u64(*e.Slashed)
}
