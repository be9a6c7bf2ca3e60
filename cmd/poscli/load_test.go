package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/daemon/api"
)

// loadChain is a fake network for `poscli load`: one chain that any number
// of servers on 127.0.0.1 serve with the node's real API (api.NewHandler).
// Its pool checks what it is sent as posd's would (signature, chain id,
// nonce order, funds), and a read of blocks that reaches the head first
// forges every executable pooled transaction into a block.
type loadChain struct {
	t  *testing.T
	mu sync.Mutex
	g  *chain.Genesis

	blocks   []chain.Block
	accounts map[chain.Address]chain.Account // committed
	pool     map[chain.Address]map[uint64]chain.Transaction
	// gaps lets a nonce up to 64 above the pooled run in, as posd's pool
	// does; without it a nonce must be the next one (else nonce_gap).
	gaps bool
	// refuse, when set, may refuse a transaction with a code; tries is how
	// many times the same transaction was submitted before.
	refuse func(tx *chain.Transaction, tries int) string
	// busy, when set, may refuse a whole POST /v1/txs with 503 busy and
	// Retry-After: 1 (request n, from 0), before reading it.
	busy    func(n int) bool
	posts   int
	tries   map[chain.Hash]int
	refused map[string]int
	// accepted counts the TRANSFERs the pool took.
	accepted int
	// via records which servers each sender posted to.
	via map[chain.Address]map[string]bool
}

func newLoadChain(t *testing.T) *loadChain {
	g := chain.DefaultGenesis()
	g.ChainID, g.Timestamp, g.MaxBlockTxs = testChainID, t0.UnixMilli(), 1000
	return &loadChain{
		t: t, g: g, blocks: []chain.Block{*g.Block()},
		accounts: map[chain.Address]chain.Account{}, pool: map[chain.Address]map[uint64]chain.Transaction{},
		tries: map[chain.Hash]int{}, refused: map[string]int{}, via: map[chain.Address]map[string]bool{},
	}
}

// serve starts a server named name for the chain and returns its URL.
// Only the busy answer is the test's own: the node gives it when request
// bodies are over budget, which a backend cannot ask for.
func (c *loadChain) serve(name string) string {
	h := api.NewHandler(api.Options{Backend: &loadNode{c: c, name: name}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/txs" {
			c.mu.Lock()
			post := c.posts
			c.posts++
			c.mu.Unlock()
			if c.busy != nil && c.busy(post) {
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(rpc.ErrorBody{Error: &rpc.Error{Code: "busy", Message: "request bodies over budget"}})
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	c.t.Cleanup(srv.Close)
	return srv.URL
}

// loadNode is one server's backend over the shared chain. The API calls
// load makes are implemented; any other would panic, which the handler
// answers with 500 internal and the test sees.
type loadNode struct {
	api.Backend
	c    *loadChain
	name string
}

func (n *loadNode) Status() rpc.Status {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	head := c.blocks[len(c.blocks)-1]
	return rpc.Status{ChainID: c.g.ChainID, GenesisHash: c.g.Hash(), Height: head.Height, HeadHash: head.Hash(), HeadTimestamp: head.Timestamp, Election: "lottery"}
}

func (n *loadNode) Genesis() *chain.Genesis {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.c.g
}

func (n *loadNode) Account(a chain.Address) rpc.Account {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	acc := c.accounts[a]
	top := c.top(a)
	return rpc.Account{Address: a, Balance: acc.Balance, Stake: acc.Stake, Nonce: acc.Nonce, PendingNonce: &top}
}

func (n *loadNode) Height() uint64 {
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return uint64(len(n.c.blocks) - 1)
}

// Blocks forges first when the read reaches the head.
func (n *loadNode) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if from+uint64(limit) >= uint64(len(c.blocks)) {
		c.forge()
	}
	var out []*chain.Block
	for h := from; h < uint64(len(c.blocks)) && len(out) < limit; h++ {
		b := c.blocks[h]
		out = append(out, &b)
	}
	return out, nil
}

func (n *loadNode) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	ids, errs := n.SubmitTxs([]chain.Transaction{tx})
	return ids[0], errs[0]
}

func (n *loadNode) SubmitTxs(txs []chain.Transaction) ([]chain.Hash, []error) {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	ids, errs := make([]chain.Hash, len(txs)), make([]error, len(txs))
	for i := range txs {
		ids[i] = txs[i].ID()
		if code, msg := c.admit(&txs[i], ids[i], n.name); code != "" {
			errs[i] = &chain.RuleError{Code: chain.ErrorCode(code), Message: msg}
			c.refused[code]++
		}
	}
	return ids, errs
}

// top is the end of a's contiguous run of pooled nonces. c.mu is held.
func (c *loadChain) top(a chain.Address) uint64 {
	n := c.accounts[a].Nonce
	for {
		if _, ok := c.pool[a][n+1]; !ok {
			return n
		}
		n++
	}
}

// admit pools tx or says why not. c.mu is held.
func (c *loadChain) admit(tx *chain.Transaction, id chain.Hash, server string) (code, msg string) {
	if err := tx.Validate(c.g.ChainID); err != nil {
		return string(chain.CodeOf(err)), err.Error()
	}
	if c.via[tx.From] == nil {
		c.via[tx.From] = map[string]bool{}
	}
	c.via[tx.From][server] = true
	acc := c.accounts[tx.From]
	top := c.top(tx.From)
	switch {
	case tx.Nonce <= acc.Nonce:
		return "bad_nonce", fmt.Sprintf("nonce %d already used", tx.Nonce)
	case c.pool[tx.From][tx.Nonce].Type != "":
		return "nonce_in_use", fmt.Sprintf("nonce %d is pooled", tx.Nonce)
	case !c.gaps && tx.Nonce != top+1, c.gaps && tx.Nonce > top+65:
		return "nonce_gap", fmt.Sprintf("nonce %d after %d", tx.Nonce, top)
	}
	tries := c.tries[id]
	c.tries[id]++
	if c.refuse != nil {
		if code := c.refuse(tx, tries); code != "" {
			return code, "refused by the test"
		}
	}
	var debit uint64
	for _, p := range c.pool[tx.From] {
		if p.Type == chain.TxTransfer {
			debit += p.Amount + p.Fee
		}
	}
	if tx.Type == chain.TxTransfer && debit+tx.Amount+tx.Fee > acc.Balance {
		return "insufficient_funds", fmt.Sprintf("balance %d, pending %d", acc.Balance, debit)
	}
	if c.pool[tx.From] == nil {
		c.pool[tx.From] = map[uint64]chain.Transaction{}
	}
	c.pool[tx.From][tx.Nonce] = *tx
	if tx.Type == chain.TxTransfer {
		c.accepted++
	}
	return "", ""
}

// forge puts every executable pooled transaction into a new block. c.mu
// is held.
func (c *loadChain) forge() {
	var txs []chain.Transaction
	for _, a := range slices.Sorted(maps.Keys(c.pool)) {
		for n := c.accounts[a].Nonce + 1; ; n++ {
			tx, ok := c.pool[a][n]
			if !ok {
				break
			}
			delete(c.pool[a], n)
			txs = append(txs, tx)
			from, to := c.accounts[tx.From], c.accounts[tx.To]
			if tx.Type == chain.TxTransfer {
				from.Balance -= tx.Amount + tx.Fee
			}
			from.Nonce = tx.Nonce
			c.accounts[tx.From] = from
			if tx.From == tx.To {
				to = from
			}
			to.Balance += tx.Amount
			c.accounts[tx.To] = to
		}
	}
	if len(txs) == 0 {
		return
	}
	head := &c.blocks[len(c.blocks)-1].Header
	c.blocks = append(c.blocks, *chain.NewBlock(chain.DefaultGenesis(), head, 0, head.Timestamp+1000, txs))
}

// transfersInBlocks counts the TRANSFERs in the chain and the blocks
// holding some.
func (c *loadChain) transfersInBlocks() (txs, blocks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.blocks {
		n := 0
		for _, tx := range b.Transactions {
			if tx.Type == chain.TxTransfer {
				n++
			}
		}
		txs += n
		if n > 0 {
			blocks++
		}
	}
	return txs, blocks
}

// runLoad runs `poscli load args... -o json` on node with a fast poll and
// returns the report and the command's error.
func runLoad(t *testing.T, node string, args ...string) (loadJSON, *testEnv, error) {
	t.Helper()
	return runLoadWith(t, node, nil, args...)
}

// runLoadWith is runLoad with edit applied to the options.
func runLoadWith(t *testing.T, node string, edit func(*LoadOptions), args ...string) (loadJSON, *testEnv, error) {
	t.Helper()
	e := newTestEnv(t, node)
	e.f.Globals.Output = "json"
	cmd := NewCmdLoad(e.f, func(o *LoadOptions) error {
		o.PollInterval = 5 * time.Millisecond
		if edit != nil {
			edit(o)
		}
		return loadRun(o)
	})
	err := e.run(cmd, args...)
	var r loadJSON
	if out := e.out.String(); out != "" {
		checkJSON(t, out)
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
			t.Fatalf("%v\n%s", jerr, out)
		}
	}
	return r, e, err
}

func checkLatency(t *testing.T, r loadJSON) {
	t.Helper()
	l := r.LatencyMs
	if !(l.P50 > 0 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if r.DurationS <= 0 || r.SubmitDurationS <= 0 || r.SubmittedTxPerS <= 0 || r.CommittedTxPerS <= 0 {
		t.Errorf("durations and rates: %+v", r)
	}
}

// TestLoadAgainstFakeNode: the node pushes back, with 503 busy and
// Retry-After on whole requests and pool_full on transfers (the nonces
// after one in the same batch then leave a gap); load sends them again
// until each is taken once, so every signed transfer commits.
func TestLoadAgainstFakeNode(t *testing.T) {
	c := newLoadChain(t)
	// The first time each transfer with nonce ≡ 3 (mod 7) comes, the pool
	// is "full".
	c.refuse = func(tx *chain.Transaction, tries int) string {
		if tx.Type == chain.TxTransfer && tx.Nonce%7 == 3 && tries == 0 {
			return "pool_full"
		}
		return ""
	}
	c.busy = func(n int) bool { return n == 2 || n == 3 || n == 7 } // after the funding
	url := c.serve("one")
	r, e, err := runLoadWith(t, url, func(o *LoadOptions) { o.MaxBackoff = 5 * time.Millisecond },
		"--senders", "6", "--txs", "300", "--batch", "25", "--concurrency", "3")
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, e.errOut.String())
	}
	inBlocks, blocks := c.transfersInBlocks()
	c.mu.Lock()
	refused, accepted := maps.Clone(c.refused), c.accepted
	c.mu.Unlock()
	t.Logf("report: %+v", r)
	if r.Committed != inBlocks || r.Blocks != blocks {
		t.Errorf("report: %d committed in %d blocks; the chain holds %d transfers in %d blocks", r.Committed, r.Blocks, inBlocks, blocks)
	}
	if r.Submitted != accepted || r.Committed != accepted || r.Stranded != 0 {
		t.Errorf("report: submitted %d, committed %d, stranded %d; the pool accepted %d", r.Submitted, r.Committed, r.Stranded, accepted)
	}
	// Pushed back: pool_full, and nonce_gap behind it, and three busy
	// requests of 25; none of it in rejected.
	if refused["pool_full"] == 0 || refused["nonce_gap"] == 0 || r.Deferred != refused["pool_full"]+refused["nonce_gap"]+3*25 {
		t.Errorf("report deferred %d, the pool refused %v", r.Deferred, refused)
	}
	if len(r.Rejected) != 0 {
		t.Errorf("report rejected %v, want none", r.Rejected)
	}
	if r.Submitted != 300 || r.Committed != 300 || accepted != 300 || r.Txs != 300 || r.Senders != 6 || !slices.Equal(r.Nodes, []string{url}) {
		t.Errorf("report %+v", r)
	}
	c.mu.Lock()
	for id, k := range c.tries {
		if k > 3 {
			t.Errorf("transaction %s taken after %d tries", id, k)
		}
	}
	c.mu.Unlock()
	checkLatency(t, r)
	if e.errOut.String() != "" {
		t.Errorf("stderr not a terminal, yet: %q", e.errOut.String())
	}
}

func TestLoadSpreadsSendersOverNodes(t *testing.T) {
	c := newLoadChain(t)
	a, b := c.serve("a"), c.serve("b")
	r, e, err := runLoad(t, "http://127.0.0.1:1", "--senders", "5", "--txs", "200", "--batch", "30", "--concurrency", "2", "--nodes", a+","+b)
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, e.errOut.String())
	}
	if r.Committed != 200 || r.Submitted != 200 || len(r.Rejected) != 0 || !slices.Equal(r.Nodes, []string{a, b}) {
		t.Errorf("report %+v", r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	used := map[string]int{}
	for addr, servers := range c.via {
		if len(servers) != 1 {
			t.Errorf("sender %s posted to %v, want one node", addr, servers)
		}
		for s := range servers {
			used[s]++
		}
	}
	if used["a"] != 3 || used["b"] != 2 {
		t.Errorf("senders per node: %v, want a 3, b 2", used)
	}
}

func TestLoadStranded(t *testing.T) {
	// Nonce 4 (each sender's third transfer) is always refused, the nonces
	// after it get in (the pool allows gaps), but can never commit.
	c := newLoadChain(t)
	c.gaps = true
	c.refuse = func(tx *chain.Transaction, tries int) string {
		if tx.Type == chain.TxTransfer && tx.Nonce == 4 {
			return "insufficient_funds"
		}
		return ""
	}
	r, e, err := runLoad(t, c.serve("one"), "--senders", "2", "--txs", "20", "--batch", "5", "--concurrency", "1")
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, e.errOut.String())
	}
	inBlocks, _ := c.transfersInBlocks()
	if r.Committed != 4 || inBlocks != 4 || r.Stranded != r.Submitted-4 || r.Stranded == 0 || r.Submitted+r.Rejected["insufficient_funds"] != 20 {
		t.Errorf("report %+v, %d in blocks", r, inBlocks)
	}
}

func TestLoadTable(t *testing.T) {
	c := newLoadChain(t)
	url := c.serve("one")
	e := newTestEnv(t, url)
	cmd := NewCmdLoad(e.f, func(o *LoadOptions) error { o.PollInterval = 5 * time.Millisecond; return loadRun(o) })
	if err := e.run(cmd, "--senders", "2", "--txs", "10", "--batch", "4"); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{
		"node       " + url + "\n",
		"senders    2, funded with EXCHANGE\n",
		"transfers  10 in batches of 4, 4 requests at a time\n",
		"submitted  10 accepted in ",
		"rejected   none\n",
		"committed  10 in ",
		"latency    p50 ",
		"(batch sent → block seen on " + url + ")\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	closed := newLoadChain(t)
	closed.g.Exchange = chain.ExchangePolicy{Authorities: []chain.Address{alice}}
	closedURL := closed.serve("closed")
	open := newLoadChain(t)
	openURL := open.serve("open")
	other := newLoadChain(t)
	other.g.ChainID = "posd-other"
	otherURL := other.serve("other")
	for _, tc := range []struct {
		node string
		args []string
		want string
	}{
		{openURL, []string{"--senders", "0"}, "--senders must be at least 1, got 0"},
		{openURL, []string{"--txs", "0"}, "--txs must be at least 1, got 0"},
		{openURL, []string{"--senders", "5", "--txs", "3"}, "--senders 5 is more than --txs 3: every sender sends at least one transfer"},
		{openURL, []string{"--concurrency", "0"}, "--concurrency must be at least 1, got 0"},
		{openURL, []string{"--batch", "0"}, "--batch must be at least 1, got 0"},
		{openURL, []string{"--timeout-commit", "0s"}, "--timeout-commit must be positive, got 0s"},
		{openURL, []string{"--rate", "-5"}, "--rate must be 0 (no pacing) or 0.01 to 1e+09 transfers per second, got -5"},
		{openURL, []string{"--batch", "1001"}, "--batch 1001 is more than network posd-test takes in one request (max_block_txs 1000)"},
		{closedURL, nil, `load funds its senders with EXCHANGE, but network posd-test lets only its 1 genesis authorities EXCHANGE: use a network whose genesis has "exchange": "open" (posd's default)`},
		{openURL, []string{"--nodes", openURL + "," + otherURL}, fmt.Sprintf("--nodes: %s is on chain posd-test (genesis %s) but %s on chain posd-other (genesis %s): give the nodes of one network",
			openURL, shortHash(open.g.Hash()), otherURL, shortHash(other.g.Hash()))},
		{"http://127.0.0.1:1", nil, "node not reachable at http://127.0.0.1:1 — is posd running? (connection refused; set --node or POSCLI_NODE to use another node)"},
	} {
		e := newTestEnv(t, tc.node)
		if code := e.main(append([]string{"--node", tc.node, "load"}, tc.args...)...); code != 1 {
			t.Errorf("%q: exit %d", tc.args, code)
		}
		if got, want := e.errOut.String(), "error: "+tc.want+"\n"; got != want {
			t.Errorf("%q\n got %q\nwant %q", tc.args, got, want)
		}
	}
}

// TestLoadRealNode runs load against a real node in this process and
// counts the load's transfers in the node's blocks.
func TestLoadRealNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := daemon.StartDevnet(ctx, daemon.DevnetConfig{
		Home: t.TempDir(), Nodes: 1, Host: "127.0.0.1", Genesis: daemon.DefaultGenesisParams(),
		NodeConfig: func(i int, c *daemon.Config) {
			c.APIPort, c.P2PPort = 0, 0
			c.BlockInterval = 20 * time.Millisecond
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	url := d.Nodes[0].APIURL()

	r, e, err := runLoad(t, url, "--senders", "4", "--txs", "400", "--batch", "50")
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, e.errOut.String())
	}
	t.Logf("report: %+v", r)

	// Every block: the load's senders are those that made an EXCHANGE (the
	// node's own key was funded in the genesis).
	c := client.New(url)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []chain.Block
	for from := uint64(0); from <= st.Height; from += 1000 {
		page, err := c.Blocks(ctx, &from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, page...)
	}
	senders := map[chain.Address]bool{}
	for _, b := range blocks {
		for _, tx := range b.Transactions {
			if tx.Type == chain.TxExchange {
				senders[tx.From] = true
			}
		}
	}
	transfers, withTransfers := 0, 0
	for _, b := range blocks {
		n := 0
		for _, tx := range b.Transactions {
			if tx.Type == chain.TxTransfer && senders[tx.From] {
				n++
			}
		}
		transfers += n
		if n > 0 {
			withTransfers++
		}
	}
	if len(senders) != 4 || transfers != 400 || r.Committed != transfers || r.Submitted != 400 || r.Blocks != withTransfers || len(r.Rejected) != 0 {
		t.Errorf("%d senders and %d load transfers in %d blocks; report %+v", len(senders), transfers, withTransfers, r)
	}
	checkLatency(t, r)
}

// roomEvictions counts a node's log records of a pooled transaction
// evicted to make room for another (mempool: "... made room for ...").
type roomEvictions struct{ n atomic.Int64 }

func (h *roomEvictions) Enabled(context.Context, slog.Level) bool { return true }
func (h *roomEvictions) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *roomEvictions) WithGroup(string) slog.Handler            { return h }
func (h *roomEvictions) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "transaction evicted from the pool" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "reason" && strings.Contains(a.Value.String(), "made room") {
			h.n.Add(1)
		}
		return true
	})
	return nil
}

// TestLoadRealNodeResendsEvicted: a real node whose pool is far too small
// for the load (40 transactions, forging every 300 ms) evicts transfers
// it had accepted to make room for other senders'; the senders' next
// nonces are refused for the gap, and load sends the lost transfers
// again, so every transfer commits.
func TestLoadRealNodeResendsEvicted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := &roomEvictions{}
	d, err := daemon.StartDevnet(ctx, daemon.DevnetConfig{
		Home: t.TempDir(), Nodes: 1, Host: "127.0.0.1", Genesis: daemon.DefaultGenesisParams(), Logger: slog.New(ev),
		NodeConfig: func(i int, c *daemon.Config) {
			c.APIPort, c.P2PPort = 0, 0
			c.PoolLimit, c.BlockSize, c.BlockInterval = 40, 1000, 300*time.Millisecond
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const txs = 480
	r, e, err := runLoadWith(t, d.Nodes[0].APIURL(), func(o *LoadOptions) { o.MaxBackoff = 50 * time.Millisecond },
		"--senders", "4", "--txs", fmt.Sprint(txs), "--batch", "30", "--concurrency", "4", "--timeout-commit", "20s")
	t.Logf("report: %+v; %d evictions to make room", r, ev.n.Load())
	if err != nil {
		t.Fatalf("%v (stderr %q)", err, e.errOut.String())
	}
	if ev.n.Load() == 0 {
		t.Fatal("the node evicted nothing to make room: nothing was tested")
	}
	if r.Committed != txs || r.Submitted != txs || r.Missing() != 0 || r.Stranded != 0 || len(r.Rejected) != 0 || r.Resent == 0 {
		t.Errorf("report %+v", r)
	}
}

// TestLoadGivesUpOnPushback: a node whose pool never drains (pool_full
// for ever) ends the load after --timeout-commit with one clear error,
// not a retry loop for ever.
func TestLoadGivesUpOnPushback(t *testing.T) {
	c := newLoadChain(t)
	c.refuse = func(tx *chain.Transaction, tries int) string {
		if tx.Type == chain.TxTransfer {
			return "pool_full"
		}
		return ""
	}
	url := c.serve("one")
	start := time.Now()
	_, e, err := runLoadWith(t, url, func(o *LoadOptions) { o.MaxBackoff = 10 * time.Millisecond },
		"--senders", "2", "--txs", "10", "--batch", "5", "--timeout-commit", "300ms")
	if err == nil || !strings.Contains(err.Error(), url+" took no transfer for ") || !strings.Contains(err.Error(), "answered pool_full") {
		t.Fatalf("err %v (stderr %q)", err, e.errOut.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s", took)
	}
	if accepted := func() int { c.mu.Lock(); defer c.mu.Unlock(); return c.accepted }(); accepted != 0 {
		t.Errorf("the pool took %d", accepted)
	}
}
