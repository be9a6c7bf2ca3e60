package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

// passedOverFake adds the optional PassedOverer to the fake backend.
type passedOverFake struct {
	*fakeBackend
	asked int
}

func (p *passedOverFake) PassedOver(parent chain.Hash, rank uint32) []chain.Address {
	p.asked++
	return []chain.Address{alice}[:min(int(rank), 1)]
}

func TestBlockSummaries(t *testing.T) {
	f := newFake()
	f.blocks[testHeight].Rank = 1
	pf := &passedOverFake{fakeBackend: f}
	srv := httptest.NewServer(newServer(Options{Backend: pf, Token: testToken}))
	defer srv.Close()

	r := do(t, srv.URL, "GET", "/v1/blocks/summaries?limit=3", "", "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := decode[[]BlockSummary](t, r.body)
	if len(got) != 3 || got[2].Height != testHeight || got[0].Height != testHeight-2 {
		t.Fatalf("got %+v, want the newest three blocks ascending", got)
	}
	head := f.blocks[testHeight]
	if got[2].Hash != head.Hash() || got[2].Forger != bob || got[2].Rank != 1 || got[2].Timestamp != head.Timestamp {
		t.Errorf("head summary %+v does not match the block", got[2])
	}
	if len(got[2].PassedOver) != 1 || got[2].PassedOver[0] != alice || got[1].PassedOver != nil {
		t.Errorf("passed over: %v and %v, want [alice] on the rank-1 block only", got[2].PassedOver, got[1].PassedOver)
	}
	if pf.asked != 1 {
		t.Errorf("PassedOver asked %d times, want once (rank-0 blocks need no election)", pf.asked)
	}
	if strings.Contains(string(r.body), "transactions") || strings.Contains(string(r.body), "signature") {
		t.Errorf("summaries carry bodies or signatures: %s", r.body)
	}

	r = do(t, srv.URL, "GET", "/v1/blocks/summaries?from=1&limit=1", "", "")
	if got := decode[[]BlockSummary](t, r.body); len(got) != 1 || got[0].TxCount != 1 || got[0].Height != 1 {
		t.Errorf("block 1 summary %s, want one transaction", r.body)
	}
	r = do(t, srv.URL, "GET", "/v1/blocks/summaries", "", "")
	if got := decode[[]BlockSummary](t, r.body); len(got) != defaultSummariesLimit {
		t.Errorf("default page: %d summaries, want %d", len(got), defaultSummariesLimit)
	}
	r = do(t, srv.URL, "GET", "/v1/blocks/summaries?from=999999", "", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("past the head: %d %s, want 200 []", r.status, r.body)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "from=-1", "from=abc", "%zz"} {
		r := do(t, srv.URL, "GET", "/v1/blocks/summaries?"+q, "", "")
		if r.status != 400 || !strings.Contains(string(r.body), `"bad_request"`) {
			t.Errorf("?%s: %d %s, want 400 bad_request", q, r.status, r.body)
		}
	}
}

// TestEventsSummary: /v1/events?summary=1 carries summaries, not blocks.
func TestEventsSummary(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newTestHandler(f))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events?summary=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br) // the opening comment
	waitFor(t, "the subscription", func() bool { return f.subscribers() == 1 })
	f.publish(f.blocks[1])
	_, ev, data := readEvent(t, br)
	if ev != "block" {
		t.Fatalf("event %q, want block", ev)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["transactions"]; ok {
		t.Errorf("summary event carries transactions: %s", data)
	}
	if string(got["tx_count"]) != "1" || string(got["height"]) != "1" {
		t.Errorf("summary event %s, want height 1 and tx_count 1", data)
	}
}

func TestDashboardAssets(t *testing.T) {
	srv := httptest.NewServer(newTestHandler(newFake()))
	defer srv.Close()
	for _, tc := range []struct{ path, ctype, want string }{
		{"/", "text/html", `name="viewport"`},
		{"/ui/app.js", "text/javascript", "/v1/events?summary=1"},
		{"/ui/app.js", "text/javascript", "/v1/finality"},
		{"/", "text/html", `id="stalled"`},
		{"/ui/style.css", "text/css", "@media"},
	} {
		r := do(t, srv.URL, "GET", tc.path, "", "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %d %s, want 200 %s containing %q", tc.path, r.status, r.header.Get("Content-Type"), tc.ctype, tc.want)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
		if strings.Contains(string(r.body), "http://") && tc.path != "/ui/app.js" || strings.Contains(string(r.body), "https://") {
			t.Errorf("%s refers to another site", tc.path)
		}
	}
	for _, p := range []string{"/ui/index.html", "/ui/nope.js", "/ui/..%2fdashboard.go"} {
		if r := do(t, srv.URL, "GET", p, "", ""); r.status != 404 {
			t.Errorf("%s: %d, want 404", p, r.status)
		}
	}
}

type searchFake struct {
	*fakeBackend
	got string
}

func (s *searchFake) SearchPrefix(prefix string, max int) (SearchResult, error) {
	s.got = prefix
	return SearchResult{Accounts: []chain.Address{alice}}, nil
}

func TestSearch(t *testing.T) {
	srv := httptest.NewServer(newTestHandler(newFake()))
	defer srv.Close()
	if r := do(t, srv.URL, "GET", "/v1/search?prefix=abcd", "", ""); r.status/100 != 5 || !strings.Contains(string(r.body), `"unavailable"`) {
		t.Errorf("a backend without search: %d %s, want unavailable", r.status, r.body)
	}
	sf := &searchFake{fakeBackend: newFake()}
	srv2 := httptest.NewServer(newServer(Options{Backend: sf}))
	defer srv2.Close()
	r := do(t, srv2.URL, "GET", "/v1/search?prefix=ABCD12", "", "")
	if r.status != 200 || sf.got != "abcd12" {
		t.Fatalf("%d %s, backend asked %q", r.status, r.body, sf.got)
	}
	if want := `{"prefix":"abcd12","blocks":[],"txs":[],"accounts":["` + string(alice) + `"]}`; strings.TrimSpace(string(r.body)) != want {
		t.Errorf("body %s, want %s", r.body, want)
	}
	for _, q := range []string{"", "prefix=", "prefix=abc", "prefix=abcg", "prefix=" + strings.Repeat("a", 65)} {
		if r := do(t, srv2.URL, "GET", "/v1/search?"+q, "", ""); r.status != 400 {
			t.Errorf("?%s: %d %s, want 400", q, r.status, r.body)
		}
	}
}

// TestDashboardRestNote runs the dashboard's restNote under Node.js (skipped
// without it): a head two slots old with nothing pending says that the
// chain rests and why; a moving chain or a pending pool says nothing.
func TestDashboardRestNote(t *testing.T) {
	nodejs, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node (Node.js) binary to run the dashboard's script")
	}
	src, err := dashboardFiles.ReadFile("dashboard/app.js")
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?s)\nfunction restNote\(.*?\n}\n`).Find(src)
	if fn == nil {
		t.Fatal("app.js has no function restNote")
	}
	const now = 1_000_000
	cases := []struct {
		status, genesis string
		want            string
	}{
		{`{"pending": 0, "head_timestamp": 1000000}`, `{"slot_ms": 2000, "heartbeat": true}`, ""},
		{`{"pending": 0, "head_timestamp": 996001}`, `{"slot_ms": 2000, "heartbeat": true}`, ""},
		{`{"pending": 0, "head_timestamp": 996000}`, `{"slot_ms": 2000, "heartbeat": true}`, "The chain rests: no pending transactions, and heartbeat blocks stop once the newest payment is 64 blocks deep."},
		{`{"pending": 3, "head_timestamp": 0}`, `{"slot_ms": 2000, "heartbeat": true}`, ""},
		{`{"pending": 0, "head_timestamp": 0}`, `{"slot_ms": 2000, "heartbeat": false}`, "The chain rests: blocks are forged only for pending transactions."},
		{`{"pending": 0, "head_timestamp": 0}`, `null`, "The chain rests: blocks are forged only for pending transactions."},
		{`null`, `null`, ""},
	}
	var script strings.Builder
	script.Write(fn)
	for _, tc := range cases {
		fmt.Fprintf(&script, "console.log(JSON.stringify(restNote(%s, %s, %d)));\n", tc.status, tc.genesis, now)
	}
	out, err := exec.Command(nodejs, "-e", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("node printed %d lines for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, tc := range cases {
		var got string
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil || got != tc.want {
			t.Errorf("restNote(%s, %s) = %s, want %q", tc.status, tc.genesis, lines[i], tc.want)
		}
	}
}

// TestDashboardFinality runs the dashboard's finality helpers under
// Node.js (skipped without it): marks on blocks from the status, the
// stalled banner's sentence, and the votes toward 2/3.
func TestDashboardFinality(t *testing.T) {
	nodejs, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node (Node.js) binary to run the dashboard's script")
	}
	src, err := dashboardFiles.ReadFile("dashboard/app.js")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for _, re := range []string{`(?m)^const pct = .*$`, `(?s)\nfunction finalMark\(.*?\n}\n`, `(?s)\nfunction stallText\(.*?\n}\n`, `(?s)\nfunction voteShare\(.*?\n}\n`} {
		fn := regexp.MustCompile(re).Find(src)
		if fn == nil {
			t.Fatalf("app.js lacks %s", re)
		}
		script.Write(fn)
		script.WriteString("\n")
	}
	cases := []struct{ expr, want string }{
		{`finalMark(5, {"height": 9})`, `""`}, // a node without finality
		{`finalMark(5, null)`, `""`},
		{`finalMark(0, {"finalized_height": 0, "justified_height": 0})`, `"final"`},
		{`finalMark(5, {"finalized_height": 6, "justified_height": 7})`, `"final"`},
		{`finalMark(7, {"finalized_height": 6, "justified_height": 7})`, `"justified"`},
		{`finalMark(8, {"finalized_height": 6, "justified_height": 7})`, `""`},
		{`stallText({"finalized_height": 6})`, `""`},
		{`stallText({"finality_stalled": {"behind": 12, "missing_lots": 150, "total_lots": 200, "missing_stake": 150, "missing_percent": 75}})`,
			`"75% of the stake is not voting (150 of 200 lots, 150 staked): nothing new becomes final until enough of it votes. Blocks go on; the final block is 12 behind the head."`},
		{`voteShare({"voted_lots": 50, "total_lots": 200, "threshold_lots": 134}).text`, `"50 of 200 lots voted (25%); 2/3 needs 134, 84 more"`},
		{`voteShare({"voted_lots": 50, "total_lots": 200, "threshold_lots": 134}).reached`, `false`},
		{`voteShare({"voted_lots": 134, "total_lots": 200, "threshold_lots": 134}).reached`, `true`},
		{`voteShare({"voted_lots": 200, "total_lots": 200, "threshold_lots": 134, "justified": true}).text`, `"200 of 200 lots voted (100%): justified"`},
		{`voteShare({"voted_lots": 0, "total_lots": 0}).share`, `0`},
		{`voteShare(null).text`, `""`},
	}
	for _, tc := range cases {
		fmt.Fprintf(&script, "console.log(JSON.stringify(%s));\n", tc.expr)
	}
	out, err := exec.Command(nodejs, "-e", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("node printed %d lines for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, tc := range cases {
		if lines[i] != tc.want {
			t.Errorf("%s = %s, want %s", tc.expr, lines[i], tc.want)
		}
	}
}
