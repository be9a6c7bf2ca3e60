package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/poslab/posd/internal/testkit"
)

func TestNodeConfig(t *testing.T) {
	node := newFakeNode(t)
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "api.token"), []byte("s3cret\n"), 0o600)

	for _, format := range []string{"table", "json"} {
		e := newTestEnv(t, node.URL)
		e.f.Globals.Output = format
		if err := e.run(NewCmdNodeConfig(e.f, nil), "--node-home", home); err != nil {
			t.Fatal(err)
		}
		if format == "json" {
			checkJSON(t, e.out.String())
		}
		golden(t, "node_config."+format+".golden", e.out.String())
	}

	e := newTestEnv(t, node.URL)
	tokenFile := filepath.Join(home, "api.token")
	if err := e.run(NewCmdNodeConfig(e.f, nil), "--token-file", tokenFile, "--block-size", "50", "--block-interval", "1500ms"); err != nil {
		t.Fatal(err)
	}
	want := "block size      50\nblock interval  1.5s\npool limit      5000\n"
	if e.out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", e.out.String(), want)
	}
	if node.config.BlockSize != 50 || node.config.BlockIntervalMs != 1500 || node.config.PoolLimit != 5000 {
		t.Errorf("node config now %+v", node.config)
	}
}

// TestNodeConfigHeartbeatNote: with the genesis heartbeat on, node config
// says on stderr why its settings show little effect; with it off, or in
// JSON, it says nothing.
func TestNodeConfigHeartbeatNote(t *testing.T) {
	const note = "note: heartbeat blocks carry pending transactions along: until the newest payment is 64 blocks deep, a block follows the head within about 500ms whatever the block size and interval, which only time the first block after the chain rests\n"
	tok := filepath.Join(t.TempDir(), "api.token")
	os.WriteFile(tok, []byte("s3cret"), 0o600)
	for _, tc := range []struct {
		name      string
		heartbeat bool
		args      []string
		want      string
	}{
		{"show", true, nil, note},
		{"change", true, []string{"--block-size", "100", "--block-interval", "30s"}, note},
		{"json", true, []string{"-o", "json"}, ""},
		{"no heartbeat", false, []string{"--block-size", "100"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFakeNode(t)
			node.noHeartbeat = !tc.heartbeat
			e := newTestEnv(t, node.URL)
			if code := e.main(append([]string{"node", "config", "--token-file", tok}, tc.args...)...); code != 0 {
				t.Fatalf("exit %d: %s", code, e.errOut.String())
			}
			if got := e.errOut.String(); got != tc.want {
				t.Errorf("stderr %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNodeErrors(t *testing.T) {
	node := newFakeNode(t)
	home := t.TempDir()
	bad := filepath.Join(home, "bad.token")
	os.WriteFile(bad, []byte("nope"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "config"}, "error: this needs the node's admin token: pass --token-file FILE or --node-home DIR (posd's home, holding api.token)"},
		{[]string{"node", "config", "--node-home", home}, "error: admin token file " + home + "/api.token not found: posd writes it at first start in its home (see --node-home)"},
		{[]string{"node", "config", "--token-file", bad}, "error: the node refused the admin token (unauthorized): pass the node's api.token with --token-file FILE or --node-home DIR"},
		{[]string{"node", "config", "--token-file", bad, "--block-size", "0"}, "error: --block-size must be at least 1, got 0"},
		{[]string{"node", "config", "--token-file", bad, "--block-interval", "100us"}, "error: --block-interval must be at least 1ms, got 100µs"},
		{[]string{"node", "config", "--token-file", bad, "--node-home", home}, "error: give either --token-file or --node-home, not both"},
		{[]string{"node", "stake", "--token-file", bad}, "error: --amount is required (see 'poscli node stake --help')"},
	} {
		e := newTestEnv(t, node.URL)
		if code := e.main(tc.args...); code != 1 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		if got := e.errOut.String(); got != tc.want+"\n" {
			t.Errorf("%v\n got %q\nwant %q", tc.args, got, tc.want+"\n")
		}
	}
}

func TestNodeStake(t *testing.T) {
	node := newFakeNode(t)
	tok := filepath.Join(t.TempDir(), "api.token")
	os.WriteFile(tok, []byte("s3cret"), 0o600)
	e := newTestEnv(t, node.URL)
	if code := e.main("-o", "json", "node", "stake", "--token-file", tok, "--amount", "10"); code != 0 {
		t.Fatalf("exit 1: %s", e.errOut.String())
	}
	checkJSON(t, e.out.String())
	tx := testkit.Tx(testkit.Carol, "STAKE", "", 10, 0, 2)
	want := `{
  "id": "` + tx.ID().String() + `",
  "status": "pending"
}
`
	if e.out.String() != want {
		t.Errorf("got %s want %s", e.out.String(), want)
	}
}
