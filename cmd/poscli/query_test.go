package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
)

// TestQueryGolden runs every query command in table and JSON output against
// the fake node and compares with testdata/<name>.{table,json}.golden.
func TestQueryGolden(t *testing.T) {
	node := newFakeNode(t)
	blocks := fixtureBlocks()
	cases := []struct {
		name string
		cmd  func(*Factory) *cobra.Command
		args []string
	}{
		{"status", func(f *Factory) *cobra.Command { return NewCmdStatus(f, nil) }, nil},
		{"accounts", func(f *Factory) *cobra.Command { return NewCmdAccounts(f, nil) }, nil},
		{"account", func(f *Factory) *cobra.Command { return NewCmdAccount(f, nil) }, []string{"alice"}},
		{"account_unknown", func(f *Factory) *cobra.Command { return NewCmdAccount(f, nil) }, []string{strings.Repeat("0", 40)}},
		{"stakes", func(f *Factory) *cobra.Command { return NewCmdStakes(f, nil) }, nil},
		{"blocks", func(f *Factory) *cobra.Command { return NewCmdBlocks(f, nil) }, nil},
		{"blocks_from", func(f *Factory) *cobra.Command { return NewCmdBlocks(f, nil) }, []string{"--from", "1", "--limit", "2"}},
		{"block", func(f *Factory) *cobra.Command { return NewCmdBlock(f, nil) }, []string{"2"}},
		{"block_by_hash", func(f *Factory) *cobra.Command { return NewCmdBlock(f, nil) }, []string{blocks[3].Hash().String()}},
		{"block_genesis", func(f *Factory) *cobra.Command { return NewCmdBlock(f, nil) }, []string{"0"}},
		{"pool", func(f *Factory) *cobra.Command { return NewCmdPool(f, nil) }, nil},
		{"peers", func(f *Factory) *cobra.Command { return NewCmdPeers(f, nil) }, nil},
		{"tx_show", func(f *Factory) *cobra.Command { return NewCmdTxShow(f, nil) }, []string{blocks[2].Transactions[1].ID().String()}},
		{"tx_show_pending", func(f *Factory) *cobra.Command { return NewCmdTxShow(f, nil) }, []string{node.pool[0].ID().String()}},
	}
	for _, tc := range cases {
		for _, format := range []string{"table", "json"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				e := newTestEnv(t, node.URL)
				e.addKey(t, "alice", alicePriv, "")
				e.f.Globals.Output = format
				if err := e.run(tc.cmd(e.f), tc.args...); err != nil {
					t.Fatalf("error: %v (stderr %q)", err, e.errOut.String())
				}
				got := e.out.String()
				if format == "json" {
					checkJSON(t, got)
				}
				golden(t, tc.name+"."+format+".golden", e.normalize(got))
			})
		}
	}
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkJSON asserts that s is one JSON value whose object keys are all
// snake_case and that no address in it is shortened.
func checkJSON(t *testing.T, s string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	if strings.Contains(s, "…") {
		t.Errorf("JSON output holds a shortened value:\n%s", s)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if !snakeKey.MatchString(k) {
					t.Errorf("JSON key %q is not snake_case", k)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

func TestEmptyLists(t *testing.T) {
	node := newFakeNode(t)
	node.pool = nil
	e := newTestEnv(t, node.URL)
	if err := e.run(NewCmdPool(e.f, nil)); err != nil {
		t.Fatal(err)
	}
	if e.out.String() != "" || e.errOut.String() != "the pool is empty\n" {
		t.Errorf("table: out %q err %q", e.out.String(), e.errOut.String())
	}
	e = newTestEnv(t, node.URL)
	e.f.Globals.Output = "json"
	if err := e.run(NewCmdPool(e.f, nil)); err != nil {
		t.Fatal(err)
	}
	if e.out.String() != "[]\n" {
		t.Errorf("json: %q, want []", e.out.String())
	}
	e = newTestEnv(t, node.URL)
	e.f.Globals.Output = "json"
	if err := e.run(NewCmdKeysList(e.f, nil)); err != nil || e.out.String() != "[]\n" {
		t.Errorf("keys list json: %q, %v", e.out.String(), err)
	}
}

func TestOwnKeysHighlighted(t *testing.T) {
	node := newFakeNode(t)
	e := newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "")
	e.f.IO.ColorEnabled = true
	if err := e.run(NewCmdAccounts(e.f, nil)); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	label := alice.Short() + " (alice)"
	i := strings.Index(out, label)
	if i < 0 || !strings.Contains(out[max(0, i-12):i], "\x1b[") {
		t.Errorf("alice's row is not highlighted:\n%q", out)
	}
	if strings.Contains(out, "\x1b[36;1m"+bob.Short()) {
		t.Errorf("bob is highlighted but is not a key of ours")
	}
}

func TestQueryArgErrors(t *testing.T) {
	node := newFakeNode(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"block", "tip"}, `error: "tip" is neither a block height nor a block hash (64 hex characters, or a unique prefix of at least 4)`},
		{[]string{"block", "99"}, "error: block 99 not found on the node at <node> (see `poscli status` for its height)"},
		{[]string{"blocks", "--limit", "1001"}, "error: --limit must be between 1 and 1000, got 1001"},
		{[]string{"account", "nobody"}, `error: account "nobody" is neither an address (40 hex characters, a unique prefix of at least 4, or a table's short form like 3f2a…91bc) nor the name of a key in <home>/keys`},
		{[]string{"account"}, "error: account: no key named \"default\" in <home>/keys: create it with `poscli keygen`, or give an address or a key name"},
		{[]string{"tx", "show", "abc"}, `error: "abc" is not a transaction id (64 hex characters, or a unique prefix of at least 4)`},
		{[]string{"tx", "show", strings.Repeat("ab", 32)}, "error: transaction " + strings.Repeat("ab", 32) + " not found: the node at <node> has neither pooled nor committed it"},
		{[]string{"status", "extra"}, `error: poscli status takes no arguments, got "extra" (see 'poscli status --help')`},
		{[]string{"-o", "yaml", "status"}, `error: --output must be table or json, got "yaml"`},
	} {
		e := newTestEnv(t, node.URL)
		if code := e.main(tc.args...); code != 1 {
			t.Errorf("%v: exit %d, want 1", tc.args, code)
		}
		if got := e.normalize(e.errOut.String()); got != tc.want+"\n" {
			t.Errorf("%v:\n got %q\nwant %q", tc.args, got, tc.want+"\n")
		}
		if e.out.String() != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, e.out.String())
		}
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		share float64
		want  string
	}{
		{0, ""}, {1, strings.Repeat("█", 20)}, {0.5, strings.Repeat("█", 10)},
		{0.0001, "▏"}, {0.25, "█████"}, {0.525, "██████████▌"},
	} {
		if got := bar(tc.share, 20); got != tc.want {
			t.Errorf("bar(%v) = %q, want %q", tc.share, got, tc.want)
		}
	}
}

func TestShortForms(t *testing.T) {
	if got := shortHash(chain.Hash{0xab, 0xcd, 0xef, 0x01, 0x23}); got != "abcdef0123…" {
		t.Errorf("shortHash = %q", got)
	}
	now := testNow()
	for ms, want := range map[int64]string{
		now.UnixMilli():           "just now",
		now.UnixMilli() - 5_000:   "5s ago",
		now.UnixMilli() - 180_000: "3m ago",
		now.UnixMilli() + 7_000:   "7s ahead",
	} {
		if got := age(timeMs(ms), now); got != want {
			t.Errorf("age(%d) = %q, want %q", ms, got, want)
		}
	}
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }

// longChain extends the fixture chain with empty blocks up to height h.
func longChain(h uint64) []chain.Block {
	blocks := fixtureBlocks()
	for uint64(len(blocks)) <= h {
		parent := &blocks[len(blocks)-1].Header
		b := chain.NewBlock(chain.DefaultGenesis(), parent, 0, parent.Timestamp+2000, nil)
		b.Header.Sign(carolPriv)
		blocks = append(blocks, *b)
	}
	return blocks
}

// poscli blocks follows X-Next-From: a node that cuts its pages short (at
// its byte bound) still yields --limit rows, or every block to the head.
func TestBlocksFollowsPages(t *testing.T) {
	node := newFakeNode(t)
	node.blocks = longChain(1000)
	node.cutPagesAt(128)
	cases := []struct {
		args        []string
		first, last uint64
		pages       int
	}{
		{[]string{"--from", "1", "--limit", "500"}, 1, 500, 4},
		{[]string{"--from", "901", "--limit", "500"}, 901, 1000, 1},
		{[]string{"--from", "0", "--limit", "1000"}, 0, 999, 8},
		{[]string{"--limit", "300"}, 701, 1000, 3},
		{[]string{"--from", "1", "--limit", "128"}, 1, 128, 1},
	}
	for _, tc := range cases {
		for _, format := range []string{"table", "json"} {
			t.Run(strings.Join(tc.args, " ")+"/"+format, func(t *testing.T) {
				node.mu.Lock()
				node.blockPages = 0
				node.mu.Unlock()
				e := newTestEnv(t, node.URL)
				e.f.Globals.Output = format
				if err := e.run(NewCmdBlocks(e.f, nil), tc.args...); err != nil {
					t.Fatalf("error: %v (stderr %q)", err, e.errOut.String())
				}
				var heights []uint64
				if format == "json" {
					var bs []chain.Block
					if err := json.Unmarshal([]byte(e.out.String()), &bs); err != nil {
						t.Fatal(err)
					}
					for _, b := range bs {
						heights = append(heights, b.Height)
					}
				} else {
					lines := strings.Split(strings.TrimSuffix(e.out.String(), "\n"), "\n")
					for _, l := range lines[1:] { // the header
						h, err := strconv.ParseUint(strings.Fields(l)[0], 10, 64)
						if err != nil {
							t.Fatalf("row %q: %v", l, err)
						}
						heights = append(heights, h)
					}
				}
				want := int(tc.last - tc.first + 1)
				if len(heights) != want || heights[0] != tc.first || heights[len(heights)-1] != tc.last {
					t.Fatalf("%d rows from %v to %v, want %d from %d to %d", len(heights), heights[:min(1, len(heights))], heights[max(0, len(heights)-1):], want, tc.first, tc.last)
				}
				for i := 1; i < len(heights); i++ {
					if heights[i] != heights[i-1]+1 {
						t.Fatalf("row %d: height %d after %d", i, heights[i], heights[i-1])
					}
				}
				node.mu.Lock()
				pages := node.blockPages
				node.mu.Unlock()
				if pages != tc.pages {
					t.Errorf("%d requests, want %d", pages, tc.pages)
				}
			})
		}
	}
}
