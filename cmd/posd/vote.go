package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

// voteFlag is --vote (default true) stored as its negation, the daemon's
// Config.NoVote, so that a Config's zero value votes.
type voteFlag struct{ noVote *bool }

func (v voteFlag) String() string { return strconv.FormatBool(!*v.noVote) }

func (v voteFlag) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.noVote = !b
	return nil
}

func (v voteFlag) Type() string { return "bool" }

// addVoteFlag adds --vote to cmd, stored into *noVote.
func addVoteFlag(cmd *cobra.Command, noVote *bool, usage string) {
	cmd.Flags().Var(voteFlag{noVote}, "vote", usage)
	cmd.Flags().Lookup("vote").NoOptDefVal = "true"
	cmd.Flags().Lookup("vote").DefValue = "true"
}
