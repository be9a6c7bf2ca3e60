package metrics

import (
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkObserveRequest is what the API adds to every request.
func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.API.ObserveRequest("GET /v1/status", 200, time.Millisecond)
		}
	})
}

// BenchmarkScrape is one GET /metrics of a registry with every subsystem's
// series in use, the Go and process collectors included.
func BenchmarkScrape(b *testing.B) {
	m := New()
	for _, route := range []string{"GET /v1/status", "GET /v1/accounts", "POST /v1/txs", "GET /v1/blocks/{id}", UnmatchedRoute} {
		m.API.ObserveRequest(route, 200, time.Millisecond)
		m.API.ObserveRequest(route, 404, time.Millisecond)
	}
	for _, o := range []string{OutcomeMain, OutcomeSide, OutcomeKnown, OutcomeOrphan, OutcomeInvalid, OutcomeError} {
		m.Chain.ObserveImport(PathBlock, o, time.Millisecond)
	}
	m.Chain.ObserveElection(time.Millisecond)
	m.Chain.ObserveCommit(time.Millisecond)
	for _, c := range []string{"bad_nonce", "already_known", "insufficient_funds", "nonce_gap"} {
		m.Txs.Rejected(SourceAPI, c)
		m.Txs.Rejected(SourceP2P, c)
	}
	h := m.Handler()
	b.ReportAllocs()
	size := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}
