package daemon

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/internal/tune"
	"github.com/poslab/posd/keystore"
)

// diskFull fails every commit while on: a full or broken disk.
type diskFull struct {
	chainmgr.Store
	mu sync.Mutex
	on bool
}

func (d *diskFull) set(on bool) { d.mu.Lock(); d.on = on; d.mu.Unlock() }

func (d *diskFull) Switch(revert int, blocks []*chain.Block, undos []*chain.Undo, st *chain.State) error {
	d.mu.Lock()
	on := d.on
	d.mu.Unlock()
	if on {
		return errors.New("write chain.db: no space left on device")
	}
	return d.Store.Switch(revert, blocks, undos, st)
}

// TestDiskFailureDoesNotPenaliseTheSender: a block that fails to commit
// because of our disk is ignored by gossip and sync (not forwarded, the
// sender not penalised); a block that breaks a rule is rejected.
func TestDiskFailureDoesNotPenaliseTheSender(t *testing.T) {
	var disk *diskFull
	n := startTestNode(t, func(c *Config) {
		c.BlockInterval = time.Hour
		c.BlockSize = 1000
		c.wrapStore = func(s chainmgr.Store) chainmgr.Store { disk = &diskFull{Store: s}; return disk }
	})
	h := n.p2pHandler()
	genesis := n.API().Head()
	b := chain.NewBlock(n.g, &genesis.Header, 0, genesis.Timestamp+1, nil)
	n.key.SignHeader(&b.Header)
	disk.set(true)
	for name, err := range map[string]error{"gossip": h.HandleBlock(b), "sync": second(h.HandleBlocks([]*chain.Block{b}))} {
		if !errors.Is(err, p2p.ErrIgnore) {
			t.Fatalf("%s: disk failure reported as %v; want ErrIgnore (not the sender's fault)", name, err)
		}
	}
	if n.API().Height() != 0 {
		t.Fatal("the head moved")
	}
	// Halted is not the sender's fault either.
	disk.set(false)
	stranger, _ := keystore.Generate()
	bad := chain.NewBlock(n.g, &genesis.Header, 0, genesis.Timestamp+1, nil)
	stranger.SignHeader(&bad.Header)
	if err := h.HandleBlock(bad); err == nil || errors.Is(err, p2p.ErrIgnore) {
		t.Fatalf("a block from an unelected forger: %v, want a rejection", err)
	}
	if err := h.HandleBlock(b); err != nil {
		t.Fatalf("the good block once the disk is back: %v", err)
	}
	haltNode(n, errors.New("state lost"))
	next := chain.NewBlock(n.g, &b.Header, 0, b.Timestamp+1, nil)
	n.key.SignHeader(&next.Header)
	if err := h.HandleBlock(next); !errors.Is(err, p2p.ErrIgnore) {
		t.Fatalf("halted node: %v, want ErrIgnore", err)
	}
}

func second[A, B any](_ A, b B) B { return b }

// loadResult is what a read load measured while blocks were imported.
type loadResult struct {
	reads   []time.Duration // every read's latency
	imports []time.Duration // every block's import time
	inside  int             // blocks during whose import a whole read began and ended
}

// readsUnderImport starts 8 goroutines reading /v1/status, /v1/accounts
// and /v1/stakes in a loop over HTTP, imports blocks one by one, then
// stops the readers.
func readsUnderImport(t testing.TB, n *Node, blocks []*chain.Block) loadResult {
	type span struct{ start, end time.Time }
	var (
		mu    sync.Mutex
		reads []span
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	paths := []string{"/v1/status", "/v1/accounts", "/v1/stakes"}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for g := range 8 {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				resp, err := hc.Get(n.APIURL() + paths[i%len(paths)])
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				end := time.Now()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s", paths[i%len(paths)], resp.Status)
					return
				}
				mu.Lock()
				reads = append(reads, span{start, end})
				mu.Unlock()
			}
		})
	}
	// Let every reader get going before the first import.
	waitUntil(t, 30*time.Second, "readers started", func() bool { mu.Lock(); defer mu.Unlock(); return len(reads) >= 16 })
	var res loadResult
	var windows []span
	for _, b := range blocks {
		start := time.Now()
		if err := n.chain.ProcessBlock(b); err != nil {
			t.Errorf("import block %d: %v", b.Height, err)
			break
		}
		end := time.Now()
		res.imports = append(res.imports, end.Sub(start))
		windows = append(windows, span{start, end})
	}
	close(stop)
	wg.Wait()
	for _, w := range windows {
		for _, r := range reads {
			if !r.start.Before(w.start) && !r.end.After(w.end) {
				res.inside++
				break
			}
		}
	}
	for _, r := range reads {
		res.reads = append(res.reads, r.end.Sub(r.start))
	}
	return res
}

// loadBlocks builds count blocks of perBlock transfers among senders funded
// in the node's genesis (signing on every core).
func loadBlocks(t testing.TB, n *Node, keys []*keystore.Key, count, perBlock int) []*chain.Block {
	next := make([]uint64, len(keys))
	parent := n.API().Head().Header
	var out []*chain.Block
	for range count {
		txs := make([]chain.Transaction, perBlock)
		for i := range txs {
			s := i % len(keys)
			next[s]++
			txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: n.g.ChainID, To: keys[(s+1)%len(keys)].Address(), Amount: 1, Nonce: next[s]}
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < len(txs); i += 4 {
					keys[i%len(keys)].SignTx(&txs[i])
				}
			})
		}
		wg.Wait()
		b := chain.NewBlock(n.g, &parent, 0, parent.Timestamp+1, txs)
		n.key.SignHeader(&b.Header)
		out = append(out, b)
		parent = b.Header
	}
	return out
}

func percentileDur(xs []time.Duration, p float64) time.Duration {
	s := slices.Clone(xs)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestReadsDoNotWaitForImports: API reads are served from the last
// committed snapshot and never wait for the importers' lock. An import of
// 100 transfers is held in the middle of its commit, under that lock (its
// state already applied), for as long as the test likes: /v1/status,
// /v1/accounts, /v1/accounts/{address} and /v1/stakes must all answer
// meanwhile, from the chain before the block; released, the import
// completes. A read that waited for the lock would wait until the import
// ends, which the test never allows while it reads, so it fails at once
// whatever the machine's load, and no margin is tuned to the machine.
// BenchmarkReadLatencyUnderImport measures the latencies under load.
func TestReadsDoNotWaitForImports(t *testing.T) {
	disk := &stuckDisk{entered: make(chan struct{}, 1), release: make(chan struct{})}
	n, keys := loadNode(t, 10, func(c *Config) {
		c.wrapStore = func(s chainmgr.Store) chainmgr.Store { disk.Store = s; return disk }
	})
	var release sync.Once
	// Runs before the node's Close: a failing test must not leave the
	// import stuck under the lock.
	t.Cleanup(func() { release.Do(func() { close(disk.release) }) })
	b := loadBlocks(t, n, keys, 1, 100)[0]
	done := make(chan error, 1)
	go func() { done <- n.chain.ProcessBlock(b) }()
	select {
	case <-disk.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the import never reached its commit")
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, out any) {
		t.Helper()
		resp, err := hc.Get(n.APIURL() + path)
		if err != nil {
			t.Fatalf("GET %s while an import holds the lock: %v (reads wait for imports)", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if out == nil {
			out = new(any)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	sender := keys[0].Address()
	for range 3 {
		var st rpc.Status
		get("/v1/status", &st)
		if st.Height != 0 {
			t.Fatalf("status shows height %d while block 1 is not committed", st.Height)
		}
		var acct rpc.Account
		get("/v1/accounts/"+string(sender), &acct)
		if acct.Nonce != 0 {
			t.Fatalf("account shows nonce %d from a block not committed", acct.Nonce)
		}
		get("/v1/accounts", nil)
		get("/v1/stakes", nil)
	}
	select {
	case err := <-done:
		t.Fatalf("the import ended (%v) while its commit was held: the test proved nothing", err)
	default:
	}

	release.Do(func() { close(disk.release) })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("import: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the import did not end once released")
	}
	var st rpc.Status
	get("/v1/status", &st)
	if st.Height != 1 {
		t.Fatalf("status shows height %d after the import", st.Height)
	}
}

// loadNode is a node whose genesis funds count senders, forging nothing.
func loadNode(t testing.TB, count int, mutate ...func(*Config)) (*Node, []*keystore.Key) {
	keys := make([]*keystore.Key, count)
	var allocs []chain.Allocation
	for i := range keys {
		keys[i], _ = keystore.Generate()
		allocs = append(allocs, chain.Allocation{Address: keys[i].Address(), Balance: 1 << 40})
	}
	n := startTestNode(t, append([]func(*Config){func(c *Config) {
		c.Genesis.Allocations = allocs
		c.Genesis.MaxBlockTxs = 10000
		c.BlockInterval = time.Hour
		c.BlockSize = 10000
	}}, mutate...)...)
	return n, keys
}

// BenchmarkReadLatencyUnderImport reports the latency of API reads (8
// readers on /v1/status, /v1/accounts, /v1/stakes; 1000 accounts) while
// blocks of 10,000 transfers are imported, one per iteration.
func BenchmarkReadLatencyUnderImport(b *testing.B) {
	b.Cleanup(tune.Runtime()) // as posd runs
	n, keys := loadNode(b, 1000)
	blocks := loadBlocks(b, n, keys, b.N, 10000)
	b.ResetTimer()
	res := readsUnderImport(b, n, blocks)
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentileDur(res.reads, 0.50)), "read-p50-ms")
	b.ReportMetric(ms(percentileDur(res.reads, 0.99)), "read-p99-ms")
	b.ReportMetric(ms(percentileDur(res.imports, 0.50)), "import-ms/block")
	b.ReportMetric(float64(len(res.reads))/b.Elapsed().Seconds(), "reads/s")
}

// stuckDisk blocks every commit until released: an import that never ends.
type stuckDisk struct {
	chainmgr.Store
	entered chan struct{}
	release chan struct{}
}

func (d *stuckDisk) Switch(revert int, blocks []*chain.Block, undos []*chain.Undo, st *chain.State) error {
	select {
	case d.entered <- struct{}{}:
	default:
	}
	<-d.release
	return d.Store.Switch(revert, blocks, undos, st)
}

// TestShutdownWithinFiveSeconds: Close returns within its bound while an
// import is stuck in the middle of its commit.
func TestShutdownWithinFiveSeconds(t *testing.T) {
	disk := &stuckDisk{entered: make(chan struct{}, 1), release: make(chan struct{})}
	n := startTestNode(t, func(c *Config) {
		c.BlockInterval = time.Hour
		c.BlockSize = 1000
		c.wrapStore = func(s chainmgr.Store) chainmgr.Store { disk.Store = s; return disk }
	})
	defer close(disk.release) // let the stuck import end after the test
	genesis := n.API().Head()
	b := chain.NewBlock(n.g, &genesis.Header, 0, genesis.Timestamp+1, nil)
	n.key.SignHeader(&b.Header)
	go n.chain.ProcessBlock(b)
	select {
	case <-disk.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the import never reached its commit")
	}
	start := time.Now()
	n.Close()
	if took := time.Since(start); took > ShutdownTimeout+time.Second {
		t.Fatalf("Close took %v with an import stuck; the bound is %v", took, ShutdownTimeout)
	}
}
