package main

// End-to-end tests: the real posd and poscli binaries, built with -race in
// TestMain, talking over loopback. Each poscli call is a subprocess with
// NO_COLOR=1, its own --home and --node, so what is checked here is what a
// user sees: stdout, stderr and the exit status.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain/rpc"

	"github.com/poslab/posd/internal/testutil"
)

// The binaries under test, in e2eBinDir (a temporary directory TestMain
// makes and removes).
var (
	e2eBinDir    string
	e2ePosdBin   string
	e2ePoscliBin string
	e2eBuildOnce sync.Once
	e2eBuildErr  error
)

// e2eTests are the tests that need the binaries; TestMain builds them only
// when -run selects one of these (anything else builds them on first use).
var e2eTests = []string{"TestE2EWalletAndExplorer", "TestE2EUnreachable", "TestE2EHelpAndCompletion"}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "poscli-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e2eBinDir = dir
	e2ePosdBin = filepath.Join(dir, "posd")
	e2ePoscliBin = filepath.Join(dir, "poscli")
	if e2eSelected() {
		if err := e2eBuild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eSelected reports whether -run may select an end-to-end test.
func e2eSelected() bool {
	run := ""
	if f := flag.Lookup("test.run"); f != nil {
		run = f.Value.String()
	}
	if run == "" {
		return true
	}
	re, err := regexp.Compile(strings.Split(run, "/")[0])
	if err != nil {
		return true
	}
	for _, name := range e2eTests {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// e2eBuild builds posd and poscli with the race detector, once. The tests
// run in cmd/poscli: posd is ../posd.
func e2eBuild() error {
	e2eBuildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-race", "-o", e2eBinDir+string(filepath.Separator), "../posd", ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			e2eBuildErr = fmt.Errorf("building posd and poscli: %v\n%s", err, out)
		}
	})
	return e2eBuildErr
}

func e2eBinaries(t testing.TB) {
	t.Helper()
	if err := e2eBuild(); err != nil {
		t.Fatal(err)
	}
}

func e2eFreePort(t testing.TB) int { return testutil.FreePort(t) }

// e2eNode is a running posd.
type e2eNode struct {
	cmd  *exec.Cmd
	url  string
	home string
	log  *syncBuffer
	done chan struct{}
}

// e2eStartPosd starts `posd start --genesis` in a new home on free ports,
// waits until /healthz answers and stops it (SIGINT, expecting status 0)
// when the test ends. The genesis has no heartbeat: the tests count blocks.
// Without it nothing after the last transaction's block is forged, so its
// block never becomes final: the tests wait for inclusion (--wait=included).
func e2eStartPosd(t *testing.T) *e2eNode {
	t.Helper()
	home := t.TempDir()
	api := e2eFreePort(t)
	cmd := exec.Command(e2ePosdBin, "start", "--genesis", "--heartbeat=false", "--home", home,
		"--api-port", fmt.Sprint(api), "--p2p-port", fmt.Sprint(e2eFreePort(t)), "--mdns=false")
	n := &e2eNode{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", api), home: home, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.stop(t) })

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := hc.Get(n.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("posd did not answer /healthz within 60s:\n%s", n.log.String())
		}
		select {
		case <-n.done:
			t.Fatalf("posd exited before answering:\n%s", n.log.String())
		case <-tick.C:
		}
	}
}

func (n *e2eNode) stop(t *testing.T) {
	select {
	case <-n.done:
		if !t.Failed() {
			t.Errorf("posd exited during the test:\n%s", n.log.String())
		}
		return
	default:
	}
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Errorf("posd did not stop within 20s of SIGINT:\n%s", n.log.String())
		return
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("posd exited %d after SIGINT:\n%s", code, n.log.String())
	}
}

// e2eCLI runs the poscli binary against one node with one home.
type e2eCLI struct {
	t    *testing.T
	node string
	home string
}

type e2eResult struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r e2eResult) String() string {
	return fmt.Sprintf("poscli %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// e2eEnv is the environment of poscli: the test's, without POSCLI_* (which
// would change the defaults), with NO_COLOR=1. Unless GORACE says otherwise,
// the race runtime waits 50ms at exit for late reports instead of its
// default second, which would be most of each call's time.
func e2eEnv() []string {
	var env []string
	gorace := false
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSCLI_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
		gorace = gorace || strings.HasPrefix(kv, "GORACE=")
	}
	if !gorace {
		env = append(env, "GORACE=atexit_sleep_ms=50")
	}
	return append(env, "NO_COLOR=1")
}

// run runs poscli --node NODE --home HOME args... with stdin empty and a
// time limit.
func (c *e2eCLI) run(args ...string) e2eResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--node", c.node, "--home", c.home}, args...)
	cmd := exec.CommandContext(ctx, e2ePoscliBin, all...)
	cmd.Env = e2eEnv()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := e2eResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		c.t.Fatalf("poscli %s did not finish within 90s\n%s", strings.Join(args, " "), res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("poscli %s: %v", strings.Join(args, " "), err)
	}
	// The binaries are built with -race: a data race is a failure even when
	// the command itself went well.
	if strings.Contains(res.stderr, "DATA RACE") {
		c.t.Errorf("data race in poscli:\n%s", res)
	}
	return res
}

// ok runs poscli and requires exit status 0 and an empty stderr.
func (c *e2eCLI) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 || r.stderr != "" {
		c.t.Fatalf("want exit 0 and nothing on stderr\n%s", r)
	}
	return r.stdout
}

// json runs poscli with -o json and decodes its one JSON value into out.
// It returns the raw value for key checks.
func (c *e2eCLI) json(out any, args ...string) []byte {
	c.t.Helper()
	stdout := c.ok(append(args, "-o", "json")...)
	dec := json.NewDecoder(strings.NewReader(stdout))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		c.t.Fatalf("poscli %s -o json: %v in\n%s", strings.Join(args, " "), err, stdout)
	}
	if dec.More() {
		c.t.Fatalf("poscli %s -o json printed more than one JSON value:\n%s", strings.Join(args, " "), stdout)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		c.t.Fatalf("poscli %s -o json: %v in\n%s", strings.Join(args, " "), err, stdout)
	}
	return raw
}

// fails runs poscli and requires what README.md promises of an error: exit
// status 1, nothing on stdout, one line "error: ..." on stderr containing
// each of want, and no Go stack trace.
func (c *e2eCLI) fails(want []string, args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	switch {
	case r.code != 1:
		c.t.Errorf("want exit status 1\n%s", r)
	case r.stdout != "":
		c.t.Errorf("want nothing on stdout\n%s", r)
	case strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "error: "):
		c.t.Errorf("want one line \"error: ...\" on stderr\n%s", r)
	case strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic"):
		c.t.Errorf("stack trace on stderr\n%s", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			c.t.Errorf("stderr lacks %q\n%s", w, r)
		}
	}
	return r.stderr
}

// jsonKeys returns the keys of the JSON object raw, in order.
func jsonKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %.200s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v in %.200s", err, raw)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%v in %.200s", err, raw)
		}
	}
	return keys
}

// checkKeys compares an object's keys, in order, with README.md's shape.
func checkKeys(t *testing.T, what string, raw []byte, want string) {
	t.Helper()
	if got := strings.Join(jsonKeys(t, raw), " "); got != want {
		t.Errorf("%s JSON keys\n got %s\nwant %s", what, got, want)
	}
}

// checkEachKeys checks the keys of every element of a JSON array.
func checkEachKeys(t *testing.T, what string, raw []byte, want string) {
	t.Helper()
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, e := range elems {
		checkKeys(t, what, e, want)
	}
}

// The JSON shapes of cmd/poscli/README.md.
const (
	keysKeyJSON    = "name address file encrypted"
	keysTxJSON     = "id type chain_id from to amount fee nonce public_key signature"
	keysTxInfoJSON = "id status height block_hash index confirmations final transaction"
	keysBlockJSON  = "hash height prev_hash timestamp forger forger_public_key rank tx_root seed_proof seed signature transactions"
	// keysVotedBlockJSON: a block carrying finality votes adds their root
	// and the votes.
	keysVotedBlockJSON = "hash height prev_hash timestamp forger forger_public_key rank tx_root seed_proof seed vote_root signature transactions votes"
	keysAccountJSON    = "address balance stake nonce"
	keysStakeJSON      = "address stake share"
	keysStatusJSON     = "chain_id genesis_hash height head_hash head_timestamp address election peers block_size block_interval_ms pending peer_id p2p_addrs version"
)

// The JSON values poscli prints, decoded on their own terms (not with the
// chain types) so that the documented shape is what is tested.
type (
	e2eKey struct {
		Name      string `json:"name"`
		Address   string `json:"address"`
		File      string `json:"file"`
		Encrypted bool   `json:"encrypted"`
	}
	e2eTx struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		ChainID   string `json:"chain_id"`
		From      string `json:"from"`
		To        string `json:"to"`
		Amount    uint64 `json:"amount"`
		Fee       uint64 `json:"fee"`
		Nonce     uint64 `json:"nonce"`
		PublicKey string `json:"public_key"`
		Signature string `json:"signature"`
	}
	e2eTxInfo struct {
		ID          string  `json:"id"`
		Status      string  `json:"status"`
		Height      *uint64 `json:"height"`
		BlockHash   *string `json:"block_hash"`
		Index       *int    `json:"index"`
		Transaction *e2eTx  `json:"transaction"`
	}
	e2eBlock struct {
		Hash            string  `json:"hash"`
		Height          uint64  `json:"height"`
		PrevHash        string  `json:"prev_hash"`
		Timestamp       int64   `json:"timestamp"`
		Forger          string  `json:"forger"`
		ForgerPublicKey string  `json:"forger_public_key"`
		Rank            uint32  `json:"rank"`
		TxRoot          string  `json:"tx_root"`
		Signature       string  `json:"signature"`
		Transactions    []e2eTx `json:"transactions"`
	}
)

var (
	hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)
	hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// tableFields parses a label/value view ("label  value" lines).
func tableFields(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		label, value, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("not a label/value line: %q in\n%s", line, out)
		}
		m[label] = strings.TrimSpace(value)
	}
	return m
}

// checkCommitted checks a tx command's or tx show's JSON.
func checkCommitted(t *testing.T, what string, info e2eTxInfo, height uint64) {
	t.Helper()
	switch {
	case info.Status != rpc.TxCommitted:
		t.Errorf("%s: status %q, want committed", what, info.Status)
	case info.Height == nil || *info.Height != height:
		t.Errorf("%s: height %v, want %d", what, info.Height, height)
	case info.BlockHash == nil || !hex64.MatchString(*info.BlockHash):
		t.Errorf("%s: block_hash %v", what, info.BlockHash)
	case info.Index == nil || *info.Index != 0:
		t.Errorf("%s: index %v, want 0", what, info.Index)
	case info.Transaction == nil || info.Transaction.ID != info.ID || !hex64.MatchString(info.ID):
		t.Errorf("%s: id %q, transaction %+v", what, info.ID, info.Transaction)
	}
}

// TestE2EWalletAndExplorer goes through README.md's walk-through with the
// real binaries: keys, an EXCHANGE, a TRANSFER and a STAKE each waited for,
// then every query in JSON, then the errors a user meets most.
func TestE2EWalletAndExplorer(t *testing.T) {
	e2eBinaries(t)
	node := e2eStartPosd(t)
	cli := &e2eCLI{t: t, node: node.url, home: t.TempDir()}
	keysDir := filepath.Join(cli.home, "keys")

	// Keys: one as a table, one as JSON; keys list has both.
	kv := tableFields(t, cli.ok("keygen", "alice"))
	aliceAddr := kv["address"]
	if kv["name"] != "alice" || !hex40.MatchString(aliceAddr) || kv["file"] != filepath.Join(keysDir, "alice.pem") || kv["encrypted"] != "no" {
		t.Fatalf("keygen alice printed %q", kv)
	}
	var bobKey e2eKey
	checkKeys(t, "keygen", cli.json(&bobKey, "keygen", "bob"), keysKeyJSON)
	bobAddr := bobKey.Address
	if bobKey.Name != "bob" || !hex40.MatchString(bobAddr) || bobAddr == aliceAddr || bobKey.File != filepath.Join(keysDir, "bob.pem") || bobKey.Encrypted {
		t.Fatalf("keygen bob -o json: %+v", bobKey)
	}
	var keys []e2eKey
	checkEachKeys(t, "keys list", cli.json(&keys, "keys", "list"), keysKeyJSON)
	wantKeys := []e2eKey{
		{Name: "alice", Address: aliceAddr, File: filepath.Join(keysDir, "alice.pem")},
		{Name: "bob", Address: bobAddr, File: filepath.Join(keysDir, "bob.pem")},
	}
	if fmt.Sprint(keys) != fmt.Sprint(wantKeys) {
		t.Fatalf("keys list -o json:\n got %+v\nwant %+v", keys, wantKeys)
	}

	// Transactions, each waited for: one block each, in order.
	var exchange e2eTxInfo
	raw := cli.json(&exchange, "tx", "exchange", "--key", "alice", "--to", "alice", "--amount", "100", "--wait=included", "--wait-timeout", "60s")
	checkKeys(t, "tx exchange", raw, keysTxInfoJSON+" included_after_ms") // --wait says how long it took
	checkCommitted(t, "tx exchange", exchange, 1)
	if tx := exchange.Transaction; tx.Type != "EXCHANGE" || tx.From != aliceAddr || tx.To != aliceAddr || tx.Amount != 100 || tx.Fee != 0 || tx.Nonce != 1 {
		t.Errorf("tx exchange: transaction %+v", tx)
	}

	kv = tableFields(t, cli.ok("tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "30", "--fee", "1", "--wait=included", "--wait-timeout", "60s"))
	transferID := kv["id"]
	want := map[string]string{
		"status": "committed", "height": "2", "index": "0", "type": "TRANSFER",
		"from": aliceAddr + " (alice)", "to": bobAddr + " (bob)", "amount": "30", "fee": "1", "nonce": "2",
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("tx transfer: %s is %q, want %q (all: %q)", k, kv[k], v, kv)
		}
	}
	if !hex64.MatchString(transferID) || !hex64.MatchString(kv["block"]) {
		t.Errorf("tx transfer: id %q block %q", transferID, kv["block"])
	}

	// alice's key runs on no node: the stake goes through with a warning.
	var stake e2eTxInfo
	r := cli.run("tx", "stake", "--key", "alice", "--amount", "20", "--wait=included", "--wait-timeout", "60s", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: no node runs key alice") {
		t.Fatalf("tx stake from a key no node runs: want exit 0 and a warning\n%s", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &stake); err != nil {
		t.Fatalf("tx stake -o json: %v in %s", err, r.stdout)
	}
	checkCommitted(t, "tx stake", stake, 3)
	if tx := stake.Transaction; tx.Type != "STAKE" || tx.From != aliceAddr || tx.Amount != 20 || tx.Nonce != 3 {
		t.Errorf("tx stake: transaction %+v", tx)
	}

	// The chain as the queries show it.
	var st rpc.Status
	raw = cli.json(&st, "status")
	// A node with finality adds its four fields after version; poscli
	// adds the peers last.
	ks, ok := strings.CutSuffix(strings.Join(jsonKeys(t, raw), " "), " peer_list")
	if !ok {
		t.Errorf("status JSON keys: no peer_list last in %s", raw)
	}
	ks = strings.TrimSuffix(ks, " justified_height justified_hash finalized_height finalized_hash")
	if ks != keysStatusJSON && ks != strings.Replace(keysStatusJSON, " peer_id", "", 1) {
		t.Errorf("status JSON keys\n got %s\nwant %s", ks, keysStatusJSON)
	}
	nodeAddr := st.Address
	if !hex64.MatchString(st.GenesisHash.String()) || !hex64.MatchString(st.HeadHash.String()) {
		t.Errorf("status -o json: genesis_hash %s head_hash %s", st.GenesisHash, st.HeadHash)
	}
	if st.ChainID != "posd-local" || st.Height != 3 || st.Election != "lottery" || st.Pending != 0 || st.BlockSize != 1 ||
		!hex40.MatchString(nodeAddr) || st.P2PAddrs == nil || st.Version == "" {
		t.Errorf("status -o json: %+v", st)
	}
	for _, info := range []e2eTxInfo{exchange, stake} {
		if info.Transaction.ChainID != st.ChainID || !hex64.MatchString(info.Transaction.PublicKey) || len(info.Transaction.Signature) != 128 {
			t.Errorf("transaction %+v: chain id, public key or signature", info.Transaction)
		}
	}

	var accounts []rpc.Account
	checkEachKeys(t, "accounts", cli.json(&accounts, "accounts"), keysAccountJSON)
	wantAccounts := map[string]rpc.Account{
		aliceAddr: {Balance: 100 - 31 - 20, Stake: 20, Nonce: 3},
		bobAddr:   {Balance: 30},
		nodeAddr:  {Balance: 1000 + 1, Stake: 1}, // the forger earned the fee
	}
	if len(accounts) != len(wantAccounts) {
		t.Errorf("accounts -o json: %d accounts, want %d: %+v", len(accounts), len(wantAccounts), accounts)
	}
	for i, a := range accounts {
		w, ok := wantAccounts[string(a.Address)]
		if !ok || a.Balance != w.Balance || a.Stake != w.Stake || a.Nonce != w.Nonce || a.PendingNonce != nil {
			t.Errorf("accounts -o json: %+v, want %+v", a, w)
		}
		if i > 0 && accounts[i-1].Address >= a.Address {
			t.Errorf("accounts -o json not in address order: %s before %s", accounts[i-1].Address, a.Address)
		}
	}

	var acc rpc.Account
	checkKeys(t, "account", cli.json(&acc, "account", "alice"), keysAccountJSON+" pending_nonce")
	if string(acc.Address) != aliceAddr || acc.Balance != 49 || acc.Stake != 20 || acc.Nonce != 3 || acc.PendingNonce == nil || *acc.PendingNonce != 3 {
		t.Errorf("account alice -o json: %+v", acc)
	}
	var byAddr rpc.Account
	cli.json(&byAddr, "account", bobAddr)
	if string(byAddr.Address) != bobAddr || byAddr.Balance != 30 {
		t.Errorf("account %s -o json: %+v", bobAddr, byAddr)
	}

	var stakes []rpc.Stake
	checkEachKeys(t, "stakes", cli.json(&stakes, "stakes"), keysStakeJSON)
	if len(stakes) != 2 || string(stakes[0].Address) != aliceAddr || stakes[0].Stake != 20 || string(stakes[1].Address) != nodeAddr || stakes[1].Stake != 1 {
		t.Fatalf("stakes -o json: %+v", stakes)
	}
	if sum := stakes[0].Share + stakes[1].Share; math.Abs(sum-1) > 1e-9 || math.Abs(stakes[0].Share-20.0/21) > 1e-9 {
		t.Errorf("stakes -o json: shares %v and %v (sum %v)", stakes[0].Share, stakes[1].Share, sum)
	}

	var blocks []e2eBlock
	raw = cli.json(&blocks, "blocks")
	var rawBlocks []json.RawMessage
	if err := json.Unmarshal(raw, &rawBlocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	for _, b := range rawBlocks {
		want := keysBlockJSON
		if bytes.Contains(b, []byte(`"votes"`)) {
			want = keysVotedBlockJSON
		}
		checkKeys(t, "blocks", b, want)
	}
	if len(blocks) != 4 {
		t.Fatalf("blocks -o json: %d blocks, want 4 (heights 0..3)", len(blocks))
	}
	wantTxs := []struct{ typ, id string }{{}, {"EXCHANGE", exchange.ID}, {"TRANSFER", transferID}, {"STAKE", stake.ID}}
	for i, b := range blocks {
		if b.Height != uint64(i) || !hex64.MatchString(b.Hash) || b.Transactions == nil {
			t.Errorf("blocks -o json [%d]: height %d hash %q transactions %v", i, b.Height, b.Hash, b.Transactions)
			continue
		}
		if i == 0 {
			if len(b.Transactions) != 0 || b.Forger != "" || b.Signature != "" {
				t.Errorf("genesis block: %+v", b)
			}
			continue
		}
		if b.PrevHash != blocks[i-1].Hash || b.Forger != nodeAddr || b.Timestamp < blocks[i-1].Timestamp {
			t.Errorf("block %d: prev %s (want %s), forger %s (want %s), time %d after %d", i, b.PrevHash, blocks[i-1].Hash, b.Forger, nodeAddr, b.Timestamp, blocks[i-1].Timestamp)
		}
		if len(b.Transactions) != 1 || b.Transactions[0].Type != wantTxs[i].typ || b.Transactions[0].ID != wantTxs[i].id {
			t.Errorf("block %d: transactions %+v, want one %s %s", i, b.Transactions, wantTxs[i].typ, wantTxs[i].id)
			continue
		}
		checkKeys(t, "block transaction", blockTxRaw(t, raw, i), keysTxJSON)
	}
	if st.HeadHash.String() != blocks[3].Hash {
		t.Errorf("status head_hash %s, blocks say %s", st.HeadHash, blocks[3].Hash)
	}
	if *exchange.BlockHash != blocks[1].Hash || *stake.BlockHash != blocks[3].Hash || kv["block"] != blocks[2].Hash {
		t.Errorf("tx block hashes %s %s %s, blocks say %s %s %s", *exchange.BlockHash, kv["block"], *stake.BlockHash, blocks[1].Hash, blocks[2].Hash, blocks[3].Hash)
	}

	var show e2eTxInfo
	raw = cli.json(&show, "tx", "show", transferID)
	checkKeys(t, "tx show", raw, keysTxInfoJSON)
	checkCommitted(t, "tx show", show, 2)
	if tx := show.Transaction; show.ID != transferID || *show.BlockHash != blocks[2].Hash || tx.Type != "TRANSFER" ||
		tx.From != aliceAddr || tx.To != bobAddr || tx.Amount != 30 || tx.Fee != 1 || tx.Nonce != 2 {
		t.Errorf("tx show -o json: %+v %+v", show, show.Transaction)
	}
	if show.Transaction != nil {
		checkKeys(t, "tx show transaction", jsonField(t, raw, "transaction"), keysTxJSON)
	}

	// Errors: exit status 1, one line on stderr, nothing on stdout.
	t.Run("unknown key", func(t *testing.T) {
		c := &e2eCLI{t: t, node: cli.node, home: cli.home}
		c.fails([]string{"key carol not found", "poscli keygen carol"}, "tx", "transfer", "--key", "carol", "--to", "bob", "--amount", "1")
		c.fails([]string{"poscli keygen carol"}, "tx", "stake", "--key", "carol", "--amount", "1", "-o", "json")
	})
	t.Run("insufficient balance", func(t *testing.T) {
		c := &e2eCLI{t: t, node: cli.node, home: cli.home}
		c.fails([]string{"insufficient balance", "have 30, need 1000"}, "tx", "transfer", "--key", "bob", "--to", "alice", "--amount", "1000")
		c.fails([]string{"insufficient balance", "have 49, need 50"}, "tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "49", "--fee", "1", "-o", "json")
		c.fails([]string{"insufficient stake"}, "tx", "unstake", "--key", "alice", "--amount", "21")
	})
	t.Run("not found", func(t *testing.T) {
		c := &e2eCLI{t: t, node: cli.node, home: cli.home}
		c.fails([]string{"not found"}, "tx", "show", strings.Repeat("ab", 32))
		c.fails([]string{"block 99 not found"}, "block", "99")
	})
	// Nothing above reached the chain.
	var after rpc.Status
	cli.json(&after, "status")
	if after.Height != 3 || after.Pending != 0 {
		t.Errorf("after the refused commands: height %d, pending %d", after.Height, after.Pending)
	}
}

// blockTxRaw returns the first transaction of block i of a blocks JSON
// array, as it was printed.
func blockTxRaw(t *testing.T, raw []byte, i int) []byte {
	t.Helper()
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &blocks); err != nil {
		t.Fatal(err)
	}
	var txs []json.RawMessage
	if err := json.Unmarshal(blocks[i]["transactions"], &txs); err != nil || len(txs) == 0 {
		t.Fatalf("block %d transactions: %v %s", i, err, blocks[i]["transactions"])
	}
	return txs[0]
}

// jsonField returns one field of a JSON object.
func jsonField(t *testing.T, raw []byte, field string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m[field]
}

// TestE2EUnreachable runs poscli against a port nobody listens on.
func TestE2EUnreachable(t *testing.T) {
	e2eBinaries(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", e2eFreePort(t))
	cli := &e2eCLI{t: t, node: url, home: t.TempDir()}
	cli.ok("keygen", "alice")
	want := []string{"node not reachable at " + url, "is posd running?", "connection refused"}
	for _, args := range [][]string{
		{"status"},
		{"accounts", "-o", "json"},
		{"blocks"},
		{"account", "alice"},
		{"tx", "transfer", "--key", "alice", "--to", "alice", "--amount", "1", "--wait=included"},
	} {
		cli.fails(want, args...)
	}
}

// TestE2EHelpAndCompletion checks what needs no node: help, completion,
// version.
func TestE2EHelpAndCompletion(t *testing.T) {
	e2eBinaries(t)
	cli := &e2eCLI{t: t, node: "http://127.0.0.1:1", home: t.TempDir()}

	help := cli.ok("--help")
	for _, c := range []string{"status", "accounts", "account", "stakes", "blocks", "block", "pool", "peers", "watch",
		"keygen", "keys", "tx", "node", "completion", "version", "help"} {
		if !regexp.MustCompile(`(?m)^  ` + c + ` +\S`).MatchString(help) {
			t.Errorf("poscli --help does not list %q:\n%s", c, help)
		}
	}
	for _, s := range []string{"Usage:", "Examples:", "Explore the chain:", "Keys and transactions:", "Node administration:", "--node", "--home", "--output"} {
		if !strings.Contains(help, s) {
			t.Errorf("poscli --help lacks %q", s)
		}
	}
	if sub := cli.ok("tx", "transfer", "--help"); !strings.Contains(sub, "--amount") || !strings.Contains(sub, "JSON (-o json)") {
		t.Errorf("poscli tx transfer --help:\n%s", sub)
	}

	script := cli.ok("completion", "bash")
	if !strings.HasPrefix(script, "# bash completion V2 for poscli") || !strings.Contains(script, "__start_poscli") ||
		!strings.Contains(script, "complete -o default -F __start_poscli poscli") {
		t.Errorf("poscli completion bash is not a completion script:\n%.500s", script)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		cmd := exec.Command(bash, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash -n on the completion script: %v\n%s", err, out)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		if out := cli.ok("completion", shell); !strings.Contains(out, "poscli") {
			t.Errorf("poscli completion %s:\n%.300s", shell, out)
		}
	}
	cli.fails([]string{"unsupported shell"}, "completion", "tcsh")

	var v struct{ Version, Go, OS, Arch string }
	cli.json(&v, "version")
	if v.Version == "" || !strings.HasPrefix(v.Go, "go") || v.OS == "" || v.Arch == "" {
		t.Errorf("poscli version -o json: %+v", v)
	}
}
