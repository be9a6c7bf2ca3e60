package clihelp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestTidyFlagUsages(t *testing.T) {
	root := &cobra.Command{Use: "x"}
	sub := &cobra.Command{Use: "start", Run: func(*cobra.Command, []string) {}}
	sub.Flags().Bool("genesis", false, "make a network")
	sub.Flags().String("home", "", "home dir")
	root.AddCommand(sub)
	TidyFlagUsages(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"start", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	if strings.Contains(help, "[=true|false]") || !strings.Contains(help, "--genesis ") {
		t.Fatalf("help still shows the bool suffix or lost the flag:\n%s", help)
	}
	// the columns stay aligned
	var cols []int
	for _, line := range strings.Split(help, "\n") {
		if i := strings.Index(line, "make a network"); i >= 0 {
			cols = append(cols, i)
		}
		if i := strings.Index(line, "home dir"); i >= 0 {
			cols = append(cols, i)
		}
	}
	if len(cols) != 2 || cols[0] != cols[1] {
		t.Errorf("descriptions start at columns %v, want one column:\n%s", cols, help)
	}
}
