package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpExamplesUseRealFlags: every --flag in every example of every posd
// command is a flag of that command, and no help shows pflag's
// "[=true|false]" after bool flags.
func TestHelpExamplesUseRealFlags(t *testing.T) {
	root := NewCmdRoot()
	flagRE := regexp.MustCompile(`(?:^|\s)--([a-z0-9-]+)`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			line, _, _ = strings.Cut(line, "#")
			_, rest, ok := strings.Cut(line, "posd ")
			if !ok {
				continue
			}
			target, _, err := root.Find(strings.Fields(rest))
			if err != nil {
				t.Errorf("%s example %q: %v", c.CommandPath(), strings.TrimSpace(line), err)
				continue
			}
			for _, m := range flagRE.FindAllStringSubmatch(line, -1) {
				if target.Flags().Lookup(m[1]) == nil && target.InheritedFlags().Lookup(m[1]) == nil {
					t.Errorf("%s example %q: no flag --%s", c.CommandPath(), strings.TrimSpace(line), m[1])
				}
			}
		}
		var out bytes.Buffer
		c.SetOut(&out)
		if err := c.Help(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "[=true|false]") {
			t.Errorf("%s --help shows [=true|false]:\n%s", c.CommandPath(), out.String())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// TestHelpSecondNodeHasItsOwnHome: an example that starts a node on another
// port than the default gives it its own --home; without one it would open
// the first node's chain.db and fail with "chain.db is in use".
func TestHelpSecondNodeHasItsOwnHome(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, line := range strings.Split(c.Example, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if strings.Contains(line, "posd start") && strings.Contains(line, "--api-port") && !strings.Contains(line, "--home") {
				t.Errorf("%s example %q: a second node without --home", c.CommandPath(), strings.TrimSpace(line))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewCmdRoot())
}
