package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fatih/color"
	"github.com/spf13/cobra"

	"github.com/poslab/posd/daemon"
)

// CheckOptions are the flags of `posd check`.
type CheckOptions struct {
	Home    string
	KeyFile string
	Output  string // text or json
	Out     io.Writer
}

// errCheckFailed makes `posd check` exit 1 after printing its findings.
var errCheckFailed = errors.New("the home failed its check")

// NewCmdCheck builds `posd check`; runF replaces checkRun in tests.
func NewCmdCheck(runF func(*CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{}
	home, _ := os.UserHomeDir()
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify a node's home: key, permissions, genesis and the whole chain database",
		Long: `Verify a node's home without changing it: the permissions of the home, the key
and the token; that the node key loads (POSD_KEY_PASSPHRASE for an encrypted
one); the chain database (its size against its meta page, bbolt's consistency
check, every block from genesis to the head, the undo records of the 64
newest (a reorg reverts no deeper, so older ones are pruned), and the state
replayed from genesis); and genesis.json against the stored genesis. Stop
the node first: it holds the database. Exits 1 when a check fails (warnings
do not).`,
		Example: `  posd check
  posd check --home /tmp/n2 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			opts.Out = cmd.OutOrStdout()
			if runF != nil {
				return runF(opts)
			}
			return checkRun(opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Home, "home", filepath.Join(home, ".posd"), "node home to check")
	f.StringVar(&opts.KeyFile, "key", "", "node key PEM (default <home>/node_key.pem)")
	f.StringVarP(&opts.Output, "output", "o", "text", "text or json")
	return cmd
}

func checkRun(opts *CheckOptions) error {
	if opts.Output != "text" && opts.Output != "json" {
		return fmt.Errorf("-o %q: want text or json", opts.Output)
	}
	results := daemon.CheckHome(opts.Home, opts.KeyFile)
	failed := false
	for _, r := range results {
		failed = failed || r.Status == "fail"
	}
	if opts.Output == "json" {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		marks := map[string]string{
			"ok":   color.GreenString("ok  "),
			"warn": color.YellowString("warn"),
			"fail": color.RedString("FAIL"),
		}
		for _, r := range results {
			if _, err := fmt.Fprintf(opts.Out, "%s  %-11s  %s\n", marks[r.Status], r.Check, r.Detail); err != nil {
				return err
			}
		}
	}
	if failed {
		return errCheckFailed
	}
	return nil
}
