package metrics

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poslab/posd/chain"
)

// TestNilIsNoop: every method of a nil subsystem, and of Nop, does nothing
// and does not panic, so parts built without metrics need no setup.
func TestNilIsNoop(t *testing.T) {
	var c *Chain
	c.ObserveImport(PathBlock, OutcomeMain, time.Millisecond)
	c.ObserveElection(time.Millisecond)
	c.ObserveCommit(time.Millisecond)
	c.Evidence().Received()
	var tx *Txs
	tx.Admitted(SourceAPI, []error{nil, chain.ErrBadNonce})
	tx.Accepted(SourceAPI, 1)
	tx.Rejected(SourceP2P, "bad_nonce")
	var a *API
	a.ObserveRequest("GET /v1/status", 200, time.Millisecond)
	var e *Evidence
	e.Received()
	e.Committed(1, 50)
	var fin *Finality
	fin.SetJustified(3)
	fin.SetFinal(2)
	fin.ObserveTimeToFinality(time.Second)
	fin.Votes(VoteIncluded, 2)
	c.Finality().SetFinal(1)
	var m *Metrics
	m.GaugeFunc("x", "x", func() float64 { return 1 })
	m.CounterFunc("y", "y", func() float64 { return 1 })
	n := Nop()
	n.Chain.ObserveCommit(time.Second)
	n.GaugeFunc("x", "x", func() float64 { return 1 })
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("Nop handler: %d", rec.Code)
	}
}

// TestTxsCountByCode: accepted and rejected transactions count by source
// and rule code; errors without a code count as "other".
func TestTxsCountByCode(t *testing.T) {
	m := New()
	wrapped := fmt.Errorf("pool: %w", &chain.RuleError{Code: chain.ErrInsufficientFunds.Code, Message: "balance 0"})
	m.Txs.Admitted(SourceAPI, []error{nil, nil, chain.ErrBadNonce, wrapped, errors.New("disk")})
	m.Txs.Admitted(SourceP2P, []error{chain.ErrBadNonce})
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.Txs.accepted.WithLabelValues(SourceAPI)), 2, "accepted api"},
		{testutil.ToFloat64(m.Txs.rejected.WithLabelValues(SourceAPI, "bad_nonce")), 1, "api bad_nonce"},
		{testutil.ToFloat64(m.Txs.rejected.WithLabelValues(SourceAPI, "insufficient_funds")), 1, "api insufficient_funds (wrapped)"},
		{testutil.ToFloat64(m.Txs.rejected.WithLabelValues(SourceAPI, OtherCode)), 1, "api other"},
		{testutil.ToFloat64(m.Txs.rejected.WithLabelValues(SourceP2P, "bad_nonce")), 1, "p2p bad_nonce"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestCodeLabelsAreBounded: past maxCodes distinct codes, rejections count
// as "other", so the series stay bounded whatever errors appear.
func TestCodeLabelsAreBounded(t *testing.T) {
	m := New()
	for i := range 3 * maxCodes {
		m.Txs.Rejected(SourceAPI, fmt.Sprintf("code_%d", i))
	}
	if n := testutil.CollectAndCount(m.Txs.rejected); n != maxCodes+1 {
		t.Fatalf("%d series, want %d", n, maxCodes+1)
	}
	if got := testutil.ToFloat64(m.Txs.rejected.WithLabelValues(SourceAPI, OtherCode)); got != 2*maxCodes {
		t.Fatalf("other: %v, want %d", got, 2*maxCodes)
	}
}

// TestMetricNamesLint: every metric the package defines passes the
// Prometheus naming lint (units, _total on counters, help text).
func TestMetricNamesLint(t *testing.T) {
	m := New()
	m.Chain.ObserveImport(PathBlock, OutcomeMain, time.Millisecond)
	m.API.ObserveRequest("GET /v1/status", 200, time.Millisecond)
	m.Txs.Admitted(SourceAPI, []error{nil, chain.ErrBadNonce})
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestStatusClass bounds the status label.
func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{200: "2xx", 202: "2xx", 404: "4xx", 503: "5xx", 0: "other", 999: "other"} {
		if got := statusClass(status); got != want {
			t.Errorf("statusClass(%d) = %s, want %s", status, got, want)
		}
	}
}

// TestChainReachesEvidence: the chain manager, given only the Chain
// subsystem, counts evidence on the same registry.
func TestChainReachesEvidence(t *testing.T) {
	m := New()
	m.Chain.Evidence().Received()
	m.Chain.Evidence().Committed(2, 150)
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(m.Evidence.received), 1, "received"},
		{testutil.ToFloat64(m.Evidence.committed), 2, "committed"},
		{testutil.ToFloat64(m.Evidence.slashed), 150, "slashed stake"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestFinality: heights, time to finality and votes by outcome reach the
// registry under their names; an unknown outcome counts as other; the chain
// subsystem hands out the same Finality.
func TestFinality(t *testing.T) {
	m := New()
	if m.Chain.Finality() != m.Finality {
		t.Fatal("Chain.Finality is not the Metrics' Finality")
	}
	f := m.Chain.Finality()
	f.SetJustified(12)
	f.SetFinal(11)
	f.ObserveTimeToFinality(2500 * time.Millisecond)
	f.ObserveTimeToFinality(-time.Second)
	f.Votes(VoteIncluded, 3)
	f.Votes(VoteStale, 1)
	f.Votes("made-up", 2)
	f.Votes(VoteInvalid, 0)
	for _, c := range []struct {
		got, want float64
		what      string
	}{
		{testutil.ToFloat64(f.justified), 12, "justified"},
		{testutil.ToFloat64(f.final), 11, "final"},
		{testutil.ToFloat64(f.votes.WithLabelValues(VoteIncluded)), 3, "included"},
		{testutil.ToFloat64(f.votes.WithLabelValues(VoteStale)), 1, "stale"},
		{testutil.ToFloat64(f.votes.WithLabelValues(OtherCode)), 2, "other"},
		{float64(testutil.CollectAndCount(f.votes)), 3, "vote series"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	page := rec.Body.String()
	for _, want := range []string{
		"posd_final_height 11", "posd_justified_height 12",
		"posd_time_to_finality_seconds_count 2", `posd_time_to_finality_seconds_bucket{le="0.25"} 1`,
		`posd_votes_total{outcome="included"} 3`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
