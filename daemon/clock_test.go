package daemon

import (
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// TestSlowClockFollowsAndWarns: a node whose clock is 3 s slow sees every
// honest block 3 s "in the future", beyond the 500 ms drift allowed. It
// keeps them until due instead of dropping them, so it follows the chain
// (3 s late), and it reports that its clock looks slow in /v1/status.
func TestSlowClockFollowsAndWarns(t *testing.T) {
	const lag = 3 * time.Second
	d := startNet(t, []uint64{1, 0}, func(i int, c *Config) {
		if i == 2 {
			c.Now = func() time.Time { return time.Now().Add(-lag) }
		}
	})
	waitPeers(t, d, 1)
	fast, slow := d.Nodes[0], d.Nodes[1]
	k, _ := keystore.Generate()
	for i := range 3 {
		sendFrom(t, fast, k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1})
		want := uint64(i + 1)
		waitUntil(t, 60*time.Second, "the slow node to take the payment", func() bool {
			return slow.API().Account(k.Address()).Nonce == want
		})
	}
	waitUntil(t, 60*time.Second, "the slow node to report its clock", func() bool {
		return slow.API().Status().ClockBehindMs > 0
	})
	if ms := slow.API().Status().ClockBehindMs; ms < (lag-time.Second).Milliseconds() || ms > (lag+time.Second).Milliseconds() {
		t.Errorf("clock_behind_ms %d, want about %d", ms, lag.Milliseconds())
	}
	if ms := fast.API().Status().ClockBehindMs; ms != 0 {
		t.Errorf("the node on time reports clock_behind_ms %d", ms)
	}
	var st struct {
		ClockBehindMs int64 `json:"clock_behind_ms"`
	}
	apiCall(t, slow, "GET", "/v1/status", nil, &st)
	if st.ClockBehindMs <= 0 {
		t.Error("/v1/status has no clock_behind_ms")
	}
}
