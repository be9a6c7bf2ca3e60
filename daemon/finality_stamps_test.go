package daemon

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/metrics"
)

// The times to finality of blocks added by earlier events come from the
// timestamps the node kept, not from the store: this finality has no
// chain to read blocks from, so a read would panic. The kept timestamps
// stay bounded: those at or below the final height are dropped, and
// none is kept far above it.
func TestObserveFinalUsesStamps(t *testing.T) {
	m := metrics.New()
	f := &finality{met: m.Finality}
	now := time.Now().UnixMilli()
	block := func(h uint64) *chain.Block {
		return &chain.Block{Header: chain.Header{Height: h, Timestamp: now - 1000}}
	}
	for h := uint64(1); h <= 5; h++ {
		f.stamp(block(h))
	}
	f.stamp(block(maxStamps + 1)) // too far above the final height
	if len(f.stamps) != 5 {
		t.Fatalf("%d timestamps kept, want 5", len(f.stamps))
	}
	// Blocks 1-3 become final with an event that adds block 6 only.
	f.observeFinal(chainmgr.Event{Added: []*chain.Block{block(6)}}, 3)
	if len(f.stamps) != 2 || f.stamps[4] == 0 || f.stamps[5] == 0 {
		t.Fatalf("timestamps kept after final 3: %v", f.stamps)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := "posd_time_to_finality_seconds_count 3"; !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("/metrics lacks %q", want)
	}
	// A jump past maxObserveFinal records nothing but still drops them.
	f.observeFinal(chainmgr.Event{}, 5+maxObserveFinal)
	if len(f.stamps) != 0 {
		t.Fatalf("timestamps kept after a jump: %v", f.stamps)
	}
}
