package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// DevnetOptions are the flags of `posd devnet`.
type DevnetOptions struct {
	Nodes int
}

// NewCmdDevnet builds `posd devnet`.
func NewCmdDevnet(runF func(context.Context, *DevnetOptions) error) *cobra.Command {
	opts := &DevnetOptions{}
	cmd := &cobra.Command{
		Use:     "devnet",
		Short:   "Run a local network of several nodes in one process",
		Example: "  posd devnet --nodes 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return errors.New("posd devnet: not yet (see the network issue)")
		},
	}
	cmd.Flags().IntVar(&opts.Nodes, "nodes", 3, "number of nodes")
	return cmd
}
