package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
	"github.com/poslab/posd/internal/testutil"
)

// serveLimited runs h behind a real server on a loopback port with the
// connection limiter, as the node does, and returns the base URL.
func serveLimited(t *testing.T, h *server, maxConns int) (string, *ConnLimiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := LimitListener(ln, maxConns)
	h.conns = cl
	srv := NewServerLimits(ln.Addr().String(), h, h.limits)
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), cl
}

func limitedHandler(f *fakeBackend, l Limits) *server {
	return newServer(Options{Backend: f, Token: testToken, Limits: l})
}

// bigBlock is a block of n transactions, about 300 bytes of JSON each.
func bigBlock(height uint64, n int) *chain.Block {
	txs := make([]chain.Transaction, n)
	for i := range txs {
		txs[i] = chain.Transaction{Type: chain.TxExchange, ChainID: testChainID, To: bob, Amount: uint64(i + 1), Nonce: height}
	}
	b := &chain.Block{Header: chain.Header{Height: height, Forger: bob}, Transactions: txs}
	b.TxRoot = chain.TxRoot(txs)
	return b
}

// TestHubEncodesOnceAndShares: every subscriber is handed the very same
// bytes for one block.
func TestHubEncodesOnceAndShares(t *testing.T) {
	f := newFake()
	h := newHub(f, DefaultLimits(), discardLogger())
	a, _ := h.join()
	b, _ := h.join()
	defer h.leave(a)
	defer h.leave(b)
	f.publish(f.blocks[3])
	var ma, mb []byte
	waitLong(t, "the event on both queues", func() bool {
		if ma == nil {
			ma, _ = a.next()
		}
		if mb == nil {
			mb, _ = b.next()
		}
		return ma != nil && mb != nil
	})
	if &ma[0] != &mb[0] {
		t.Fatal("each subscriber got its own encoding of the block")
	}
	if !strings.HasPrefix(string(ma), "event: block\ndata: {") {
		t.Fatalf("message %.40q", ma)
	}
}

// TestHubDropsSlowSubscriber: a subscriber over its byte budget is dropped,
// the others keep everything, and the backend subscription ends with the
// last subscriber.
func TestHubDropsSlowSubscriber(t *testing.T) {
	f := newFake()
	h := newHub(f, Limits{MaxEventStreams: 4, EventBufferBytes: 4 << 10}.withDefaults(), discardLogger())
	slow, _ := h.join()
	fast, _ := h.join()
	got := 0
	for i := 0; i < 40; i++ {
		f.publish(f.blocks[1+i])
		waitLong(t, "the event", func() bool {
			msg, st := fast.next()
			if st != subOpen {
				t.Fatalf("the reading subscriber was dropped (state %d)", st)
			}
			if msg != nil {
				got++
			}
			return got == i+1
		})
	}
	if _, st := slow.next(); st != subDropped {
		t.Fatalf("the subscriber that never read is in state %d, want dropped", st)
	}
	if _, dropped := h.stats(); dropped != 1 {
		t.Fatalf("dropped %d subscribers, want 1", dropped)
	}
	h.leave(slow)
	h.leave(fast)
	waitLong(t, "the backend subscription to end", func() bool { return f.subscribers() == 0 })
}

// A1 on a real server: 60 clients that never read /v1/events while 30
// blocks of about 250 kB are published. The heap stays within a bound that
// does not grow with the subscribers, a reading client gets every block, and
// /healthz answers within a second throughout.
func TestEventsNonReadersBoundedMemory(t *testing.T) {
	f := newFake()
	const budget = 1 << 20
	h := limitedHandler(f, Limits{EventBufferBytes: budget, MaxEventStreams: 100})
	base, _ := serveLimited(t, h, 0)
	addr := strings.TrimPrefix(base, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 60; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A tiny receive window, so the server's writes block soon.
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		conns = append(conns, c)
	}
	reader, err := http.Get(base + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Body.Close()
	waitLong(t, "61 subscribers", func() bool { n, _ := h.hub.stats(); return n == 61 })

	// The reader keeps up as a client does when blocks come a slot apart:
	// the next block is published once it has the previous one.
	progress := make(chan int, 30)
	go func() {
		defer close(progress)
		br := bufio.NewReaderSize(reader.Body, 1<<20)
		n := 0
		for n < 30 {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "event: block") {
				n++
				progress <- n
			}
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	for i := 0; i < 30; i++ {
		f.publish(bigBlock(uint64(2000+i), 800))
		start := time.Now()
		resp, err := http.Get(base + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v", err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("healthz took %s", d)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		select {
		case n, ok := <-progress:
			if !ok || n != i+1 {
				t.Fatalf("the reading client's stream ended after %d blocks", i)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("the reading client did not get block %d", i)
		}
	}
	if _, dropped := h.hub.stats(); dropped < 50 {
		t.Errorf("only %d of the 60 non-readers were dropped", dropped)
	}
	// Encoded once: 30 × ~250 kB = 7.5 MB of events in all. Per-subscriber
	// copies would be 60 × that. Budget, a few blocks in flight, and the
	// fake's own blocks: well under 64 MB above the start.
	const bound = 64 << 20
	t.Logf("heap before %d MB, peak %d MB", before.HeapAlloc>>20, peak>>20)
	if peak > before.HeapAlloc+bound {
		t.Fatalf("heap peaked at %d MB, %d MB above the start; bound %d MB", peak>>20, (peak-before.HeapAlloc)>>20, bound>>20)
	}
}

// A8: the stream cap answers 503 too_many_streams in JSON, and the
// connection cap answers 503 too_many_connections and closes; /healthz
// answers while streams hold their slots.
func TestStreamAndConnectionCaps(t *testing.T) {
	f := newFake()
	h := limitedHandler(f, Limits{MaxEventStreams: 3})
	base, cl := serveLimited(t, h, 8)
	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	streams := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 3; i++ {
		r, err := streams.Get(base + "/v1/events")
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("stream %d: %v", i, err)
		}
		open = append(open, r)
	}
	r := do(t, base, "GET", "/v1/events", "", "")
	if r.status != 503 || !strings.Contains(string(r.body), `"code":"too_many_streams"`) {
		t.Fatalf("4th stream: %d %s", r.status, r.body)
	}
	if r := do(t, base, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz with the streams full: %d", r.status)
	}
	// Hold raw connections up to the cap: the next one is refused at once.
	addr := strings.TrimPrefix(base, "http://")
	var raw []net.Conn
	defer func() {
		for _, c := range raw {
			c.Close()
		}
	}()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	waitLong(t, "the stream connections to count", func() bool { return cl.Open() == 3 })
	for cl.Open() < 8 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, c)
		n := len(raw)
		waitLong(t, "the connection to count", func() bool { return cl.Open() >= 3+n })
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(data), "HTTP/1.1 503") || !strings.Contains(string(data), `"code":"too_many_connections"`) {
		t.Fatalf("over the cap: %q", data)
	}
	if cl.Refused() != 1 {
		t.Fatalf("refused %d", cl.Refused())
	}
	// A health check over the cap is still served, on a reserved slot.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz at the cap: %v %v", resp, err)
	}
	resp.Body.Close()
	// Any other request over the cap is refused.
	if resp, err := hc.Get(base + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("status at the cap: %d", resp.StatusCode)
		}
	}
	// Freeing one slot lets health through again.
	raw[0].Close()
	raw = raw[1:]
	waitLong(t, "a free slot", func() bool { return cl.Open() < 8 })
	if r := do(t, base, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz after a slot freed: %d", r.status)
	}
}

// A2/A3: at most MaxHeavy list answers at once; the next is 503 busy at
// once and /healthz never waits for them.
func TestHeavyRoutesBusy(t *testing.T) {
	f := newFake()
	f.blocksDelay = 300 * time.Millisecond
	h := limitedHandler(f, Limits{MaxHeavy: 1})
	base, _ := serveLimited(t, h, 0)
	done := make(chan reply, 1)
	go func() { done <- do(t, base, "GET", "/v1/blocks?from=0&limit=40", "", "") }()
	waitLong(t, "the slow list to hold the slot", func() bool { return len(h.heavy) == 1 })
	r := do(t, base, "GET", "/v1/txs/pending", "", "")
	if r.status != 503 || !strings.Contains(string(r.body), `"code":"busy"`) {
		t.Fatalf("second list: %d %s", r.status, r.body)
	}
	start := time.Now()
	if r := do(t, base, "GET", "/healthz", "", ""); r.status != 200 || time.Since(start) > time.Second {
		t.Fatalf("healthz: %d after %s", r.status, time.Since(start))
	}
	if r := <-done; r.status != 200 {
		t.Fatalf("the first list: %d", r.status)
	}
}

// A3: pages are cut by bytes, with a cursor that walks the whole list.
func TestPagesByBytes(t *testing.T) {
	f := newFake()
	h := limitedHandler(f, Limits{MaxPageBytes: 8 << 10})
	base, _ := serveLimited(t, h, 0)

	// Blocks: ascending with X-Next-From until the limit.
	var heights []uint64
	from := "0"
	for pages := 0; from != ""; pages++ {
		resp, err := http.Get(base + "/v1/blocks?limit=1000&from=" + from)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) > 8<<10+1024 {
			t.Fatalf("page %d: status %d, %d bytes", pages, resp.StatusCode, len(body))
		}
		var list []chain.Block
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		for _, b := range list {
			heights = append(heights, b.Height)
		}
		from = resp.Header.Get(headerNextFrom)
		if from != "" && from != strconv.FormatUint(heights[len(heights)-1]+1, 10) {
			t.Fatalf("X-Next-From %s after height %d", from, heights[len(heights)-1])
		}
	}
	if len(heights) != testHeight+1 || heights[testHeight] != testHeight {
		t.Fatalf("walked %d blocks, last %d", len(heights), heights[len(heights)-1])
	}
	// Newest: the newest that fit, ascending, ending at the head.
	r := do(t, base, "GET", "/v1/blocks?limit=1000", "", "")
	list := decode[[]chain.Block](t, r.body)
	if len(list) == 0 || len(list) >= 1000 || list[len(list)-1].Height != testHeight || len(r.body) > 8<<10+1024 {
		t.Fatalf("newest page: %d blocks, %d bytes", len(list), len(r.body))
	}
	for i := 1; i < len(list); i++ {
		if list[i].Height != list[i-1].Height+1 {
			t.Fatal("newest page not ascending")
		}
	}

	// Pool: pages of ?limit=N with X-Next-After.
	f.mu.Lock()
	for i := 0; i < 25; i++ {
		f.pool = append(f.pool, testkit.Transfer(testkit.Bob, alice, 1, 0, uint64(i+1)))
	}
	want := len(f.pool)
	f.mu.Unlock()
	seen := map[chain.Hash]bool{}
	after := ""
	for {
		path := "/v1/txs/pending?limit=10"
		if after != "" {
			path += "&after=" + after
		}
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var txs []chain.Transaction
		if err := json.NewDecoder(resp.Body).Decode(&txs); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, tx := range txs {
			seen[tx.ID()] = true
		}
		if after = resp.Header.Get(headerNextAfter); after == "" {
			break
		}
		if after != txs[len(txs)-1].ID().String() {
			t.Fatalf("X-Next-After %s is not the last id of the page", after)
		}
	}
	if len(seen) != want {
		t.Fatalf("paged %d pool transactions, want %d", len(seen), want)
	}
	if r := do(t, base, "GET", "/v1/txs/pending?after=zz", "", ""); r.status != 400 {
		t.Fatalf("bad cursor: %d", r.status)
	}

	// Accounts: limit 1 then after.
	resp, err := http.Get(base + "/v1/accounts?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	next := resp.Header.Get(headerNextAfter)
	if next == "" {
		t.Fatal("no X-Next-After on a cut accounts page")
	}
	r = do(t, base, "GET", "/v1/accounts?after="+next, "", "")
	if accs := decode[[]map[string]any](t, r.body); len(accs) != 1 {
		t.Fatalf("second accounts page: %s", r.body)
	}
}

// A2: /blockchain to a client that never reads ends at its total deadline
// (not pushed forward per write), releasing its slot.
func TestBlockchainTotalDeadline(t *testing.T) {
	f := newFake()
	for i := range f.blocks[1:] {
		b := bigBlock(uint64(i+1), 100)
		b.PrevHash = f.blocks[i].Hash()
		f.blocks[i+1] = b
	}
	h := limitedHandler(f, Limits{BlockchainTimeout: time.Second})
	base, _ := serveLimited(t, h, 0)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c, "GET /blockchain HTTP/1.1\r\nHost: localhost\r\n\r\n")
	start := time.Now()
	waitLong(t, "the answer to start", func() bool { return len(h.heavy) == 1 })
	waitLong(t, "the slot to be released at the deadline", func() bool { return len(h.heavy) == 0 })
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("the answer finished after %s: the client's window did not hold it", d)
	}
}

// H1: a loopback listener refuses foreign Host headers (DNS rebinding).
func TestHostCheck(t *testing.T) {
	h := newServer(Options{Backend: newFake(), CheckHost: true, AllowedHosts: []string{"node.example"}})
	base, _ := serveLimited(t, h, 0)
	for host, want := range map[string]int{
		"127.0.0.1:5001":    200,
		"localhost":         200,
		"LOCALHOST:1":       200,
		"[::1]:5001":        200,
		"node.example:5001": 200,
		"evil.example":      403,
		"evil.example:5001": 403,
		"10.0.0.1":          403,
	} {
		req, _ := http.NewRequest("GET", base+"/v1/status", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
		if want == 403 && !strings.Contains(string(body), `"code":"host_not_allowed"`) {
			t.Errorf("Host %q: body %s", host, body)
		}
	}
}

// F6: /healthz is 503 while the backend reports a fault.
func TestHealthzUnhealthy(t *testing.T) {
	f := &unhealthyBackend{fakeBackend: newFake()}
	srv := newServer(Options{Backend: f})
	base, _ := serveLimited(t, srv, 0)
	if r := do(t, base, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthy: %d", r.status)
	}
	f.set(errors.New("commit block 7: write chain.db: no space left on device"))
	r := do(t, base, "GET", "/healthz", "", "")
	if r.status != 503 || !strings.Contains(string(r.body), `"status":"unhealthy"`) || !strings.Contains(string(r.body), "no space") {
		t.Fatalf("unhealthy: %d %s", r.status, r.body)
	}
	f.set(nil)
	if r := do(t, base, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("recovered: %d", r.status)
	}
}

type unhealthyBackend struct {
	*fakeBackend
	hmu sync.Mutex
	err error
}

func (u *unhealthyBackend) set(err error) {
	u.hmu.Lock()
	u.err = err
	u.hmu.Unlock()
}

func (u *unhealthyBackend) Health() (uint64, error) {
	u.hmu.Lock()
	defer u.hmu.Unlock()
	return u.Height(), u.err
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitLong polls cond with the slack a 2-core CI machine under load needs.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, what, cond)
}

// The original's maps and /v1/stakes are paged too: a page of one entry at a
// time walks every account and staker once.
func TestMapsAndStakesPaged(t *testing.T) {
	f := newFake()
	h := limitedHandler(f, Limits{MaxPageBytes: 10})
	base, _ := serveLimited(t, h, 0)
	for _, path := range []string{"/accounts", "/stakes", "/v1/stakes"} {
		seen := map[string]bool{}
		after := ""
		for pages := 0; pages < 10; pages++ {
			target := path
			if after != "" {
				target += "?after=" + after
			}
			resp, err := http.Get(base + target)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			if path == "/v1/stakes" {
				var list []map[string]any
				json.NewDecoder(resp.Body).Decode(&list)
				for _, e := range list {
					keys = append(keys, e["address"].(string))
				}
			} else {
				var m map[string]uint64
				json.NewDecoder(resp.Body).Decode(&m)
				for k := range m {
					keys = append(keys, k)
				}
			}
			resp.Body.Close()
			if len(keys) != 1 {
				t.Fatalf("%s: page of %d entries, want 1 (one per page at 10 bytes)", target, len(keys))
			}
			if seen[keys[0]] {
				t.Fatalf("%s: %s twice", path, keys[0])
			}
			seen[keys[0]] = true
			if after = resp.Header.Get(headerNextAfter); after == "" {
				break
			}
		}
		if len(seen) != 2 {
			t.Fatalf("%s: walked %d entries, want 2 (alice and bob)", path, len(seen))
		}
	}
}
