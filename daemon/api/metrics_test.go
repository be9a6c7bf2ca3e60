package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/poslab/posd/daemon/metrics"
)

// scrape parses GET /metrics of base with the Prometheus text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	r := do(t, base, "GET", "/metrics", "", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(r.body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	return fams
}

// histCount is the sample count of fam's series with exactly labels.
func histCount(fam *dto.MetricFamily, labels map[string]string) uint64 {
	if fam == nil {
		return 0
	}
	for _, m := range fam.GetMetric() {
		if matchLabels(m, labels) {
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func matchLabels(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, lp := range m.GetLabel() {
		if labels[lp.GetName()] != lp.GetValue() {
			return false
		}
	}
	return true
}

// TestMetricsRequestDurations: each request lands in the histogram of its
// route pattern and status class; unknown paths and wrong methods share
// "unmatched", so no client can mint new series.
func TestMetricsRequestDurations(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(NewHandler(Options{Backend: newFake(), Metrics: m}))
	defer srv.Close()

	do(t, srv.URL, "GET", "/v1/status", "", "")
	do(t, srv.URL, "GET", "/v1/status", "", "")
	do(t, srv.URL, "GET", "/v1/blocks/5", "", "")
	do(t, srv.URL, "GET", "/v1/blocks/zz", "", "") // bad id: 4xx on the same pattern
	for i := range 3 {
		do(t, srv.URL, "GET", "/no/such/path/"+strings.Repeat("x", i), "", "")
	}
	do(t, srv.URL, "DELETE", "/v1/status", "", "") // 405

	fam := scrape(t, srv.URL)["posd_api_request_duration_seconds"]
	if fam == nil || fam.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("posd_api_request_duration_seconds missing or not a histogram: %v", fam)
	}
	for _, c := range []struct {
		route, status string
		want          uint64
	}{
		{"GET /v1/status", "2xx", 2},
		{"GET /v1/blocks/{id}", "2xx", 1},
		{"GET /v1/blocks/{id}", "4xx", 1},
		{metrics.UnmatchedRoute, "4xx", 4},
	} {
		if got := histCount(fam, map[string]string{"route": c.route, "status": c.status}); got != c.want {
			t.Errorf("route %q status %s: count %d, want %d", c.route, c.status, got, c.want)
		}
	}
	for _, m := range fam.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "route" && strings.Contains(lp.GetValue(), "/no/such") {
				t.Errorf("a raw path became a label value: %q", lp.GetValue())
			}
		}
	}
}

// TestMetricsDefaultRegistry: without Options.Metrics, /metrics still
// serves the API's own histogram on a registry of its own.
func TestMetricsDefaultRegistry(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Options{Backend: newFake()}))
	defer srv.Close()
	do(t, srv.URL, "GET", "/healthz", "", "")
	fam := scrape(t, srv.URL)["posd_api_request_duration_seconds"]
	if got := histCount(fam, map[string]string{"route": "GET /healthz", "status": "2xx"}); got != 1 {
		t.Fatalf("GET /healthz count %d, want 1", got)
	}
}
