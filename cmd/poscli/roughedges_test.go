package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
)

// TestBlockNegativeHeight: `poscli block -1` says heights start at 0, not
// that -1 is an unknown flag.
func TestBlockNegativeHeight(t *testing.T) {
	e := newTestEnv(t, "")
	if code := e.main("block", "-1"); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if got, want := e.errOut.String(), "error: block heights start at 0: -1 is not a height (see 'poscli block --help')\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = newTestEnv(t, "")
	e.main("block", "-x")
	if got := e.errOut.String(); !strings.Contains(got, "unknown shorthand flag: 'x' in -x") {
		t.Errorf("a real unknown flag: %q", got)
	}
}

// TestWatchSaysWhyItIsIdle: with no block for --idle, watch says so on
// stderr, once per quiet stretch, and keeps stdout clean.
func TestWatchSaysWhyItIsIdle(t *testing.T) {
	node := newFakeNode(t)
	e := newTestEnv(t, node.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // also on a failure: the server's Close waits for the stream
	done := make(chan error, 1)
	cmd := NewCmdWatch(e.f, nil)
	cmd.SetArgs([]string{"--idle", "100ms"})
	go func() { done <- cmd.ExecuteContext(ctx) }()
	waitFor(t, "the idle notice", func() bool { return strings.Contains(e.errOut.String(), "no new block for") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msg := e.errOut.String()
	if !strings.Contains(msg, "1 transactions are pending") || !strings.Contains(msg, "still watching") {
		t.Errorf("idle notice %q: want the pool size and that watch goes on", msg)
	}
	if strings.Count(msg, "no new block") != 1 {
		t.Errorf("idle notice repeated:\n%s", msg)
	}
	if e.out.String() != "" {
		t.Errorf("stdout %q, want nothing", e.out.String())
	}
}

// TestNodeHomeTakesTheNodesURL: `poscli node ... --node-home DIR` talks to
// the node that wrote DIR/api.url, not to the default node; --node wins.
func TestNodeHomeTakesTheNodesURL(t *testing.T) {
	other, own := newFakeNode(t), newFakeNode(t)
	own.config.BlockSize = 7
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "api.token"), []byte("s3cret\n"), 0o600)
	os.WriteFile(filepath.Join(home, nodeAPIURLFile), []byte(own.URL+"\n"), 0o644)

	e := newTestEnv(t, other.URL)
	if code := e.main("node", "config", "--node-home", home, "-o", "json"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut.String())
	}
	if !strings.Contains(e.out.String(), `"block_size": 7`) {
		t.Errorf("asked the wrong node: %s", e.out.String())
	}
	e = newTestEnv(t, "http://127.0.0.1:1")
	if code := e.main("node", "config", "--node-home", home, "--node", other.URL, "-o", "json"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut.String())
	}
	if !strings.Contains(e.out.String(), `"block_size": 100`) {
		t.Errorf("--node did not win over the home's URL: %s", e.out.String())
	}
	// a home without api.url: the default node, with a warning
	os.Remove(filepath.Join(home, nodeAPIURLFile))
	e = newTestEnv(t, other.URL)
	if code := e.main("node", "stake", "--node-home", home, "--amount", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut.String())
	}
	if !strings.Contains(e.errOut.String(), "has no api.url") {
		t.Errorf("no warning about the missing api.url: %q", e.errOut.String())
	}
}

// TestTxWaitNodeDies: `tx --wait` whose node dies while it waits still
// prints the transaction's id, on stdout (pending) and in the error.
func TestTxWaitNodeDies(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		node := newFakeNode(t)
		node.pendingPolls = 1 << 30 // never committed
		e := newTestEnv(t, node.URL)
		e.addKey(t, "alice", alicePriv, "")
		go func() {
			// Once the wait has begun (a status poll), not after the
			// submission only: its answer may not have left yet.
			for node.polledTxs() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			node.CloseClientConnections()
			node.Close()
		}()
		if code := e.main("tx", "transfer", "--key", "alice", "--to", string(bob), "--amount", "1", "--wait", "-o", format); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		id := node.submittedTxs()[0].ID().String()
		if !strings.Contains(e.out.String(), id) || !strings.Contains(e.out.String(), "pending") {
			t.Errorf("%s: stdout %q lacks the pending transaction's id %s", format, e.out.String(), id)
		}
		if msg := e.errOut.String(); !strings.Contains(msg, id) || !strings.Contains(msg, "stopped answering") {
			t.Errorf("%s: error %q lacks the id or the reason", format, msg)
		}
	}
}

// TestStakeFromKeyNoNodeRuns: staking from a key that is neither the
// node's nor one of its peers' warns; from the node's own key it does not.
func TestStakeFromKeyNoNodeRuns(t *testing.T) {
	node := newFakeNode(t)
	e := newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "")
	e.addKey(t, "carol", carolPriv, "")
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut.String())
	}
	if msg := e.errOut.String(); !strings.Contains(msg, "warning: no node runs key alice") || !strings.Contains(msg, "slot late") {
		t.Errorf("no warning for a key no node runs: %q", msg)
	}
	e = newTestEnv(t, node.URL)
	e.addKey(t, "carol", carolPriv, "")
	if code := e.main("tx", "stake", "--key", "carol", "--amount", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut.String())
	}
	if msg := e.errOut.String(); strings.Contains(msg, "warning") {
		t.Errorf("warning for the node's own key: %q", msg)
	}
	e = newTestEnv(t, node.URL)
	e.addKey(t, "bob", bobPriv, "")
	if code := e.main("tx", "unstake", "--key", "bob", "--amount", "1"); code == 0 && strings.Contains(e.errOut.String(), "no node runs") {
		t.Errorf("unstake warned: %q", e.errOut.String())
	}
}

// TestShortPrefixesAsInput: the short hashes tables print are accepted back
// as input when unique, as git accepts abbreviated ids.
func TestShortPrefixesAsInput(t *testing.T) {
	node := newFakeNode(t)
	b2 := node.blocks[2]
	pooled := node.pool[0].ID().String()

	e := newTestEnv(t, node.URL)
	if code := e.main("block", b2.Hash().String()[:10], "-o", "json"); code != 0 {
		t.Fatalf("block by prefix: exit %d %s", code, e.errOut.String())
	}
	if !strings.Contains(e.out.String(), `"height": 2`) {
		t.Errorf("block by prefix printed %s", e.out.String())
	}

	e = newTestEnv(t, node.URL)
	if code := e.main("tx", "show", pooled[:8], "-o", "json"); code != 0 || !strings.Contains(e.out.String(), pooled) {
		t.Errorf("tx show by prefix: exit %d %s %s", code, e.out.String(), e.errOut.String())
	}

	e = newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "")
	if code := e.main("tx", "transfer", "--key", "alice", "--to", string(bob)[:6], "--amount", "1", "-o", "json"); code != 0 {
		t.Fatalf("--to by prefix: exit %d %s", code, e.errOut.String())
	}
	if txs := node.submittedTxs(); len(txs) != 1 || txs[0].To != bob {
		t.Errorf("--to prefix sent %+v, want to bob", txs)
	}

	e = newTestEnv(t, node.URL)
	if code := e.main("account", string(carol)[:5], "-o", "json"); code != 0 || !strings.Contains(e.out.String(), string(carol)) {
		t.Errorf("account by prefix: exit %d %s %s", code, e.out.String(), e.errOut.String())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"block", "ffffff"}, "error: no block hash starts with ffffff on the node at <node>"},
		{[]string{"tx", "show", "ffffff"}, "error: no transaction id starts with ffffff on the node at <node>"},
		{[]string{"block", "abc"}, `error: "abc" is neither a block height nor a block hash (64 hex characters, or a unique prefix of at least 4)`},
	} {
		e := newTestEnv(t, node.URL)
		if code := e.main(tc.args...); code != 1 || e.normalize(e.errOut.String()) != tc.want+"\n" {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, code, e.normalize(e.errOut.String()), tc.want)
		}
	}
}

func TestResolvePrefixAmbiguous(t *testing.T) {
	h1, h2 := chain.Hash{0xab, 0xcd, 0x01}, chain.Hash{0xab, 0xcd, 0x02}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(client.SearchResult{Prefix: "abcd", Blocks: []chain.Hash{h1, h2}})
	}))
	defer srv.Close()
	_, err := resolvePrefix(context.Background(), client.New(srv.URL), "abcd", blockPrefix)
	if err == nil || !strings.Contains(err.Error(), "abcd is ambiguous: 2 block hashes") {
		t.Fatalf("got %v, want ambiguous", err)
	}
	if !strings.Contains(err.Error(), "abcd01") || !strings.Contains(err.Error(), "abcd02") || !strings.Contains(err.Error(), "more characters") {
		t.Errorf("the error should show the candidates and what to do: %v", err)
	}
}

// TestShortAddressAsInput: the "fdea…084c" form tables print addresses in
// is taken back by account and --to when one address on the node has that
// head and tail; none, several, or a head shared by more addresses than the
// node lists are clear errors.
func TestShortAddressAsInput(t *testing.T) {
	node := newFakeNode(t)
	// Two addresses of the same table form, and nine under one head.
	for _, a := range []chain.Address{
		chain.Address("dead" + strings.Repeat("0", 31) + "1beef"),
		chain.Address("dead" + strings.Repeat("0", 31) + "2beef"),
	} {
		node.accounts[a] = rpc.Account{Address: a}
	}
	for i := range 9 {
		a := chain.Address(fmt.Sprintf("c0ff%036x", i))
		node.accounts[a] = rpc.Account{Address: a}
	}
	head := string(carol)[:4]
	cases := []struct {
		args []string
		want string // the address printed, or the start of the error
	}{
		{[]string{"account", carol.Short()}, string(carol)},
		{[]string{"account", strings.ToUpper(string(carol)[:6]) + "..." + string(carol)[34:]}, string(carol)},
		{[]string{"account", bob.Short()}, string(bob)},
		{[]string{"account", head + "…9999"}, "error: account \"" + head + "…9999\": no address matches " + head + "…9999 on the node at <node>"},
		{[]string{"account", "dead…beef"}, "error: account \"dead…beef\": dead…beef is ambiguous: 2 addresses match it (dead" + strings.Repeat("0", 31) + "1beef, dead" + strings.Repeat("0", 31) + "2beef); give the full address"},
		{[]string{"account", "c0ff…0000"}, string("c0ff" + strings.Repeat("0", 36))},
		{[]string{"account", "c0ff…0008"}, "error: account \"c0ff…0008\": c0ff…0008: too many addresses start with c0ff to find the one ending in 0008; give the full address"},
		{[]string{"account", "ab…cd"}, `error: account "ab…cd" is neither an address (40 hex characters, a unique prefix of at least 4, or a table's short form like 3f2a…91bc)`},
	}
	for _, tc := range cases {
		e := newTestEnv(t, node.URL)
		code := e.main(append(tc.args, "-o", "json")...)
		if !strings.HasPrefix(tc.want, "error: ") {
			var acc rpc.Account
			if code != 0 || json.Unmarshal([]byte(e.out.String()), &acc) != nil || string(acc.Address) != tc.want {
				t.Errorf("%v: exit %d, %s %s; want account %s", tc.args, code, e.out.String(), e.errOut.String(), tc.want)
			}
			continue
		}
		if got := e.normalize(e.errOut.String()); code != 1 || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v: exit %d,\n got %q\nwant %q…", tc.args, code, got, tc.want)
		}
	}

	e := newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "")
	if code := e.main("tx", "transfer", "--key", "alice", "--to", bob.Short(), "--amount", "1", "-o", "json"); code != 0 {
		t.Fatalf("--to by short form: exit %d %s", code, e.errOut.String())
	}
	if txs := node.submittedTxs(); len(txs) != 1 || txs[0].To != bob {
		t.Errorf("--to %s sent %+v, want to bob", bob.Short(), txs)
	}
}

// TestStakeWarnsFinalityStall: with finality, a stake that would leave a
// third or more of all stake on keys no node runs says finality will
// stall, before the stake goes out; one that leaves less does not.
func TestStakeWarnsFinalityStall(t *testing.T) {
	node := newFakeNode(t)
	node.finality = fixtureFinality(false)
	// The fake's stake: carol (the node's key) 150, alice (no node runs
	// it) 50; alice holds a balance of 100.
	for _, tc := range []struct {
		name   string
		amount uint64
		warn   bool
	}{
		{"a small stake: 51 of 201 unrun", 1, false},
		{"25 more: 75 of 225 unrun, a third", 25, true},
	} {
		e := newTestEnv(t, node.URL)
		e.addKey(t, "alice", alicePriv, "")
		if code := e.main("tx", "stake", "--key", "alice", "--amount", fmt.Sprint(tc.amount)); code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, e.errOut.String())
		}
		if got := strings.Contains(e.errOut.String(), "finality will stall"); got != tc.warn {
			t.Errorf("%s: finality warning %v, want %v: %q", tc.name, got, tc.warn, e.errOut.String())
		}
	}
}

func TestUnrunStake(t *testing.T) {
	a, b, c := chain.Address("a"), chain.Address("b"), chain.Address("c")
	stakes := []rpc.Stake{{Address: a, Stake: 10}, {Address: b, Stake: 20}}
	for _, tc := range []struct {
		name         string
		run          map[chain.Address]bool
		from         chain.Address
		amount       uint64
		unrun, total uint64
	}{
		{"all run, own key", map[chain.Address]bool{a: true, b: true}, a, 5, 0, 35},
		{"a new key", map[chain.Address]bool{a: true, b: true}, c, 5, 5, 35},
		{"one staker unrun", map[chain.Address]bool{a: true}, a, 5, 20, 35},
	} {
		u, tot := unrunStake(stakes, tc.run, tc.from, tc.amount)
		if u != tc.unrun || tot != tc.total {
			t.Errorf("%s: %d of %d, want %d of %d", tc.name, u, tot, tc.unrun, tc.total)
		}
	}
}
