package main

// Query latency: "poscli query latency against a local node under 50 ms".
// BenchmarkQuery{Status,Accounts,Blocks} time one whole poscli invocation
// but the process start-up: a new Factory, the command tree, flag parsing,
// the HTTP request on a new connection, decoding and printing (to
// io.Discard), against a real node running in this process with a few
// dozen transactions in a few dozen blocks. BenchmarkQueryStatusProcess
// runs the poscli binary each time, start-up included.
//
//	go test -run x -bench Query -benchtime 50x ./cmd/poscli/

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/keystore"
)

// benchKeys is how many wallet keys the benchmark chain has; each makes an
// EXCHANGE, three TRANSFERs and a STAKE.
const benchKeys = 8

// benchNode starts a one-node devnet in this process, fills its chain and
// returns its API URL and a poscli home whose keystore holds the wallet
// keys (so that table output marks them, as it would for a user).
func benchNode(b *testing.B) (url, home string) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.StartDevnet(ctx, daemon.DevnetConfig{
		Home:       b.TempDir(),
		Nodes:      1,
		Host:       "127.0.0.1",
		Genesis:    daemon.DefaultGenesisParams(),
		NodeConfig: func(i int, c *daemon.Config) { c.APIPort, c.P2PPort = 0, 0 },
	})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close(); cancel() })
	url = d.Nodes[0].APIURL()
	home = b.TempDir()
	benchFill(b, url, keystore.Dir{Path: filepath.Join(home, "keys")})
	return url, home
}

// benchFill makes benchKeys keys in dir and sends, one block at a time,
// an EXCHANGE and three TRANSFERs from each, then a STAKE from each in one
// last block (after it the node is no longer sure to be the first forger,
// and nothing more is sent).
func benchFill(b *testing.B, url string, dir keystore.Dir) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := client.New(url)
	st, err := c.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]*keystore.Key, benchKeys)
	for i := range keys {
		if keys[i], err = dir.Create(fmt.Sprintf("k%d", i), nil); err != nil {
			b.Fatal(err)
		}
	}
	nonces := make([]uint64, benchKeys)
	tx := func(i int, typ chain.TxType, to chain.Address, amount, fee uint64) chain.Transaction {
		nonces[i]++
		t := chain.Transaction{Type: typ, ChainID: st.ChainID, To: to, Amount: amount, Fee: fee, Nonce: nonces[i]}
		keys[i].SignTx(&t)
		return t
	}
	send := func(txs ...chain.Transaction) {
		res, err := c.SubmitTxs(ctx, txs)
		if err != nil {
			b.Fatal(err)
		}
		for j, r := range res {
			if r.Error != nil {
				b.Fatalf("%s: %v", txs[j].Type, r.Error)
			}
		}
		for j := range txs {
			if _, err := c.WaitTx(ctx, txs[j].ID(), 2*time.Millisecond); err != nil {
				b.Fatalf("waiting for %s: %v", txs[j].Type, err)
			}
		}
	}
	for i := range keys {
		send(tx(i, chain.TxExchange, keys[i].Address(), 1000, 0))
	}
	for round := 1; round <= 3; round++ {
		for i := range keys {
			send(tx(i, chain.TxTransfer, keys[(i+round)%benchKeys].Address(), uint64(10*round), 1))
		}
	}
	var stakes []chain.Transaction
	for i := range keys {
		stakes = append(stakes, tx(i, chain.TxStake, keys[i].Address(), uint64(50+i), 0))
	}
	send(stakes...)

	st, err = c.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if want := uint64(4*benchKeys + 1); st.Height < want {
		b.Fatalf("the benchmark chain has height %d, want at least %d", st.Height, want)
	}
}

// benchQuery runs `poscli --node URL --home HOME args...` in this process
// per iteration, as main does but for the process: SystemFactory's
// NewFactory (no terminal), then Main. Idle connections are closed each
// time, so that each query connects anew, as a new process would.
func benchQuery(b *testing.B, url, home string, args ...string) {
	b.Helper()
	all := append([]string{"--node", url, "--home", home}, args...)
	getenv := func(k string) string {
		if k == "NO_COLOR" {
			return "1"
		}
		return ""
	}
	run := func(out io.Writer) {
		var errOut bytes.Buffer
		f := NewFactory(&IOStreams{In: strings.NewReader(""), Out: out, ErrOut: &errOut}, getenv)
		if code := Main(context.Background(), all, f); code != 0 {
			b.Fatalf("poscli %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		http.DefaultClient.CloseIdleConnections()
	}
	// Once, to see that the query answers what the chain holds.
	var out bytes.Buffer
	run(&out)
	if out.Len() == 0 {
		b.Fatalf("poscli %s printed nothing", strings.Join(args, " "))
	}
	benchLoop(b, func() { run(io.Discard) })
}

// benchLoop times each iteration of fn and reports ms/op and the slowest
// (max-ms) besides ns/op.
func benchLoop(b *testing.B, fn func()) {
	b.Helper()
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		fn()
		lat = append(lat, time.Since(start))
	}
	if len(lat) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum)/float64(len(lat))/1e6, "ms/op")
	b.ReportMetric(float64(slices.Max(lat))/1e6, "max-ms")
}

// benchTableAndJSON runs one query as a table and as JSON.
func benchTableAndJSON(b *testing.B, args ...string) {
	url, home := benchNode(b)
	for _, format := range []string{"table", "json"} {
		b.Run(format, func(b *testing.B) {
			benchQuery(b, url, home, append(slices.Clone(args), "-o", format)...)
		})
	}
}

func BenchmarkQueryStatus(b *testing.B) { benchTableAndJSON(b, "status") }

func BenchmarkQueryAccounts(b *testing.B) { benchTableAndJSON(b, "accounts") }

// BenchmarkQueryBlocks lists the newest 20 blocks (the default).
func BenchmarkQueryBlocks(b *testing.B) { benchTableAndJSON(b, "blocks") }

// The poscli binary of BenchmarkQueryStatusProcess: built without -race,
// whose start-up and exit (see e2eEnv) would dwarf what is measured.
var (
	benchBinOnce sync.Once
	benchBin     string
	benchBinErr  error
)

func benchBinary(b *testing.B) string {
	b.Helper()
	benchBinOnce.Do(func() {
		dir := filepath.Join(e2eBinDir, "norace")
		benchBin = filepath.Join(dir, "poscli")
		if out, err := exec.Command("go", "build", "-o", benchBin, ".").CombinedOutput(); err != nil {
			benchBinErr = fmt.Errorf("building poscli: %v\n%s", err, out)
		}
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	return benchBin
}

// BenchmarkQueryStatusProcess runs `poscli status -o json` as a process
// per iteration: start-up, the query, exit.
func BenchmarkQueryStatusProcess(b *testing.B) {
	bin := benchBinary(b)
	url, home := benchNode(b)
	env := e2eEnv()
	run := func(out io.Writer) {
		cmd := exec.Command(bin, "--node", url, "--home", home, "status", "-o", "json")
		cmd.Env = env
		var errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = out, &errOut
		if err := cmd.Run(); err != nil {
			b.Fatalf("poscli status -o json: %v: %s", err, errOut.String())
		}
	}
	var out bytes.Buffer
	run(&out)
	var st rpc.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Height == 0 {
		b.Fatalf("poscli status -o json: %v %s", err, out.String())
	}
	benchLoop(b, func() { run(io.Discard) })
}
