package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// The attacks of the "hold under abuse" review, replayed on a real posd
// process from loopback. They run a posd built without -race, as users run
// it: the race detector multiplies memory and CPU five- to tenfold, which
// would measure the detector rather than the node.

var (
	plainBinOnce sync.Once
	plainBin     string
	plainBinErr  error
)

// startPlainPosd is startPosd with a binary built without -race.
func startPlainPosd(t *testing.T, home string, apiPort int, args ...string) *proc {
	t.Helper()
	plainBinOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(posdBin), "posd-plain")
		out, err := exec.Command("go", "build", "-o", plainBin, ".").CombinedOutput()
		if err != nil {
			plainBinErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if plainBinErr != nil {
		t.Fatalf("building posd without -race: %v", plainBinErr)
	}
	all := append([]string{"start", "--home", home, "--api-port", fmt.Sprint(apiPort), "--p2p-port", fmt.Sprint(freePort(t)), "--mdns=false"}, args...)
	return runProc(t, exec.Command(plainBin, all...), home, fmt.Sprintf("http://127.0.0.1:%d", apiPort))
}

// rssMB is the resident set of process pid in MB (Linux).
func rssMB(t testing.TB, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb >> 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// openFDs counts the file descriptors of pid.
func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// healthWatch polls /healthz every 50 ms until stop and records the
// slowest answer and any failure.
type healthWatch struct {
	mu      sync.Mutex
	slowest time.Duration
	fails   []string
	polls   int
	slowAt  time.Time
	slow    []string
	stop    chan struct{}
	done    chan struct{}
}

func watchHealth(url string) *healthWatch {
	h := &healthWatch{stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(h.done)
		for {
			select {
			case <-h.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			resp, err := hc.Get(url + "/healthz")
			d := time.Since(start)
			h.mu.Lock()
			h.polls++
			if d > h.slowest {
				h.slowAt = time.Now()
			}
			h.slowest = max(h.slowest, d)
			if d > 300*time.Millisecond {
				h.slow = append(h.slow, fmt.Sprintf("%s at %s", d.Round(time.Millisecond), start.Format("15:04:05.000")))
			}
			if err != nil {
				h.fails = append(h.fails, err.Error())
			} else {
				if resp.StatusCode != 200 {
					h.fails = append(h.fails, resp.Status)
				}
				resp.Body.Close()
			}
			h.mu.Unlock()
		}
	}()
	return h
}

// check stops the watch and fails the test if health ever failed or took
// a second or more.
func (h *healthWatch) check(t *testing.T) {
	t.Helper()
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("healthz: %d polls, slowest %s at %s; over 300 ms: %v", h.polls, h.slowest, h.slowAt.Format("15:04:05.000"), h.slow)
	if len(h.fails) > 0 {
		t.Fatalf("healthz failed %d times: %v", len(h.fails), h.fails[:min(5, len(h.fails))])
	}
	if h.slowest >= time.Second {
		t.Fatalf("healthz took %s", h.slowest)
	}
}

// rawRequest opens a connection with a tiny receive buffer, sends a GET and
// never reads the answer: the client of A1, A2 and A8.
func rawRequest(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
	return c
}

// exchanges signs n EXCHANGE transactions from fresh keys (nonce 1 each).
func exchanges(chainID string, n int) []chain.Transaction {
	txs := make([]chain.Transaction, n)
	for i := range txs {
		k, _ := keystore.Generate()
		txs[i] = chain.Transaction{Type: chain.TxExchange, ChainID: chainID, To: k.Address(), Amount: 1, Nonce: 1}
		k.SignTx(&txs[i])
	}
	return txs
}

// TestAbuseStreamsAndLists replays A3, A1 and A2 on one node:
//   - A3: a pool of 6,000 transactions, then 10 clients asking for the
//     pool and for 1000 blocks at once, never reading;
//   - A1: 300 /v1/events clients that never read while those 6,000
//     transactions are forged into blocks of 500 (about 150 kB of JSON
//     each), and one client that reads every event;
//   - A2: 50 clients asking for /blockchain, never reading.
//
// Throughout, /healthz answers within a second and the node's RSS stays
// under 200 MB (the attacks took it to 1.2-8.5 GB before).
func TestAbuseStreamsAndLists(t *testing.T) {
	if testing.Short() {
		t.Skip("abuse test skipped in -short mode")
	}
	const rssBound = 200
	port := freePort(t)
	p := startPlainPosd(t, t.TempDir(), port, "--genesis", "--chain-id", "abuse", "--block-size", "100000", "--block-interval", "1h", "--max-block-txs", "500",
		"--api-page-bytes", "1048576")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pid := p.cmd.Process.Pid
	token := readToken(t, p.home)
	base := rssMB(t, pid)
	t.Logf("RSS at start %d MB", base)
	health := watchHealth(p.url)

	phase := func(what string) { t.Logf("%s: %s", time.Now().Format("15:04:05.000"), what) }
	// Fill the pool: the forger waits for 100,000.
	txs := exchanges("abuse", 6000)
	phase("submitting")
	for i := 0; i < len(txs); i += 500 {
		data, _ := json.Marshal(txs[i : i+500])
		if code, body := p.call("POST", "/v1/txs", data, "", nil); code != 200 {
			t.Fatalf("batch: %d %.200s", code, body)
		}
	}
	waitFor(t, 60*time.Second, "the pool to hold 6000", func() bool { return p.status().Pending == 6000 })

	phase("pool full")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// A3: big answers to clients that do not read.
	for i := 0; i < 10; i++ {
		conns = append(conns, rawRequest(t, addr, "/v1/txs/pending"), rawRequest(t, addr, "/v1/blocks?limit=1000"))
	}
	// A1: one subscriber that reads, then 300 that never do (the cap of
	// 256 streams refuses the last ones).
	resp, err := http.Get(p.url + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for i := 0; i < 300; i++ {
		conns = append(conns, rawRequest(t, addr, "/v1/events"))
	}
	forged := make(chan int, 1)
	go func() {
		br := bufio.NewReaderSize(resp.Body, 1<<20)
		txsSeen := 0
		for txsSeen < 6000 {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var b chain.Block
				if json.Unmarshal([]byte(data), &b) == nil {
					txsSeen += len(b.Transactions)
				}
			}
		}
		forged <- txsSeen
	}()
	time.Sleep(500 * time.Millisecond) // let the subscribers register
	if code, body := p.call("PUT", "/v1/config", map[string]any{"block_size": 1}, token, nil); code != 200 {
		t.Fatalf("config: %d %s", code, body)
	}
	peak := 0
	select {
	case n := <-forged:
		if n != 6000 {
			t.Fatalf("the reading subscriber saw %d of 6000 transactions", n)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the 6000 transactions were not forged in 3 minutes")
	}
	peak = max(peak, rssMB(t, pid))
	phase("forged")

	// A2: 50 clients that ask for the whole chain and never read.
	for i := 0; i < 50; i++ {
		conns = append(conns, rawRequest(t, addr, "/blockchain"))
	}
	for i := 0; i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, rssMB(t, pid))
	}
	health.check(t)
	var m bytes.Buffer
	_, body := p.call("GET", "/metrics", nil, "", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "posd_api_") {
			m.WriteString(line + "; ")
		}
	}
	t.Logf("RSS peak %d MB (start %d MB); %s", peak, base, m.String())
	if peak > rssBound {
		t.Fatalf("RSS reached %d MB, bound %d MB", peak, rssBound)
	}
}

// TestAbuseConnectionFlood replays A8: 1,100 event streams. The node
// serves its stream cap, answers the rest 503 and closes them, keeps its
// file descriptors under the connection cap, and /healthz answers within a
// second throughout.
func TestAbuseConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("abuse test skipped in -short mode")
	}
	port := freePort(t)
	p := startPlainPosd(t, t.TempDir(), port, "--genesis", "--chain-id", "flood", "--api-max-conns", "400", "--api-max-streams", "200")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pid := p.cmd.Process.Pid
	health := watchHealth(p.url)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 1100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		fmt.Fprintf(c, "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		conns = append(conns, c)
	}
	// Every connection hears back: 200 for the first 200, 503 for the rest.
	ok, refused := 0, 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case err != nil:
			t.Fatalf("no answer: %v", err)
		case strings.Contains(line, " 200 "):
			ok++
		case strings.Contains(line, " 503 "):
			refused++
		default:
			t.Fatalf("answer %q", line)
		}
	}
	fds := openFDs(pid)
	time.Sleep(time.Second) // health polls while the streams are held
	health.check(t)
	t.Logf("%d streams, %d refused, %d fds open in posd", ok, refused, fds)
	if ok != 200 || refused != 900 {
		t.Fatalf("%d streams served and %d refused, want 200 and 900", ok, refused)
	}
	if fds > 400+100 {
		t.Fatalf("posd holds %d file descriptors, the cap is 400 connections", fds)
	}
}
