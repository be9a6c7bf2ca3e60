package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/keystore"
)

// runStart runs startRun in the background until the node is ready, and
// returns it with a function that stops it.
func runStart(t *testing.T, opts *StartOptions) (*daemon.Node, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *daemon.Node, 1)
	done := make(chan error, 1)
	opts.Ready = func(n *daemon.Node) { ready <- n }
	go func() { done <- startRun(ctx, opts) }()
	select {
	case n := <-ready:
		return n, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("startRun: %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("startRun: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the node did not start in 60s")
	}
	return nil, nil
}

func singleNodeOptions(home string) *StartOptions {
	return &StartOptions{
		Config: daemon.Config{Home: home, NewNetwork: true, Genesis: daemon.DefaultGenesisParams(), Host: "127.0.0.1",
			NoNetwork: true, BlockSize: 1, BlockInterval: time.Second, PoolLimit: 1000},
		Exchange: "open", LogLevel: "warn", LogFormat: "text", Stderr: io.Discard,
	}
}

// TestSettingsSurviveRestart: forging settings changed at runtime come back
// after a restart; a flag given on the command line wins over them. The
// node also writes its API URL into its home at each start.
func TestSettingsSurviveRestart(t *testing.T) {
	home := t.TempDir()
	n, stop := runStart(t, singleNodeOptions(home))
	if url, err := daemon.ReadAPIURL(home); err != nil || url != n.APIURL() {
		t.Errorf("api.url: %q, %v; want %s", url, err, n.APIURL())
	}
	size, ms, pool := 5, int64(700), 77
	if _, err := n.API().SetConfig(rpc.ConfigPatch{BlockSize: &size, BlockIntervalMs: &ms, PoolLimit: &pool}); err != nil {
		t.Fatal(err)
	}
	stop()

	n, stop = runStart(t, singleNodeOptions(home))
	if got := n.API().Config(); got != (rpc.Config{BlockSize: 5, BlockIntervalMs: 700, PoolLimit: 77}) {
		t.Errorf("after restart: %+v, want the settings changed at runtime", got)
	}
	if url, _ := daemon.ReadAPIURL(home); url != n.APIURL() {
		t.Errorf("api.url %q not rewritten to %s", url, n.APIURL())
	}
	stop()

	opts := singleNodeOptions(home)
	opts.Config.BlockSize = 3
	opts.Given = func(name string) bool { return name == "block-size" }
	n, stop = runStart(t, opts)
	if got := n.API().Config(); got.BlockSize != 3 || got.BlockIntervalMs != 700 {
		t.Errorf("with --block-size 3: %+v, want block size 3 and the saved interval", got)
	}
	stop()
}

// TestDevnetRefusesGenesisFlagsOnExistingChain: --stakes (or another
// genesis flag) on a home that already has a devnet is refused, not
// silently ignored; --reset takes it. The banner says where the tokens are.
func TestDevnetRefusesGenesisFlagsOnExistingChain(t *testing.T) {
	home := t.TempDir()
	var out bytes.Buffer
	opts := &DevnetOptions{
		Config:   daemon.DevnetConfig{Home: home, Nodes: 1, Genesis: daemon.DefaultGenesisParams(), Host: "127.0.0.1"},
		Exchange: "open", LogLevel: "warn", LogFormat: "text", Out: &out, Stderr: io.Discard,
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts.Ready = func(*daemon.Devnet) { cancel() }
	if err := devnetRun(ctx, opts); err != nil {
		t.Fatal(err)
	}
	tokenPath := filepath.Join(home, "node1", daemon.TokenFile)
	if !strings.Contains(out.String(), tokenPath) || !strings.Contains(out.String(), "--node-home") {
		t.Errorf("banner does not say where the admin token is:\n%s", out.String())
	}
	genesis, _ := os.ReadFile(filepath.Join(home, "node1", daemon.GenesisFile))

	opts.Stakes, opts.GenesisFlags = "5", []string{"--stakes"}
	err := devnetRun(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "--stakes") || !strings.Contains(err.Error(), "--reset") {
		t.Fatalf("--stakes on an existing devnet: %v, want a refusal naming --stakes and --reset", err)
	}
	if now, _ := os.ReadFile(filepath.Join(home, "node1", daemon.GenesisFile)); !bytes.Equal(now, genesis) {
		t.Error("the refused run changed the genesis")
	}

	ctx, cancel = context.WithCancel(context.Background())
	var stake uint64
	opts.Reset = true
	opts.Ready = func(d *daemon.Devnet) { stake = d.Nodes[0].API().Account(d.Nodes[0].Address()).Stake; cancel() }
	if err := devnetRun(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if stake != 5 {
		t.Errorf("after --reset --stakes 5: stake %d", stake)
	}
}

// TestPendingPoolSurvivesCleanRestart: pending transactions are saved at
// shutdown and submitted again at the next start.
func TestPendingPoolSurvivesCleanRestart(t *testing.T) {
	home := t.TempDir()
	opts := singleNodeOptions(home)
	opts.Config.BlockSize, opts.Config.BlockInterval = 1000, time.Hour // nothing is forged
	n, stop := runStart(t, opts)
	k, _ := keystore.Generate()
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.API().Genesis().ChainID, To: k.Address(), Amount: 3, Nonce: 1}
	k.SignTx(&tx)
	if _, err := n.API().SubmitTx(tx); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := os.Stat(filepath.Join(home, poolFile)); err != nil {
		t.Fatalf("no saved pool: %v", err)
	}
	n, stop = runStart(t, opts)
	defer stop()
	if got := n.API().PendingTxs(); len(got) != 1 || got[0].ID() != tx.ID() {
		t.Errorf("pool after restart: %v, want the transaction back", got)
	}
	if _, err := os.Stat(filepath.Join(home, poolFile)); !os.IsNotExist(err) {
		t.Errorf("saved pool not deleted after the restart: %v", err)
	}
}

// TestSearchByPrefixOnRealNode: GET /v1/search resolves short block hashes,
// transaction ids (committed and pending) and addresses from the store.
func TestSearchByPrefixOnRealNode(t *testing.T) {
	opts := singleNodeOptions(t.TempDir())
	opts.Config.BlockInterval = 50 * time.Millisecond
	n, stop := runStart(t, opts)
	defer stop()
	k, _ := keystore.Generate()
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.API().Genesis().ChainID, To: k.Address(), Amount: 3, Nonce: 1}
	k.SignTx(&tx)
	if _, err := n.API().SubmitTx(tx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the exchange to commit", func() bool { return n.API().Account(k.Address()).Balance == 3 })
	b1, err := n.API().BlockByHeight(1)
	if err != nil {
		t.Fatal(err)
	}
	search := func(prefix string) (int, api.SearchResult, string) {
		resp, err := http.Get(n.APIURL() + "/v1/search?prefix=" + prefix)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var res api.SearchResult
		json.Unmarshal(body, &res)
		return resp.StatusCode, res, string(body)
	}
	code, res, body := search(b1.Hash().String()[:10])
	if code != 200 || len(res.Blocks) != 1 || res.Blocks[0] != b1.Hash() {
		t.Errorf("block prefix: %d %s", code, body)
	}
	code, res, body = search(tx.ID().String()[:7])
	if code != 200 || len(res.Txs) != 1 || res.Txs[0] != tx.ID() {
		t.Errorf("tx prefix: %d %s", code, body)
	}
	code, res, body = search(strings.ToUpper(string(k.Address())[:9]))
	if code != 200 || len(res.Accounts) != 1 || res.Accounts[0] != k.Address() {
		t.Errorf("address prefix: %d %s", code, body)
	}
	for _, bad := range []string{"abc", "xyz1", strings.Repeat("a", 65), ""} {
		if code, _, body := search(bad); code != 400 || !strings.Contains(body, "bad_request") {
			t.Errorf("prefix %q: %d %s, want 400 bad_request", bad, code, body)
		}
	}
}

// TestBlockSummariesOnRealNode: the node's cached summaries match its
// blocks, twice (the second time from the cache), and end at the head.
func TestBlockSummariesOnRealNode(t *testing.T) {
	opts := singleNodeOptions(t.TempDir())
	opts.Config.BlockInterval = 50 * time.Millisecond
	n, stop := runStart(t, opts)
	defer stop()
	k, _ := keystore.Generate()
	for i := uint64(1); i <= 3; i++ {
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.API().Genesis().ChainID, To: k.Address(), Amount: 1, Nonce: i}
		k.SignTx(&tx)
		if _, err := n.API().SubmitTx(tx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the exchange to commit", func() bool { return n.API().Account(k.Address()).Nonce == i })
	}
	blocks, err := n.API().Blocks(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		resp, err := http.Get(n.APIURL() + "/v1/blocks/summaries?from=0&limit=100")
		if err != nil {
			t.Fatal(err)
		}
		var got []api.BlockSummary
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || len(got) != len(blocks) {
			t.Fatalf("round %d: %d summaries (%v), want %d", round, len(got), err, len(blocks))
		}
		for i, b := range blocks {
			want := api.SummaryOf(b)
			g := got[i]
			g.PassedOver = nil // a single staker: never rank > 0
			if !reflect.DeepEqual(g, want) {
				t.Errorf("round %d: summary %d = %+v, want %+v", round, i, got[i], want)
			}
		}
	}
}
