package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpHasNoBoolSuffix: bool flags read "--wait", not "--wait[=true|false]".
func TestHelpHasNoBoolSuffix(t *testing.T) {
	e := newTestEnv(t, "")
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(NewCmdRoot(e.f), nil)
	for _, p := range paths {
		e := newTestEnv(t, "")
		if code := e.main(append(p, "--help")...); code != 0 {
			t.Fatalf("%v --help: exit %d %s", p, code, e.errOut.String())
		}
		if strings.Contains(e.out.String(), "[=true|false]") {
			t.Errorf("poscli %s --help shows [=true|false]", strings.Join(p, " "))
		}
	}
}
