package doctest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const sample = "# A doc\n" +
	"\n" +
	"```sh\n" +
	"bin/poscli keygen alice   # a key\n" +
	"bin/poscli tx exchange --key alice \\\n" +
	"    --amount 100 --wait\n" +
	"```\n" +
	"\n" +
	"Some text.\n" +
	"\n" +
	"<!-- doctest\n" +
	"fuzzy 2\n" +
	"before 2: H=$(poscli status -o json | jq .height); echo \"a;b\"\n" +
	"illustrative 3: it runs for ever; really\n" +
	"-->\n" +
	"```\n" +
	"$ python3 -c '\n" +
	"print(1)'\n" +
	"1\n" +
	"$ poscli --node http://127.0.0.1:5801 load\n" +
	"node       http://127.0.0.1:5801\n" +
	"\n" +
	"$ posd devnet --api-port 5801 --p2p-port 10801\n" +
	"```\n" +
	"\n" +
	"```\n" +
	"cmd/posd   the node\n" +
	"```\n"

func TestParse(t *testing.T) {
	blocks, err := Parse("x.md", sample)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want 2 (the layout block has no commands)", len(blocks))
	}
	sh, tr := blocks[0], blocks[1]
	if sh.Transcript || len(sh.Commands) != 2 || sh.Commands[1].Text != "bin/poscli tx exchange --key alice \\\n    --amount 100 --wait" {
		t.Fatalf("sh block: %+v", sh)
	}
	if !tr.Transcript || len(tr.Commands) != 3 {
		t.Fatalf("transcript: %+v", tr)
	}
	c := tr.Commands
	if c[0].Text != "python3 -c '\nprint(1)'" || c[0].Output != "1\n" || c[0].Line != 17 {
		t.Errorf("command 1 (open quote goes on): %+v", c[0])
	}
	if c[1].Output != "node       http://127.0.0.1:5801\n\n" {
		t.Errorf("command 2 output %q", c[1].Output)
	}
	d := tr.Directives
	if d.ModeOf(1) != Exact || d.ModeOf(2) != Fuzzy {
		t.Errorf("modes %v", d.Modes)
	}
	if d.IllustrativeReason(3) != "it runs for ever; really" || d.IllustrativeReason(2) != "" {
		t.Errorf("illustrative %v", d.Illustrative)
	}
	if got := d.Before[2]; len(got) != 1 || got[0] != `H=$(poscli status -o json | jq .height); echo "a;b"` {
		t.Errorf("before %q", got)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, md := range map[string]string{
		"directive on text":          "<!-- doctest: fuzzy -->\n```\ncmd/posd  the node\n```\n",
		"directive on nothing":       "<!-- doctest: fuzzy -->\nSome text.\n",
		"unknown directive":          "<!-- doctest: fuzzzy -->\n```sh\nls\n```\n",
		"illustrative without why":   "<!-- doctest: illustrative -->\n```sh\nls\n```\n",
		"command past the block":     "<!-- doctest: fuzzy 3 -->\n```sh\nls\n```\n",
		"output before a command":    "```\nhello\n$ ls\n```\n",
		"unclosed block":             "```sh\nls\n",
		"quote open at end of block": "```sh\necho 'a\n```\n",
		"sub without =>":             "<!-- doctest: sub 1: abc -->\n```sh\nls\n```\n",
	} {
		if _, err := Parse("x.md", md); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRewrite(t *testing.T) {
	e := Env{Work: "/w", Ports: map[string]string{"580": "2713", "581": "2999", "1080": "2500", "500": "2100"}}
	for in, want := range map[string]string{
		"bin/posd devnet --api-port 5801 --p2p-port 10801 &":               "posd devnet --api-port 27131 --p2p-port 25001 &",
		`poscli --node http://127.0.0.1:581$n status`:                      `poscli --node http://127.0.0.1:2999$n status`,
		"curl -s localhost:5001/v1/status; ls /tmp/off/n1":                 "curl -s localhost:21001/v1/status; ls /w/tmp/off/n1",
		"poscli sim --rounds 5801 --seed 127.0.0.1 && cd bin/poscli-extra": "poscli sim --rounds 5801 --seed 127.0.0.1 && cd bin/poscli-extra",
	} {
		if got := e.Rewrite(in); got != want {
			t.Errorf("Rewrite(%q)\n = %q\nwant %q", in, got, want)
		}
	}
	out := "node       http://127.0.0.1:27131\nfile /w/tmp/off/x /w/.poscli/keys/a.pem\nheight 271311\n"
	want := "node       http://127.0.0.1:5801\nfile /tmp/off/x ~/.poscli/keys/a.pem\nheight 271311\n"
	if got := e.Unrewrite(out); got != want {
		t.Errorf("Unrewrite:\n%s\nwant\n%s", got, want)
	}
}

// A changed word in a documented output fails in every mode; a changed
// figure only where the doc asks for exactness.
func TestCompare(t *testing.T) {
	doc := "committed  20000 in 13.883s: 1440.6 tx/s, in 5366 blocks\naa98…c11d  20     64.52%  ████████████▉\n"
	figures := "committed  19999 in 9.1s: 2197.6 tx/s, in 12 blocks\n3f2a…91bc  2      6.45%   █▍\n"
	word := "commited  20000 in 13.883s: 1440.6 tx/s, in 5366 blocks\naa98…c11d  20     64.52%  ████████████▉\n"
	for _, m := range []Mode{Exact, Fuzzy, Rows} {
		if err := Compare(m, doc, doc+"\n"); err != nil {
			t.Errorf("%s: the doc's own output (and a blank line at the end) refused: %v", m, err)
		}
		if err := Compare(m, doc, word); err == nil {
			t.Errorf("%s: a changed word passed", m)
		}
	}
	if err := Compare(Exact, doc, figures); err == nil {
		t.Error("exact: changed figures passed")
	}
	if err := Compare(Fuzzy, doc, figures); err != nil {
		t.Errorf("fuzzy: changed figures refused: %v", err)
	}
	if err := Compare(Fuzzy, doc, doc+"one line more\n"); err == nil {
		t.Error("fuzzy: an extra line passed")
	}
	table := "HEIGHT  AGE\n0       9s ago\n1       just now\n"
	if err := Compare(Rows, table, "HEIGHT  AGE\n7       3s ago\n8       3s ago\n9       just now\n"); err != nil {
		t.Errorf("rows: more rows of the same shape refused: %v", err)
	}
	ranks := "rank 0: 17 of 17 blocks\nmean rank 0\n"
	if err := Compare(Rows, ranks, "rank 0: 18 of 20 blocks\nrank 1: 2 of 20 blocks\nmean rank 0.1\n"); err != nil {
		t.Errorf("rows: a row like the first line refused: %v", err)
	}
	if err := Compare(Rows, table, "HEIGHT  AGE\n"); err == nil {
		t.Error("rows: no rows at all passed")
	}
	if err := Compare(Rows, table, "HEIGHT  AGE\n7       a new word\n"); err == nil {
		t.Error("rows: a row of another shape passed")
	}
}

// TestEveryCommandRunsOrIsMarked: every command shown in the walk-through
// docs runs in TestDocs, unless its doc marks it illustrative or slow, with
// a reason. Script refuses what cannot run (make test, ...) unmarked.
func TestEveryCommandRunsOrIsMarked(t *testing.T) {
	for _, d := range docs {
		md, err := os.ReadFile(filepath.Join(repoRoot, d.file))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Parse(d.file, string(md))
		if err != nil {
			t.Fatal(err)
		}
		e := Env{Work: "/work", Ports: map[string]string{}}
		for _, dec := range Decades(blocks) {
			e.Ports[dec] = "9" + dec
		}
		script, err := Script(blocks, e)
		if err != nil {
			t.Fatal(err)
		}
		var exact, pattern, unchecked, marked int
		for _, b := range blocks {
			for i, c := range b.Commands {
				i++
				where := d.file + ":" + strconv.Itoa(c.Line)
				switch {
				case b.Directives.IllustrativeReason(i) != "":
					marked++
					if !strings.Contains(script, "# "+where+": illustrative") && !strings.Contains(script, "block illustrative") {
						t.Errorf("%s: illustrative but not said so in the script", where)
					}
					continue
				case b.Directives.Slow[i] != "":
					marked++
					continue
				}
				if !strings.Contains(script, "# "+where+"\n") {
					t.Errorf("%s: %q does not run", where, c.Text)
				}
				switch {
				case !b.Transcript:
					unchecked++
				case b.Directives.ModeOf(i) == Exact:
					exact++
				default:
					pattern++
				}
			}
		}
		t.Logf("%s: %d commands compared exactly, %d by pattern, %d run without shown output, %d illustrative or slow",
			d.file, exact, pattern, unchecked, marked)
	}
}
