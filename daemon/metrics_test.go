package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// scrapeMetrics parses GET /metrics of n with the Prometheus text parser.
func scrapeMetrics(t testing.TB, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// sample is the value of the series of fams[name] with exactly labels
// (name=value pairs): a counter's or gauge's value, a histogram's count.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	fam := fams[name]
	if fam == nil {
		return 0
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// TestMetricsCountsMove: /metrics parses as Prometheus text, keeps the
// names it always had, and its counters and histograms move after a
// transaction, a rejection and a block.
func TestMetricsCountsMove(t *testing.T) {
	n := startTestNode(t)
	before := scrapeMetrics(t, n)

	for name, typ := range map[string]dto.MetricType{
		"posd_height": dto.MetricType_GAUGE, "posd_accounts": dto.MetricType_GAUGE, "posd_peers": dto.MetricType_GAUGE,
		"posd_pool_size": dto.MetricType_GAUGE, "posd_pool_pending": dto.MetricType_GAUGE, "posd_pool_queued": dto.MetricType_GAUGE,
		"posd_blocks_imported_total": dto.MetricType_COUNTER, "posd_blocks_forged_total": dto.MetricType_COUNTER,
		"posd_txs_committed_total": dto.MetricType_COUNTER, "posd_txs_evicted_total": dto.MetricType_COUNTER,
		"posd_reorgs_total": dto.MetricType_COUNTER, "posd_side_blocks_pruned_total": dto.MetricType_COUNTER,
		"posd_known_invalid_blocks_total": dto.MetricType_COUNTER,
		"posd_election_duration_seconds":  dto.MetricType_HISTOGRAM, "posd_block_commit_duration_seconds": dto.MetricType_HISTOGRAM,
		"posd_evidence_received_total": dto.MetricType_COUNTER, "posd_evidence_committed_total": dto.MetricType_COUNTER,
		"go_goroutines": dto.MetricType_GAUGE,
	} {
		if f := before[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: %v, want a %s", name, f, typ)
		}
	}

	alice, _ := keystore.Generate()
	info := send(t, n, alice, chain.Transaction{Type: chain.TxExchange, To: alice.Address(), Amount: 500})
	// A replay of the committed transaction is rejected with its code.
	var res rpc.SubmitResult
	if code := apiCall(t, n, "POST", "/v1/txs", info.Transaction, &res); code < 400 {
		t.Fatalf("replay accepted: %d", code)
	}
	replayCode := res.Error.Code
	// The followers of the chain (pool, subscribers) run after the commit:
	// wait until the gauges read the new head.
	waitUntil(t, 30*time.Second, "metrics of the new head", func() bool {
		return sample(scrapeMetrics(t, n), "posd_height") >= float64(*info.Height)
	})
	after := scrapeMetrics(t, n)

	moved := []struct {
		name   string
		labels []string
		least  float64 // at least this much more than before
	}{
		{"posd_txs_accepted_total", []string{"source", "api"}, 1},
		{"posd_txs_rejected_total", []string{"code", replayCode, "source", "api"}, 1},
		{"posd_blocks_forged_total", nil, 1},
		{"posd_blocks_imported_total", nil, 1},
		{"posd_txs_committed_total", nil, 1},
		{"posd_height", nil, 1},
		{"posd_block_import_duration_seconds", []string{"outcome", "main", "path", "block"}, 1},
		{"posd_block_commit_duration_seconds", nil, 1},
		{"posd_election_duration_seconds", nil, 1},
		{"posd_api_request_duration_seconds", []string{"route", "POST /v1/txs", "status", "2xx"}, 1},
		{"posd_api_request_duration_seconds", []string{"route", "POST /v1/txs", "status", "4xx"}, 1},
	}
	for _, m := range moved {
		b, a := sample(before, m.name, m.labels...), sample(after, m.name, m.labels...)
		if a-b < m.least {
			t.Errorf("%s%v: %v -> %v, want +%v", m.name, m.labels, b, a, m.least)
		}
	}
	if replayCode != "already_known" {
		t.Errorf("replay code %q, want already_known", replayCode)
	}
}

// TestMetricsIncludeLibp2p: a networked node's /metrics carries libp2p's
// own metrics (swarm, identify, ...) on the same registry.
func TestMetricsIncludeLibp2p(t *testing.T) {
	d := startNet(t, []uint64{1, 1}, nil)
	waitPeers(t, d, 1)
	fams := scrapeMetrics(t, d.Nodes[0])
	var libp2p []string
	for name := range fams {
		if strings.HasPrefix(name, "libp2p_") {
			libp2p = append(libp2p, name)
		}
	}
	if len(libp2p) == 0 {
		t.Fatal("no libp2p_ metrics in /metrics")
	}
	if sample(fams, "posd_peers") < 1 {
		t.Errorf("posd_peers %v, want >= 1", sample(fams, "posd_peers"))
	}
}
