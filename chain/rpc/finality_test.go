package rpc

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

// TestThresholdLots: the threshold is the least count strictly above 2/3.
func TestThresholdLots(t *testing.T) {
	for _, c := range []struct{ total, want uint64 }{
		{0, 1}, {1, 1}, {2, 2}, {3, 3}, {4, 3}, {5, 4}, {6, 5}, {100, 67}, {300, 201},
		{math.MaxUint64, math.MaxUint64/3*2 + 1},
	} {
		got := ThresholdLots(c.total)
		if got != c.want {
			t.Errorf("ThresholdLots(%d) = %d, want %d", c.total, got, c.want)
		}
		// more than 2/3, and one less is not (checked without overflow on small totals)
		if c.total > 0 && c.total < 1<<40 && (3*got <= 2*c.total || 3*(got-1) > 2*c.total) {
			t.Errorf("ThresholdLots(%d) = %d is not the least count above 2/3", c.total, got)
		}
	}
}

// TestStatusFinalityFields: a node without finality sends none of the
// finality fields, and HasFinality says so; a node with it sends all four.
func TestStatusFinalityFields(t *testing.T) {
	data, _ := json.Marshal(Status{})
	for _, k := range []string{"justified_height", "finalized_height", "finality_stalled"} {
		if strings.Contains(string(data), k) {
			t.Errorf("status without finality has %s: %s", k, data)
		}
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil || st.HasFinality() {
		t.Fatalf("HasFinality on an old status: %v %v", st.HasFinality(), err)
	}
	zero, h := uint64(0), chain.Hash{1}
	data, _ = json.Marshal(Status{JustifiedHeight: &zero, JustifiedHash: &h, FinalizedHeight: &zero, FinalizedHash: &h})
	for _, k := range []string{`"justified_height":0`, `"justified_hash"`, `"finalized_height":0`, `"finalized_hash"`} {
		if !strings.Contains(string(data), k) {
			t.Errorf("status with finality at genesis lacks %s: %s", k, data)
		}
	}
	if err := json.Unmarshal(data, &st); err != nil || !st.HasFinality() {
		t.Fatalf("HasFinality at genesis: %v %v", st.HasFinality(), err)
	}
}

// TestFinalityEventData: the event's data is the checkpoint and the time;
// the type travels as the SSE event name, not in the data.
func TestFinalityEventData(t *testing.T) {
	data, _ := json.Marshal(FinalityEvent{Type: EventFinalized, Checkpoint: chain.Checkpoint{Height: 7, Hash: chain.Hash{2}}, Time: 1000})
	want := `{"checkpoint":{"height":7,"hash":"02` + strings.Repeat("0", 62) + `"},"time":1000}`
	if string(data) != want {
		t.Fatalf("got %s\nwant %s", data, want)
	}
}
