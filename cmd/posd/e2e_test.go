package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"

	"github.com/poslab/posd/internal/testutil"
)

// posdBin is the real binary, built once for the end-to-end tests.
var posdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "posd-e2e")
	if err != nil {
		panic(err)
	}
	posdBin = filepath.Join(dir, "posd")
	out, err := exec.Command("go", "build", "-race", "-o", posdBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building posd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int { return testutil.FreePort(t) }

// proc is a running posd.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	url  string
	home string
	log  *syncBuffer
	done chan struct{}
}

// startPosd runs `posd start` with args and waits until its API answers.
func startPosd(t testing.TB, home string, apiPort int, args ...string) *proc {
	t.Helper()
	all := append([]string{"start", "--home", home, "--api-port", fmt.Sprint(apiPort), "--p2p-port", fmt.Sprint(freePort(t)), "--mdns=false"}, args...)
	return runProc(t, exec.Command(posdBin, all...), home, fmt.Sprintf("http://127.0.0.1:%d", apiPort))
}

// runProc starts cmd and waits until the API at url answers.
func runProc(t testing.TB, cmd *exec.Cmd, home, url string) *proc {
	t.Helper()
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, url: url, home: home, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("posd exited early: %s", log.String())
		default:
		}
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("posd did not answer within 30s: %s", log.String())
	return nil
}

// syncBuffer is shared with the other packages' tests.
type syncBuffer = testutil.SyncBuffer

func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// stop sends SIGINT and waits for a clean exit.
func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("posd did not stop on SIGINT: %s", p.log.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("posd exited %d after SIGINT: %s", code, p.log.String())
	}
}

// call does one HTTP request; body may be a []byte (sent as is) or a value (JSON).
func (p *proc) call(method, path string, body any, token string, out any) (int, []byte) {
	p.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, p.url+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: %v in %.200s", method, path, err, data)
		}
	}
	return resp.StatusCode, data
}

func (p *proc) status() rpc.Status {
	var s rpc.Status
	p.call("GET", "/v1/status", nil, "", &s)
	return s
}

func (p *proc) account(a chain.Address) rpc.Account {
	var acc rpc.Account
	p.call("GET", "/v1/accounts/"+string(a), nil, "", &acc)
	return acc
}

// sign fills chain id and the next nonce, then signs.
func (p *proc) sign(k *keystore.Key, tx chain.Transaction) chain.Transaction {
	tx.ChainID = p.status().ChainID
	tx.Nonce = *p.account(k.Address()).PendingNonce + 1
	k.SignTx(&tx)
	return tx
}

func (p *proc) submit(tx chain.Transaction) {
	p.t.Helper()
	var res rpc.SubmitResult
	if code, body := p.call("POST", "/v1/txs", tx, "", &res); code != http.StatusAccepted {
		p.t.Fatalf("submit %s: %d %s", tx.Type, code, body)
	}
}

func (p *proc) waitCommitted(id chain.Hash) rpc.TxInfo {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var info rpc.TxInfo
		if code, _ := p.call("GET", "/v1/txs/"+id.String(), nil, "", &info); code == 200 && info.Status == rpc.TxCommitted {
			return info
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("tx %s not committed in 20s", id)
	return rpc.TxInfo{}
}

func TestEndToEndSingleNode(t *testing.T) {
	p := startPosd(t, t.TempDir(), freePort(t), "--genesis", "--chain-id", "e2e")
	st := p.status()
	if st.ChainID != "e2e" || st.Height != 0 || st.Election != "lottery" {
		t.Fatalf("status %+v", st)
	}
	nodeAddr := chain.Address(st.Address)
	alice, _ := keystore.Generate()
	bob, _ := keystore.Generate()

	steps := []chain.Transaction{
		{Type: chain.TxExchange, To: alice.Address(), Amount: 300},
		{Type: chain.TxTransfer, To: bob.Address(), Amount: 50, Fee: 1},
		{Type: chain.TxStake, To: alice.Address(), Amount: 100},
		{Type: chain.TxUnstake, To: alice.Address(), Amount: 30},
	}
	for i, tx := range steps {
		tx = p.sign(alice, tx)
		p.submit(tx)
		info := p.waitCommitted(tx.ID())
		if *info.Height != uint64(i+1) {
			t.Fatalf("%s committed at height %d, want %d", tx.Type, *info.Height, i+1)
		}
	}
	checks := []struct {
		addr chain.Address
		want rpc.Account
	}{
		// The 30 unstaked at height 4 unbond until 4 + unbonding_blocks.
		{alice.Address(), rpc.Account{Balance: 300 - 51 - 100, Stake: 70, Nonce: 4, Unbonding: 30, ReleaseHeight: 4 + chain.DefaultUnbondingBlocks}},
		{bob.Address(), rpc.Account{Balance: 50}},
		{nodeAddr, rpc.Account{Balance: 1001, Stake: 1}},
	}
	for _, c := range checks {
		got := p.account(c.addr)
		if got.Balance != c.want.Balance || got.Stake != c.want.Stake || got.Nonce != c.want.Nonce || got.Unbonding != c.want.Unbonding || got.ReleaseHeight != c.want.ReleaseHeight {
			t.Errorf("%s: got %+v, want %+v", c.addr.Short(), got, c.want)
		}
	}
	var stakes []rpc.Stake
	p.call("GET", "/v1/stakes", nil, "", &stakes)
	if len(stakes) != 2 || stakes[0].Address != alice.Address() || stakes[0].Stake != 70 {
		t.Errorf("/v1/stakes %+v", stakes)
	}
	var blocks []chain.Block
	p.call("GET", "/v1/blocks?from=0&limit=10", nil, "", &blocks)
	if len(blocks) != 5 || blocks[4].Height != 4 {
		t.Fatalf("/v1/blocks: %d blocks", len(blocks))
	}
	// The original's routes.
	var balances, stakeMap map[string]uint64
	p.call("GET", "/accounts", nil, "", &balances)
	p.call("GET", "/stakes", nil, "", &stakeMap)
	if balances[string(bob.Address())] != 50 || stakeMap[string(alice.Address())] != 70 {
		t.Errorf("/accounts %v /stakes %v", balances, stakeMap)
	}
	var key rpc.NodeKey
	p.call("GET", "/pkey", nil, "", &key)
	if key.Address != nodeAddr || !strings.Contains(key.PublicKeyPEM, "BEGIN PUBLIC KEY") {
		t.Errorf("/pkey %+v", key)
	}
	// The original's POST /transaction with its {"transaction": ...} body.
	tx := p.sign(alice, chain.Transaction{Type: chain.TxTransfer, To: bob.Address(), Amount: 5})
	if code, body := p.call("POST", "/transaction", map[string]any{"transaction": tx}, "", nil); code != http.StatusAccepted {
		t.Fatalf("POST /transaction: %d %s", code, body)
	}
	p.waitCommitted(tx.ID())
	// Node-admin staking from the node's own key, as GET /stakes/{amount} did.
	token := readToken(t, p.home)
	var res rpc.SubmitResult
	if code, body := p.call("GET", "/stakes/10", nil, token, &res); code != http.StatusAccepted {
		t.Fatalf("/stakes/10: %d %s", code, body)
	}
	p.waitCommitted(*res.ID)
	if got := p.account(nodeAddr); got.Stake != 11 {
		t.Fatalf("node stake %d after /stakes/10, want 11", got.Stake)
	}
	p.stop()
}

func readToken(t testing.TB, home string) string {
	data, err := os.ReadFile(filepath.Join(home, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.CommandContext(context.Background(), posdBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "posd ") {
		t.Fatalf("posd version: %v %s", err, out)
	}
}

func getJSON(c *http.Client, url string, out any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func postJSON(c *http.Client, url string, body any) error {
	data, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
