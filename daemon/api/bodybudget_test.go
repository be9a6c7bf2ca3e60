package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// gatedBackend holds every SubmitTx until gate closes, so the bodies of
// the requests it serves stay in flight.
type gatedBackend struct {
	*fakeBackend
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedBackend) SubmitTx(tx chain.Transaction) (chain.Hash, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.fakeBackend.SubmitTx(tx)
}

// paddedTx is a valid transaction's JSON padded with spaces to size bytes.
func paddedTx(t *testing.T, size int) []byte {
	t.Helper()
	tx := testkit.Transfer(testkit.Bob, alice, 1, 0, 1)
	data, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	return append(data, bytes.Repeat([]byte(" "), size-len(data))...)
}

// postFrom posts body to url from the local address ip (127.0.0.0/8 is
// all loopback); chunked hides the length.
func postFrom(t *testing.T, ip, url string, body []byte, chunked bool) (int, string, http.Header) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length: sent chunked
	}
	req, err := http.NewRequestWithContext(context.Background(), "POST", url+"/v1/txs", r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		// The node may close the connection before the body is sent: a
		// refusal read after a reset shows as an error here.
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), resp.Header
}

// TestBodyBudget: request bodies in flight never exceed the budget, in
// all and per client IP; a request over it is answered 503 busy with a
// Retry-After before its body is read (declared length) or as soon as it
// would pass the budget (chunked), and the client reads that answer (the
// rest of the body is drained, not cut off with a reset); what was taken
// is given back once the request is answered; /healthz answers
// throughout; and the memory the refused bodies would have taken is never
// held.
func TestBodyBudget(t *testing.T) {
	const size = 256 << 10
	g := &gatedBackend{fakeBackend: newFake(), gate: make(chan struct{}), entered: make(chan struct{}, 64)}
	h := newServer(Options{Backend: g, Token: testToken, MaxBodyBytes: 8 << 20,
		Limits: Limits{MaxBodiesInFlight: 4 * size, MaxBodiesPerClient: 2 * size}})
	base, _ := serveLimited(t, h, 0)
	body := paddedTx(t, size)

	type result struct {
		status int
		body   string
		hdr    http.Header
	}
	results := make(chan result, 16)
	post := func(ip string, chunked bool) {
		s, b, hdr := postFrom(t, ip, base, body, chunked)
		results <- result{s, b, hdr}
	}
	busy := func(what string, r result) {
		t.Helper()
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `"code":"busy"`) || r.hdr.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %q %v, want 503 busy with Retry-After", what, r.status, r.body, r.hdr)
		}
	}
	// Two bodies from one client fill its share; they wait in SubmitTx.
	var held sync.WaitGroup
	for range 2 {
		held.Go(func() { post("127.0.0.1", false) })
		<-g.entered
	}
	// A third from the same client is refused at once, a fourth too when
	// sent chunked (its length unknown, it is refused on the first chunk).
	post("127.0.0.1", false)
	busy("third body of one client", <-results)
	post("127.0.0.1", true)
	busy("chunked body over the client's share", <-results)
	// Another client gets the rest of the total, then is refused too.
	held.Go(func() { post("127.0.0.2", true) })
	<-g.entered
	held.Go(func() { post("127.0.0.3", false) })
	<-g.entered
	post("127.0.0.4", false)
	busy("a body over the total", <-results)
	if used, clients, _ := h.bodies.inUse(); used > 4*size || clients != 3 {
		t.Fatalf("in flight: %d bytes for %d clients, want at most %d for 3", used, clients, 4*size)
	}
	// A large body refused is drained, not cut off: its client reads the
	// 503 (and can back off) rather than a connection reset.
	big := paddedTx(t, 4<<20)
	for i := range 6 {
		s, b, hdr := postFrom(t, "127.0.0.6", base, big, i%2 == 1)
		busy("a 4 MiB body over the budget", result{s, b, hdr})
	}
	start := time.Now()
	if r := do(t, base, "GET", "/healthz", "", ""); r.status != 200 || time.Since(start) > time.Second {
		t.Fatalf("healthz with the budget full: %d after %s", r.status, time.Since(start))
	}

	// A flood of refused bodies costs no memory: 200 more requests of
	// 256 KiB (50 MiB) while the budget is full.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var flood sync.WaitGroup
	var refused sync.Map
	for i := range 200 {
		flood.Go(func() {
			s, b, _ := postFrom(t, "127.0.0.5", base, body, i%2 == 0)
			if s != 0 && (s != http.StatusServiceUnavailable || !strings.Contains(b, `"busy"`)) {
				t.Errorf("flood request: %d %s", s, b)
			}
			refused.Store(i, s)
		})
	}
	flood.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 16<<20 {
		t.Fatalf("heap in use grew by %d MiB during a flood of refused bodies", grown>>20)
	}
	if _, _, peak := h.bodies.inUse(); peak > 4*size {
		t.Fatalf("peak bodies in flight %d, budget %d", peak, 4*size)
	}

	// Answered: the budget is whole again and a body is taken.
	close(g.gate)
	held.Wait()
	close(results)
	for r := range results {
		// The same transaction four times: the first pooled, the rest known.
		if r.status != http.StatusAccepted && !strings.Contains(r.body, "already_known") {
			t.Fatalf("a body within the budget: %d %s", r.status, r.body)
		}
	}
	if used, clients, _ := h.bodies.inUse(); used != 0 || clients != 0 {
		t.Fatalf("after the answers: %d bytes of %d clients still in flight", used, clients)
	}
	g.entered = make(chan struct{}, 1)
	if s, b, _ := postFrom(t, "127.0.0.1", base, body, true); s != http.StatusConflict {
		t.Fatalf("after the flood: %d %s", s, b)
	}
}

// TestBodyBudgetAccounting: the budget's sums, per client and in all.
func TestBodyBudgetAccounting(t *testing.T) {
	b := newBodyBudget(100, 60)
	steps := []struct {
		host    string
		n       int64
		acquire bool
		ok      bool
	}{
		{"a", 60, true, true},
		{"a", 1, true, false},  // a's share
		{"b", 41, true, false}, // the total
		{"b", 40, true, true},
		{"a", 30, false, true},
		{"a", 30, true, true},
		{"c", 1, true, false},
		{"a", 60, false, true},
		{"b", 40, false, true},
	}
	for i, s := range steps {
		if s.acquire {
			if got := b.acquire(s.host, s.n); got != s.ok {
				t.Fatalf("step %d: acquire(%s, %d) = %v", i, s.host, s.n, got)
			}
			continue
		}
		b.release(s.host, s.n)
	}
	if used, clients, peak := b.inUse(); used != 0 || clients != 0 || peak != 100 {
		t.Fatalf("used %d clients %d peak %d, want 0 0 100", used, clients, peak)
	}
}

// TestIdleDeclaredBodiesHoldLittle: connections that declare the largest
// body and send nothing hold one chunk of the budget each, not their
// declared length, so another client's small POST is taken at once; one
// client cannot hold more than its share however much it sends; a body
// that arrives whole is read whole (its buffer grown as it came).
func TestIdleDeclaredBodiesHoldLittle(t *testing.T) {
	const maxBody = 8 << 20
	g := &gatedBackend{fakeBackend: newFake(), gate: make(chan struct{}), entered: make(chan struct{}, 64)}
	close(g.gate)
	h := newServer(Options{Backend: g, Token: testToken, MaxBodyBytes: maxBody,
		Limits: Limits{MaxBodiesInFlight: 4 * maxBody, MaxBodiesPerClient: maxBody}})
	base, _ := serveLimited(t, h, 0)
	addr := strings.TrimPrefix(base, "http://")
	// 8 clients (8 addresses: a client's share would stop one sooner)
	// declare 8 MiB each, 64 MiB in all, twice the budget, and send
	// nothing.
	for i := range 8 {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+i))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", maxBody)
	}
	waitFor(t, "the idle bodies charged", func() bool {
		_, clients, _ := h.bodies.inUse()
		return clients == 8
	})
	if used, _, _ := h.bodies.inUse(); used > 8*bodyChunk {
		t.Fatalf("8 idle bodies hold %d bytes of the budget, want at most %d", used, 8*bodyChunk)
	}
	// Another client's small POST is taken at once.
	if s, b, _ := postFrom(t, "127.0.0.2", base, paddedTx(t, 4<<10), false); s != http.StatusAccepted {
		t.Fatalf("a small POST beside idle bodies: %d %s", s, b)
	}
	// A whole body of 4 MiB is read and taken (declared and chunked).
	for _, chunked := range []bool{false, true} {
		if s, b, _ := postFrom(t, "127.0.0.3", base, paddedTx(t, 4<<20), chunked); s != http.StatusConflict && s != http.StatusAccepted {
			t.Fatalf("a 4 MiB body (chunked %v): %d %s", chunked, s, b)
		}
	}
	if _, _, peak := h.bodies.inUse(); peak > 4*maxBody {
		t.Fatalf("peak %d over the budget %d", peak, 4*maxBody)
	}
}

// TestRefusedRestIsNotAllocated: a declared body whose rest the budget
// refuses once its first chunk is read is answered 503 busy without its
// whole buffer ever being allocated (ten 4 MiB bodies against a 1 MiB
// budget allocate far less than the 40 MiB they declare).
func TestRefusedRestIsNotAllocated(t *testing.T) {
	h := newServer(Options{Backend: newFake(), Token: testToken, MaxBodyBytes: 8 << 20,
		Limits: Limits{MaxBodiesInFlight: 1 << 20, MaxBodiesPerClient: 1 << 20}})
	base, _ := serveLimited(t, h, 0)
	body := paddedTx(t, 4<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if s, b, hdr := postFrom(t, "127.0.0.7", base, body, false); s != http.StatusServiceUnavailable || !strings.Contains(b, `"busy"`) || hdr.Get("Retry-After") == "" {
			t.Fatalf("a 4 MiB body over a 1 MiB budget: %d %s", s, b)
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Fatalf("ten refused 4 MiB bodies allocated %d MiB", grown>>20)
	}
	if used, clients, peak := h.bodies.inUse(); used != 0 || clients != 0 || peak > 1<<20 {
		t.Fatalf("after the refusals: %d bytes, %d clients in flight, peak %d", used, clients, peak)
	}
}

// TestStalledBodyLosesItsBudget: a client that declares a large body,
// sends a little more than its first chunk (so the whole declared length
// is charged) and stalls is answered 408 body_too_slow once it falls
// behind the floor rate, its budget given back, and its address's next
// POST is taken; a slow but steady body above the floor rate, longer than
// the grace, is read whole.
func TestStalledBodyLosesItsBudget(t *testing.T) {
	const maxBody = 4 << 20
	h := newServer(Options{Backend: newFake(), Token: testToken, MaxBodyBytes: maxBody,
		Limits: Limits{MaxBodiesInFlight: 2 * maxBody, MaxBodiesPerClient: maxBody,
			MinBodyRate: 1 << 20, BodyGrace: 500 * time.Millisecond}})
	base, _ := serveLimited(t, h, 0)
	addr := strings.TrimPrefix(base, "http://")

	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 41)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", maxBody)
	if _, err := c.Write(bytes.Repeat([]byte(" "), 2*bodyChunk)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled body charged whole", func() bool {
		used, _, _ := h.bodies.inUse()
		return used == maxBody
	})
	// Its address's share is taken: another POST from it is refused.
	if s, b, _ := postFrom(t, "127.0.0.41", base, paddedTx(t, 1<<10), false); s != http.StatusServiceUnavailable || !strings.Contains(b, `"busy"`) {
		t.Fatalf("a POST beside a stalled body of the same address: %d %s", s, b)
	}
	// The stalled body is due at 0.5 s + 128 KiB at 1 MiB/s.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to the stalled body: %v", err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(out), `"body_too_slow"`) {
		t.Fatalf("stalled body: %d %s", resp.StatusCode, out)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the stalled body was answered after %v, want about 0.6 s", took)
	}
	if used, clients, _ := h.bodies.inUse(); used != 0 || clients != 0 {
		t.Fatalf("after the 408: %d bytes, %d clients in flight", used, clients)
	}
	if s, b, _ := postFrom(t, "127.0.0.41", base, paddedTx(t, 1<<10), false); s != http.StatusAccepted && s != http.StatusConflict {
		t.Fatalf("a POST after the stalled body was cut: %d %s", s, b)
	}

	// 2 MiB at about 2 MiB/s: twice the floor, and twice the grace long.
	body := paddedTx(t, 2<<20)
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(body); off += bodyChunk {
			if _, err := pw.Write(body[off:min(off+bodyChunk, len(body))]); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(context.Background(), "POST", base+"/v1/txs", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	sd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 42)}}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: sd.DialContext, DisableKeepAlives: true}}
	start = time.Now()
	sresp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(sresp.Body)
	sresp.Body.Close()
	if sresp.StatusCode != http.StatusAccepted && sresp.StatusCode != http.StatusConflict {
		t.Fatalf("a steady 2 MiB body over %v: %d %s", time.Since(start), sresp.StatusCode, out)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("the steady body took %v, not longer than the grace: the test proves nothing", took)
	}
}

// TestUnreadSmallBodyKeepsConnection: a handler that answers without
// reading its small body (an admin call with a wrong token) leaves the
// connection usable. With every body in full duplex, the unread body was
// left in the socket when the server closed it, and the client saw its
// PUT reset instead of the 401 (2 runs in 3 of the badinput e2e test).
func TestUnreadSmallBodyKeepsConnection(t *testing.T) {
	h := newServer(Options{Backend: newFake(), Token: testToken, MaxBodyBytes: 8 << 20})
	base, _ := serveLimited(t, h, 0)
	c := &http.Client{Timeout: 10 * time.Second}
	for i := range 30 {
		req, err := http.NewRequest("PUT", base+"/v1/config", strings.NewReader(`{"block_size":5}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v (want 401 unauthorized)", i, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(data), `"unauthorized"`) {
			t.Fatalf("request %d: %d %s, want 401 unauthorized", i, resp.StatusCode, data)
		}
	}
}
