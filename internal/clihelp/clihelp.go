// Package clihelp tidies cobra's help output for posd and poscli.
package clihelp

import (
	"strings"

	"github.com/spf13/cobra"
)

// boolSuffix is what pflag appends to every bool flag in help ("--genesis[=true|false]").
const boolSuffix = "[=true|false]"

// TidyFlagUsages drops pflag's "[=true|false]" after bool flags in root's
// help (and its subcommands'): "--mdns" reads better, and --mdns=false
// still works. The suffix becomes spaces, so the columns stay aligned.
func TidyFlagUsages(root *cobra.Command) {
	cobra.AddTemplateFunc("tidyFlagUsages", TidyUsages)
	root.SetUsageTemplate(strings.ReplaceAll(root.UsageTemplate(),
		"FlagUsages | trimTrailingWhitespaces", "FlagUsages | tidyFlagUsages"))
}

// TidyUsages is the template function: s with the bool suffixes blanked
// and trailing spaces trimmed.
func TidyUsages(s string) string {
	s = strings.ReplaceAll(s, boolSuffix, strings.Repeat(" ", len(boolSuffix)))
	return strings.TrimRight(s, " \t\n")
}
