package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/internal/clihelp"
)

// Command groups in the root help.
const (
	groupQuery  = "query"
	groupWallet = "wallet"
	groupNode   = "node"
	groupLab    = "lab"
)

// NewCmdRoot builds the poscli command tree on f.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "poscli <command> [flags]",
		Short: "Wallet and explorer for posd, the learning proof-of-stake chain",
		Long: `poscli keeps your keys, signs transactions locally and sends them to a posd
node, and explores the node's chain: blocks, accounts, stakes, the pool.

Keys live in <home>/keys (--home, POSCLI_HOME, default ~/.poscli). The node
is --node (POSCLI_NODE, default http://127.0.0.1:5001). Every command that
prints data prints JSON with -o json; cmd/poscli/README.md documents each
shape.`,
		Example: `  poscli keygen alice
  poscli tx exchange --key alice --amount 100 --wait
  poscli tx transfer --key alice --to bob --amount 5
  poscli status
  poscli blocks --limit 5 -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch f.Globals.Output {
			case "table", "json":
			default:
				return fmt.Errorf("--output must be table or json, got %q", f.Globals.Output)
			}
			if f.Globals.Timeout < 0 {
				return fmt.Errorf("--timeout must not be negative, got %s", f.Globals.Timeout)
			}
			f.setColor()
			return nil
		},
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)

	g := f.Globals
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.Node, "node", g.Node, "URL of the posd node's API (env POSCLI_NODE)")
	pf.StringVar(&g.Home, "home", g.Home, "poscli's directory; keys are in <home>/keys (env POSCLI_HOME)")
	pf.StringVarP(&g.Output, "output", "o", g.Output, "output format: table or json")
	pf.BoolVar(&g.NoColor, "no-color", g.NoColor, "never colour the output (also: NO_COLOR set)")
	pf.DurationVar(&g.Timeout, "timeout", g.Timeout, "time limit of each request to the node")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))

	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &flagError{cmd: c, err: fmt.Errorf("%v (see '%s --help')", err, c.CommandPath())}
	})

	cmd.AddGroup(
		&cobra.Group{ID: groupQuery, Title: "Explore the chain:"},
		&cobra.Group{ID: groupWallet, Title: "Keys and transactions:"},
		&cobra.Group{ID: groupNode, Title: "Node administration:"},
		&cobra.Group{ID: groupLab, Title: "Experiments:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			cmd.AddCommand(c)
		}
	}
	add(groupQuery,
		NewCmdStatus(f, nil),
		NewCmdAccounts(f, nil),
		NewCmdAccount(f, nil),
		NewCmdStakes(f, nil),
		NewCmdBlocks(f, nil),
		NewCmdBlock(f, nil),
		NewCmdPool(f, nil),
		NewCmdPeers(f, nil),
		NewCmdEvidence(f, nil),
		NewCmdFinality(f, nil),
		NewCmdWatch(f, nil),
	)
	add(groupWallet,
		NewCmdKeygen(f, nil),
		NewCmdKeys(f),
		NewCmdTx(f),
	)
	add(groupNode, NewCmdNode(f))
	add(groupLab, NewCmdSim(f, nil), NewCmdLoad(f, nil))
	cmd.AddCommand(NewCmdCompletion(f), NewCmdVersion(f, nil))
	cmd.SetHelpCommand(newCmdHelp(cmd))
	clihelp.TidyFlagUsages(cmd)
	return cmd
}

// Main runs poscli with args and returns the exit status: 0, or 1 after
// printing one "error: ..." line on stderr. It never lets a panic escape.
func Main(ctx context.Context, args []string, f *Factory) (code int) {
	defer func() {
		if r := recover(); r != nil {
			printError(f, args, fmt.Sprintf("internal error: %v (please report this bug)", r))
			code = 1
		}
	}()
	root := NewCmdRoot(f)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	msg := describe(err)
	if strings.HasPrefix(msg, "unknown command ") && !strings.Contains(msg, "(see '") {
		msg = unknownCommand(root, cmd, args, msg)
	}
	var fe *flagError
	if errors.As(err, &fe) {
		if uerr := unknownSubcommand(root, fe.cmd, args); uerr != nil {
			msg = uerr.Error()
		}
	}
	printError(f, args, msg)
	return 1
}

// flagError is a flag that did not parse, on the command that refused it.
type flagError struct {
	cmd *cobra.Command
	err error
}

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

// unknownSubcommand finds the misspelt subcommand behind a flag error:
// cobra stops at the parent of `poscli tx transfr --key alice` and parses
// the flags of the misspelt command there, so it would report "unknown
// flag: --key" rather than the subcommand. It returns the unknown-command
// error (with a suggestion) when the first argument after the parent names
// no subcommand, else nil.
func unknownSubcommand(root, cmd *cobra.Command, args []string) error {
	if cmd == nil || cmd == root || !cmd.HasAvailableSubCommands() {
		return nil
	}
	path := strings.Fields(cmd.CommandPath())[1:] // without "poscli"
	for _, a := range args {
		if len(path) > 0 {
			if a == path[0] {
				path = path[1:]
			}
			continue
		}
		if strings.HasPrefix(a, "-") {
			return nil
		}
		return parentArgs(cmd, []string{a})
	}
	return nil
}

// unknownCommand rewrites cobra's multi-line "unknown command" error into
// one line with a suggestion.
func unknownCommand(root, cmd *cobra.Command, args []string, msg string) string {
	if i := strings.Index(msg, " Did you mean"); i >= 0 {
		msg = msg[:i]
	}
	if cmd == nil {
		cmd = root
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if sugg := cmd.SuggestionsFor(a); len(sugg) > 0 {
			return fmt.Sprintf("%s; did you mean %q? (see '%s --help')", msg, sugg[0], cmd.CommandPath())
		}
	}
	return fmt.Sprintf("%s (see '%s --help')", msg, cmd.CommandPath())
}

func printError(f *Factory, args []string, msg string) {
	cs := f.IO.ErrColorScheme()
	if !f.IO.ErrColorEnabled && f.IO.ErrIsTerminal && f.Getenv("NO_COLOR") == "" && !slices.Contains(args, "--no-color") {
		// The flags may not have been parsed (flag errors): decide here.
		cs = ColorScheme{true}
	}
	fmt.Fprintln(f.IO.ErrOut, cs.Red("error: "+oneLine(msg)))
}

// newCmdHelp is cobra's help command with an example.
func newCmdHelp(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Example: `  poscli help tx transfer
  poscli tx transfer --help`,
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var out []cobra.Completion
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, sub.Name())
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := root.Find(args)
			if err != nil || cmd == nil {
				return fmt.Errorf("unknown help topic %q (see 'poscli --help')", strings.Join(args, " "))
			}
			cmd.InitDefaultHelpFlag()
			return cmd.Help()
		},
	}
}

// version is set at link time: -ldflags "-X main.version=v1.2.3" (the
// Makefile does so from git describe).
var version = ""

// versionString is version, else the module version of the build, else "dev".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
