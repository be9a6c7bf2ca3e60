package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/internal/clihelp"
)

// NewCmdRoot builds the posd command tree.
func NewCmdRoot() *cobra.Command {
	daemon.Version = version
	root := &cobra.Command{
		Use:           "posd",
		Short:         "posd runs a node of a proof-of-stake blockchain you can study and change",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Example: `  posd start --genesis                                         # a new network, this node its first forger
  posd start --home /tmp/n2 --api-port 5002 --p2p-port 10002   # join the node on 5001 (a home of its own)
  posd devnet --nodes 3                                        # three nodes in one process`,
	}
	root.AddCommand(NewCmdStart(nil), NewCmdDevnet(nil), NewCmdCheck(nil), NewCmdVersion())
	clihelp.TidyFlagUsages(root)
	return root
}

// NewCmdVersion prints the version.
func NewCmdVersion() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the posd version",
		Example: "  posd version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "posd %s\n", version)
			return err
		},
	}
}

// bindEnv lets POSD_<FLAG> (upper case, dashes as underscores) set any flag
// the command line left alone.
func bindEnv(fs *pflag.FlagSet) error {
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || firstErr != nil {
			return
		}
		name := "POSD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				firstErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	return firstErr
}

// newLogger makes the slog logger that --log-level and --log-format ask for.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
