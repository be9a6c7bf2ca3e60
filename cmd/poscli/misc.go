package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
)

// args checks the positional arguments: between min and max (max < 0: no
// limit), explaining what is expected in what.
func args(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return fmt.Errorf("%s needs %s (see '%s --help')", cmd.CommandPath(), what, cmd.CommandPath())
		case max >= 0 && len(args) > max:
			extra := args[max:]
			return fmt.Errorf("%s takes %s, got unexpected %q (see '%s --help')", cmd.CommandPath(), what, strings.Join(extra, " "), cmd.CommandPath())
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (see '%s --help')", cmd.CommandPath(), strings.Join(args, " "), cmd.CommandPath())
	}
	return nil
}

// parentArgs refuses arguments to a command that only groups subcommands:
// they name a subcommand that does not exist.
func parentArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if sugg := cmd.SuggestionsFor(args[0]); len(sugg) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", sugg[0])
	}
	return fmt.Errorf("%s (see '%s --help')", msg, cmd.CommandPath())
}

// VersionOptions are the options of `poscli version`.
type VersionOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Version string
}

// versionJSON is the JSON shape of `poscli version`.
type versionJSON struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// NewCmdVersion builds `poscli version`.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO, Globals: f.Globals}
	return &cobra.Command{
		Use:   "version",
		Short: "Print poscli's version",
		Long: `Print poscli's version and the Go version it was built with.

JSON (-o json): {"version", "go", "os", "arch"}.`,
		Example: `  poscli version
  poscli version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Version = f.Version
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
}

func versionRun(opts *VersionOptions) error {
	v := versionJSON{Version: opts.Version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, v)
	}
	_, err := fmt.Fprintf(opts.IO.Out, "poscli %s (%s %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
	return err
}

// NewCmdCompletion builds `poscli completion bash|zsh|fish`: cobra's scripts.
func NewCmdCompletion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print the completion script of poscli for bash, zsh or fish. Completion
covers commands, flags and the names of your keys.`,
		Example: `  # bash, this shell only:
  source <(poscli completion bash)
  # bash, for good:
  poscli completion bash > ~/.local/share/bash-completion/completions/poscli
  # zsh:
  poscli completion zsh > "${fpath[1]}/_poscli"
  # fish:
  poscli completion fish > ~/.config/fish/completions/poscli.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		Args:                  args(1, 1, "a shell: bash, zsh or fish"),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			out := f.IO.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return fmt.Errorf("unsupported shell %q: use bash, zsh or fish", args[0])
		},
	}
}
