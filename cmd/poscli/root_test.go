package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/client"
)

func TestEveryCommandHasExamples(t *testing.T) {
	e := newTestEnv(t, "")
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewCmdRoot(e.f))
}

func TestHelpShowsExamplesAndJSON(t *testing.T) {
	for _, args := range [][]string{{"tx", "transfer", "--help"}, {"help", "stakes"}, {"blocks", "-h"}} {
		e := newTestEnv(t, "")
		if code := e.main(args...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, e.errOut.String())
		}
		out := e.out.String()
		if !strings.Contains(out, "Examples:\n") || !strings.Contains(out, "JSON (-o json)") {
			t.Errorf("%v help lacks Examples or the JSON shape:\n%s", args, out)
		}
	}
}

func TestUnknownCommandAndFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, `error: unknown command "stauts" for "poscli"; did you mean "status"? (see 'poscli --help')`},
		{[]string{"keys", "lst"}, `error: unknown command "lst" for "poscli keys"; did you mean "list"? (see 'poscli keys --help')`},
		{[]string{"tx", "zzz"}, `error: unknown command "zzz" for "poscli tx" (see 'poscli tx --help')`},
		{[]string{"frobnicate"}, `error: unknown command "frobnicate" for "poscli" (see 'poscli --help')`},
		{[]string{"status", "--bogus"}, `error: unknown flag: --bogus (see 'poscli status --help')`},
		// A misspelt subcommand with flags: the subcommand, not its flags, is wrong.
		{[]string{"tx", "transfr", "--key", "alice", "--to", "bob"}, `error: unknown command "transfr" for "poscli tx"; did you mean "transfer"? (see 'poscli tx --help')`},
		{[]string{"--node", "http://x", "tx", "transfr", "--key=alice"}, `error: unknown command "transfr" for "poscli tx"; did you mean "transfer"? (see 'poscli tx --help')`},
		{[]string{"keys", "shwo", "-o", "json", "--bogus"}, `error: unknown command "shwo" for "poscli keys"; did you mean "show"? (see 'poscli keys --help')`},
		{[]string{"node", "confg", "--block-size", "5"}, `error: unknown command "confg" for "poscli node"; did you mean "config"? (see 'poscli node --help')`},
		{[]string{"tx", "zzz", "--key", "alice"}, `error: unknown command "zzz" for "poscli tx" (see 'poscli tx --help')`},
		{[]string{"tx", "--bogus"}, `error: unknown flag: --bogus (see 'poscli tx --help')`},
		{[]string{"tx", "transfer", "--bogus"}, `error: unknown flag: --bogus (see 'poscli tx transfer --help')`},
		{[]string{"--timeout", "soon", "status"}, `error: invalid argument "soon" for "--timeout" flag: must be a duration like "30s" or "5m" (see 'poscli status --help')`},
		{[]string{"help", "nothing"}, `error: unknown help topic "nothing" (see 'poscli --help')`},
	} {
		e := newTestEnv(t, "")
		if code := e.main(tc.args...); code != 1 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		if got := e.errOut.String(); got != tc.want+"\n" {
			t.Errorf("%v\n got %q\nwant %q", tc.args, got, tc.want+"\n")
		}
	}
}

func TestPanicBecomesOneLine(t *testing.T) {
	e := newTestEnv(t, "")
	e.f.Client = func(...client.Option) (*client.Client, error) { panic("boom") }
	if code := e.main("status"); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if got := e.errOut.String(); got != "error: internal error: boom (please report this bug)\n" {
		t.Errorf("got %q", got)
	}
}

func TestGlobalFlagsAndEnv(t *testing.T) {
	node := newFakeNode(t)
	// POSCLI_NODE and POSCLI_HOME are the flags' defaults.
	env := map[string]string{"POSCLI_NODE": node.URL, "POSCLI_HOME": "/tmp/somewhere"}
	f := NewFactory(&IOStreams{Out: &syncBuffer{}, ErrOut: &syncBuffer{}}, func(k string) string { return env[k] })
	if f.Globals.Node != node.URL || f.Globals.Home != "/tmp/somewhere" || f.Globals.KeysDir() != "/tmp/somewhere/keys" {
		t.Errorf("env defaults: %+v", f.Globals)
	}

	e := newTestEnv(t, "http://127.0.0.1:1")
	if code := e.main("--node", node.URL, "-o", "json", "--timeout", "3s", "accounts"); code != 0 {
		t.Fatalf("exit 1: %s", e.errOut.String())
	}
	checkJSON(t, e.out.String())
	if e.f.Globals.Timeout.String() != "3s" {
		t.Errorf("timeout %s", e.f.Globals.Timeout)
	}
}

func TestColorDecision(t *testing.T) {
	for _, tc := range []struct {
		tty, noColorFlag bool
		noColorEnv       string
		want             bool
	}{
		{true, false, "", true},
		{false, false, "", false},
		{true, true, "", false},
		{true, false, "1", false},
	} {
		e := newTestEnv(t, "")
		e.f.IO.IsTerminal, e.f.IO.ErrIsTerminal = tc.tty, tc.tty
		e.f.Globals.NoColor = tc.noColorFlag
		e.env["NO_COLOR"] = tc.noColorEnv
		e.f.setColor()
		if e.f.IO.ColorEnabled != tc.want || e.f.IO.ErrColorEnabled != tc.want {
			t.Errorf("%+v: colour %v", tc, e.f.IO.ColorEnabled)
		}
	}
	// Errors are red on a terminal.
	e := newTestEnv(t, "")
	e.f.IO.ErrIsTerminal = true
	e.main("block", "x")
	if got := e.errOut.String(); !strings.HasPrefix(got, "\x1b[31merror: ") {
		t.Errorf("error not red: %q", got)
	}
	e = newTestEnv(t, "")
	e.f.IO.ErrIsTerminal = true
	e.main("--no-color", "block", "x")
	if got := e.errOut.String(); !strings.HasPrefix(got, "error: ") {
		t.Errorf("--no-color error coloured: %q", got)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	e := newTestEnv(t, "")
	if code := e.main("version"); code != 0 || !strings.HasPrefix(e.out.String(), "poscli v0.0.0-test (go") {
		t.Errorf("version: %q", e.out.String())
	}
	e = newTestEnv(t, "")
	if code := e.main("-o", "json", "version"); code != 0 || !strings.Contains(e.out.String(), `"version": "v0.0.0-test"`) {
		t.Errorf("version json: %q", e.out.String())
	}
	checkJSON(t, e.out.String())
	for shell, marker := range map[string]string{"bash": "__start_poscli", "zsh": "#compdef poscli", "fish": "complete -c poscli"} {
		e := newTestEnv(t, "")
		if code := e.main("completion", shell); code != 0 || !strings.Contains(e.out.String(), marker) {
			t.Errorf("completion %s: exit %d, no %q", shell, code, marker)
		}
	}
	e = newTestEnv(t, "")
	if code := e.main("completion", "tcsh"); code != 1 || e.errOut.String() != "error: unsupported shell \"tcsh\": use bash, zsh or fish\n" {
		t.Errorf("completion tcsh: %q", e.errOut.String())
	}
}

func TestKeyNameCompletion(t *testing.T) {
	e := newTestEnv(t, "")
	e.addKey(t, "alice", alicePriv, "")
	e.addKey(t, "bob", bobPriv, "")
	if code := e.main("__complete", "tx", "transfer", "--key", "a"); code != 0 {
		t.Fatal(e.errOut.String())
	}
	if !strings.HasPrefix(e.out.String(), "alice\n:4\n") {
		t.Errorf("completion: %q", e.out.String())
	}
}
