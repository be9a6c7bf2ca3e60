// Command bodyflood sends many large request bodies at once to a posd API
// on loopback and reports the node's peak RSS and the slowest /healthz
// while they are in flight (docs/RELIABILITY.md, "request bodies").
//
//	go run ./daemon/api/testdata/bodyflood -url http://127.0.0.1:15101 -pid PID
//
// Each of -n senders posts one body of -size bytes, from one of -ips
// loopback source addresses (127.0.0.10, .11, ...), then sends again at
// once whatever the answer, until -for has passed: an attacker that never
// backs off. -mode json sends a JSON array of 10,000 signed transactions
// from unfunded keys, padded with spaces to -size (decoded whole by the
// node); -mode binary sends -size bytes of an undecodable binary batch.
// /healthz is polled every 100 ms by a child process (-probe), so the
// senders' own scheduling does not count against the node. Loopback only;
// bounded by -n and -for.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:15101", "API base URL (loopback)")
	pid := flag.Int("pid", 0, "posd's process id (RSS read from /proc)")
	n := flag.Int("n", 300, "concurrent senders")
	size := flag.Int("size", 8<<20, "body bytes")
	ips := flag.Int("ips", 10, "loopback source addresses")
	mode := flag.String("mode", "json", "json or binary")
	chainID := flag.String("chain-id", "", "chain id of the transactions (json)")
	dur := flag.Duration("for", 20*time.Second, "how long to keep sending")
	probeOnly := flag.Bool("probe", false, "only poll /healthz for -for (run by the command itself)")
	flag.Parse()
	if !strings.HasPrefix(*url, "http://127.") || *n > 1000 || *dur > 5*time.Minute {
		fmt.Fprintln(os.Stderr, "bodyflood: loopback only, at most 1000 senders and 5 minutes")
		os.Exit(2)
	}
	if *probeOnly {
		probe(*url, *dur)
		return
	}
	body, ctype := makeBody(*mode, *size, *chainID)
	rss0 := rss(*pid)

	stop := make(chan struct{})
	var peak atomic.Int64
	peak.Store(rss0)
	var wg sync.WaitGroup
	wg.Go(func() { // RSS every 20 ms
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if r := rss(*pid); r > peak.Load() {
				peak.Store(r)
			}
		}
	})
	child := exec.Command(os.Args[0], "-probe", "-url", *url, "-for", (*dur + time.Second).String())
	child.Stderr = os.Stderr
	probeOut, err := child.StdoutPipe()
	if err != nil || child.Start() != nil {
		fmt.Fprintln(os.Stderr, "bodyflood: cannot start the /healthz probe")
		os.Exit(1)
	}
	var codes sync.Map
	count := func(k string) {
		v, _ := codes.LoadOrStore(k, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	deadline := time.Now().Add(*dur)
	var senders sync.WaitGroup
	for i := range *n {
		c := client("127.0.0."+strconv.Itoa(10+i%*ips), 60*time.Second)
		senders.Go(func() {
			for time.Now().Before(deadline) {
				req, _ := http.NewRequestWithContext(context.Background(), "POST", *url+"/v1/txs", bytes.NewReader(body))
				req.Header.Set("Content-Type", ctype)
				resp, err := c.Do(req)
				if err != nil {
					count("error")
					continue
				}
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				_ = json.Unmarshal(data, &e)
				count(strconv.Itoa(resp.StatusCode) + " " + e.Error.Code)
			}
		})
	}
	senders.Wait()
	close(stop)
	wg.Wait()
	fmt.Printf("senders %d, body %d bytes (%s), %s\n", *n, *size, *mode, *dur)
	fmt.Printf("RSS before %d MB, peak %d MB, after %d MB\n", rss0>>20, peak.Load()>>20, rss(*pid)>>20)
	health, _ := io.ReadAll(probeOut)
	_ = child.Wait()
	fmt.Print(string(health))
	codes.Range(func(k, v any) bool {
		fmt.Printf("  %-30s %d\n", k, v.(*atomic.Int64).Load())
		return true
	})
}

// probe polls /healthz every 100 ms for d and prints the slowest answer.
func probe(url string, d time.Duration) {
	c := client("127.0.0.2", 5*time.Second)
	var slowest time.Duration
	polls, failures := 0, 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		start := time.Now()
		resp, err := c.Get(url + "/healthz")
		slowest = max(slowest, time.Since(start))
		polls++
		if err != nil {
			failures++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failures++
		}
	}
	fmt.Printf("/healthz (separate process, every 100 ms): %d polls, slowest %s, failures %d\n", polls, slowest.Round(time.Millisecond), failures)
}

func client(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func makeBody(mode string, size int, chainID string) ([]byte, string) {
	if mode == "binary" {
		body := bytes.Repeat([]byte{0xff}, size)
		body[0] = 1 // the batch version, then an impossible count
		return body, "application/octet-stream"
	}
	txs := make([]chain.Transaction, 10000)
	keys := make([]*keystore.Key, 100)
	for i := range keys {
		keys[i], _ = keystore.Generate()
	}
	to := keys[0].Address()
	for i := range txs {
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: chainID, To: to, Amount: 1, Fee: 1, Nonce: uint64(i/100 + 1)}
		keys[i%100].SignTx(&txs[i])
	}
	data, _ := json.Marshal(txs)
	if len(data) < size {
		data = append(data, bytes.Repeat([]byte(" "), size-len(data))...)
	}
	return data, "application/json"
}

// rss reads VmRSS of pid in bytes (0 when unknown).
func rss(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
