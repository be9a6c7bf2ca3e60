package api

import (
	"embed"
	"net/http"
	"path"

	"github.com/poslab/posd/chain"
)

// dashboardFiles is the page a learner keeps open beside a node (GET /): one
// HTML file, its script and its style sheet, embedded in the binary. No CDN,
// no build step: edit the files and rebuild posd. The page reads
// /v1/blocks/summaries once, then follows /v1/events?summary=1, so it never
// downloads a block's transactions. Finality (the votes toward 2/3 for the
// newest checkpoint, final and justified marks, the "finality stalled"
// banner) comes from /v1/status and /v1/finality, read at most once a
// second, and the "justified" and "finalized" events; on a backend without
// FinalityBackend the page shows none of it.
//
//go:embed dashboard/index.html dashboard/app.js dashboard/style.css
var dashboardFiles embed.FS

// dashboardCSP allows the page its own scripts and styles and nothing else.
const dashboardCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) error {
	return serveDashboardFile(w, "index.html")
}

// dashboardAsset is GET /ui/{file}: the page's script and style sheet.
func (s *server) dashboardAsset(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	if name == "index.html" || path.Base(name) != name {
		return ErrNotFound
	}
	return serveDashboardFile(w, name)
}

func serveDashboardFile(w http.ResponseWriter, name string) error {
	data, err := dashboardFiles.ReadFile("dashboard/" + name)
	if err != nil {
		return ErrNotFound
	}
	ctype := "text/html; charset=utf-8"
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	_, err = w.Write(data)
	return err
}

// BlockSummary is a block without its transactions: what GET
// /v1/blocks/summaries and /v1/events?summary=1 carry, so a page that shows
// the newest blocks costs the node a few hundred bytes a block whatever the
// blocks hold.
type BlockSummary struct {
	Height    uint64        `json:"height"`
	Hash      chain.Hash    `json:"hash"`
	PrevHash  chain.Hash    `json:"prev_hash"`
	Timestamp int64         `json:"timestamp"` // unix ms
	Forger    chain.Address `json:"forger"`
	Rank      uint32        `json:"rank"`
	TxCount   int           `json:"tx_count"`
	// PassedOver are the candidates the election ranked above the forger
	// (ranks 0..rank-1), who did not forge in their slots, when the node
	// still has that election at hand; absent otherwise.
	PassedOver []chain.Address `json:"passed_over,omitempty"`
}

// PassedOverer is optional on a Backend: the candidates ranked before rank
// by the election on parent, or nil when the node no longer knows them. It
// must be cheap (a cache lookup, never a new election).
type PassedOverer interface {
	PassedOver(parent chain.Hash, rank uint32) []chain.Address
}

// Limits of GET /v1/blocks/summaries.
const (
	defaultSummariesLimit = 50
	maxSummariesLimit     = 500
)

// BlockSummarizer is optional on a Backend: BlockSummaries answers GET
// /v1/blocks/summaries as Blocks would (ascending main-chain blocks from
// from, at most limit), with PassedOver filled, without decoding every block
// each time. Without it the handler summarizes Blocks' answer.
type BlockSummarizer interface {
	BlockSummaries(from uint64, limit int) ([]BlockSummary, error)
}

// SummaryOf is b without its body (and without PassedOver).
func SummaryOf(b *chain.Block) BlockSummary {
	return BlockSummary{
		Height: b.Height, Hash: b.Hash(), PrevHash: b.PrevHash, Timestamp: b.Timestamp,
		Forger: b.Forger, Rank: b.Rank, TxCount: len(b.Transactions),
	}
}

// summarize is b without its body, with PassedOver when the backend knows it.
func (s *server) summarize(b *chain.Block) BlockSummary {
	sum := SummaryOf(b)
	if b.Rank > 0 {
		if po, ok := s.b.(PassedOverer); ok {
			sum.PassedOver = po.PassedOver(b.PrevHash, b.Rank)
		}
	}
	return sum
}

// blockSummaries is GET /v1/blocks/summaries?from=H&limit=N: as /v1/blocks
// (the newest limit blocks without from), header fields and a transaction
// count only, at most maxSummariesLimit.
func (s *server) blockSummaries(w http.ResponseWriter, r *http.Request) error {
	br, err := parseBlockRange(r, defaultSummariesLimit, maxSummariesLimit)
	if err != nil {
		return err
	}
	from, limit := br.newestFrom(s.b.Height()), br.limit
	if bs, ok := s.b.(BlockSummarizer); ok {
		out, err := bs.BlockSummaries(from, limit)
		if err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, nonNil(out))
		return nil
	}
	list, err := s.b.Blocks(from, limit)
	if err != nil {
		return err
	}
	out := make([]BlockSummary, 0, len(list))
	for _, b := range list {
		if b != nil {
			out = append(out, s.summarize(b))
		}
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}
