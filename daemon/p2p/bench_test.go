package p2p

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkSync10000: B starts empty and syncs A's 10,000 small blocks.
func BenchmarkSync10000(b *testing.B) {
	const n = 10000
	a := newFakeChain("g")
	a.extend(n, 0)
	na := startNode(b, a, nil)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		c := newFakeChain("g")
		nc := startNode(b, c, nil)
		b.StartTimer()
		start := time.Now()
		if err := nc.Connect(b.Context(), na.Addrs()); err != nil {
			b.Fatal(err)
		}
		deadline := time.After(2 * time.Minute)
		for c.height() < n {
			select {
			case <-c.notify:
			case <-deadline:
				b.Fatalf("synced %d of %d blocks", c.height(), n)
			}
		}
		total += time.Since(start)
		b.StopTimer()
		nc.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "blocks/s")
}

// BenchmarkGossipLatency: 4 hosts in a line A-B-C-D; A publishes a block;
// the latency is the time until each other node's handler imported it.
func BenchmarkGossipLatency(b *testing.B) {
	chains := []*fakeChain{newFakeChain("g"), newFakeChain("g"), newFakeChain("g"), newFakeChain("g")}
	nodes := line(b, chains)
	a := nodes[0]
	// Warm up until the meshes carry a block end to end.
	publish := func() (uint64, time.Time) {
		blk := chains[0].extend(1, 0)[0]
		at := time.Now()
		a.PublishBlock(blk)
		return blk.Height, at
	}
	waitAll := func(h uint64) {
		waitFor(b, 20*time.Second, "block everywhere", func() bool {
			for _, c := range chains[1:] {
				if c.height() < h {
					return false
				}
			}
			return true
		})
	}
	for range 3 {
		h, _ := publish()
		waitAll(h)
	}
	time.Sleep(1500 * time.Millisecond) // a heartbeat or so for the mesh
	const perIter = 50
	var lat, last []float64 // ms: every delivery; the slowest node per block
	for b.Loop() {
		for range perIter {
			h, at := publish()
			waitAll(h)
			slowest := 0.0
			for _, c := range chains[1:] {
				c.mu.Lock()
				ms := float64(c.acceptAt[h].Sub(at).Microseconds()) / 1000
				c.mu.Unlock()
				lat = append(lat, ms)
				slowest = max(slowest, ms)
			}
			last = append(last, slowest)
			time.Sleep(10 * time.Millisecond)
		}
	}
	slices.Sort(lat)
	slices.Sort(last)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(last[len(last)/2], "p50-all-ms")
}
