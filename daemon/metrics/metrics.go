// Package metrics defines the node's Prometheus metrics: one struct per
// subsystem (Chain, Txs, API, Evidence, Finality), each handed to the part it
// measures, all registered on one registry that GET /metrics serves;
// libp2p's own metrics join the same registry.
//
// Every method is safe on a nil receiver and then does nothing, so a part
// built without metrics (unit tests, tools) needs no setup: nil is the
// no-op default. The model is CometBFT's */metrics.go (a Metrics struct per
// subsystem, passed in, with NopMetrics for tests).
//
// Label values come from fixed sets (route patterns of the API's table,
// status classes, import outcomes, rule codes), so no input from a client
// or a peer can grow the number of series; see maxCodes.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/poslab/posd/chain"
)

// Namespace prefixes every metric of the node.
const Namespace = "posd"

// Metrics is the node's metrics, subsystem by subsystem, on Registry.
type Metrics struct {
	Registry *prometheus.Registry
	Chain    *Chain
	Txs      *Txs
	API      *API
	Evidence *Evidence
	Finality *Finality
}

// New returns metrics on a new registry that also holds the Go runtime and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		Chain:    newChain(reg),
		Txs:      newTxs(reg),
		API:      newAPI(reg),
		Evidence: newEvidence(reg),
		Finality: newFinality(reg),
	}
	m.Chain.evidence = m.Evidence
	m.Chain.finality = m.Finality
	return m
}

// Nop returns metrics that record nothing: every subsystem is nil.
func Nop() *Metrics { return &Metrics{} }

// Handler serves the registry in the Prometheus text format (or what the
// scraper negotiates). A collector that fails leaves its metrics out of
// the page rather than failing the whole page.
func (m *Metrics) Handler() http.Handler {
	if m == nil || m.Registry == nil {
		return promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// GaugeFunc registers a gauge named posd_<name> whose value f reads at
// each scrape (f must be cheap and safe for concurrent use).
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	if m == nil || m.Registry == nil {
		return
	}
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// CounterFunc registers a counter named posd_<name> whose value f reads at
// each scrape: for counts another part already keeps (f must never go down).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	if m == nil || m.Registry == nil {
		return
	}
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// Buckets of the duration histograms, in seconds.
var (
	// requestBuckets spans a cached status read to a large batch of
	// transactions on 2 busy cores.
	requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	// electionBuckets: v2 bounds an election to about 50 ms.
	electionBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	// importBuckets: an empty block to a full one, or a synced range.
	importBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// commitBuckets: one bbolt write transaction with its fsync.
	commitBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
)

// Import outcomes, the values of the outcome label of the import histogram.
const (
	OutcomeMain    = "main"    // joined the main chain (extended it or won a reorg)
	OutcomeSide    = "side"    // stored on a side branch
	OutcomeKnown   = "known"   // already known
	OutcomeOrphan  = "orphan"  // parent unknown
	OutcomeInvalid = "invalid" // broke a rule (the sender's fault)
	OutcomeError   = "error"   // a local failure: disk, halted, closing
)

// Import paths, the values of the path label of the import histogram.
const (
	PathBlock = "block" // one block (gossip, the forger, the API)
	PathRange = "range" // a range of blocks from sync, in one call
)

// Chain measures the chain manager: import, election and commit times.
// The counts of blocks and reorgs are the manager's own Stats, read at
// each scrape (see the daemon's registration).
type Chain struct {
	importDur   *prometheus.HistogramVec
	electionDur prometheus.Histogram
	commitDur   prometheus.Histogram
	evidence    *Evidence
	finality    *Finality
}

// Finality is the finality subsystem of the same Metrics, for the chain
// manager as Evidence is. Nil when c is nil (then a no-op).
func (c *Chain) Finality() *Finality {
	if c == nil {
		return nil
	}
	return c.finality
}

// Evidence is the evidence subsystem of the same Metrics, so the chain
// manager, which holds only its *Chain, counts evidence and slashings too:
// m.met.Evidence().Committed(n, burned). Nil when c is nil (then a no-op).
func (c *Chain) Evidence() *Evidence {
	if c == nil {
		return nil
	}
	return c.evidence
}

func newChain(reg prometheus.Registerer) *Chain {
	c := &Chain{
		importDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "block_import_duration_seconds",
			Help:    "Time to process a block (path=block) or a synced range (path=range), by outcome: checks, election, validation and commit.",
			Buckets: importBuckets,
		}, []string{"path", "outcome"}),
		electionDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "election_duration_seconds",
			Help:    "Time to run one forger election (once per parent block; cached results are not counted).",
			Buckets: electionBuckets,
		}),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "block_commit_duration_seconds",
			Help:    "Time of one store write that moves the main chain (blocks, state, undo records, head), fsync included.",
			Buckets: commitBuckets,
		}),
	}
	reg.MustRegister(c.importDur, c.electionDur, c.commitDur)
	return c
}

// ObserveImport records an import that took d on path (PathBlock,
// PathRange) with outcome (Outcome*).
func (c *Chain) ObserveImport(path, outcome string, d time.Duration) {
	if c == nil {
		return
	}
	c.importDur.WithLabelValues(path, outcome).Observe(d.Seconds())
}

// ObserveElection records an election that took d.
func (c *Chain) ObserveElection(d time.Duration) {
	if c == nil {
		return
	}
	c.electionDur.Observe(d.Seconds())
}

// ObserveCommit records a store commit that took d.
func (c *Chain) ObserveCommit(d time.Duration) {
	if c == nil {
		return
	}
	c.commitDur.Observe(d.Seconds())
}

// Transaction sources, the values of the source label.
const (
	SourceAPI = "api" // submitted to this node's API (or by the node itself)
	SourceP2P = "p2p" // gossiped by a peer
)

// maxCodes bounds the distinct code label values of a counter: codes come
// from the node's own rule errors, a set of a few dozen, but a bug must
// not become unbounded series. Further codes are counted as "other".
const maxCodes = 64

// OtherCode is the code label of rejections past maxCodes distinct codes,
// and of errors without a code.
const OtherCode = "other"

// Txs counts transactions offered to the pool: accepted, and rejected by
// rule code.
type Txs struct {
	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec

	mu    sync.Mutex
	codes map[string]bool
}

func newTxs(reg prometheus.Registerer) *Txs {
	t := &Txs{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "txs_accepted_total",
			Help: "Transactions the pool accepted (pending or queued), by source.",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "txs_rejected_total",
			Help: "Transactions the pool refused, by source and rule code (already_known, bad_nonce, insufficient_funds, ...).",
		}, []string{"source", "code"}),
		codes: make(map[string]bool),
	}
	reg.MustRegister(t.accepted, t.rejected)
	return t
}

// Accepted counts n transactions accepted from source.
func (t *Txs) Accepted(source string, n int) {
	if t == nil || n <= 0 {
		return
	}
	t.accepted.WithLabelValues(source).Add(float64(n))
}

// Admitted counts the verdicts of one admission from source: a nil error
// is an accepted transaction, any other a rejection by its rule code.
func (t *Txs) Admitted(source string, errs []error) {
	if t == nil {
		return
	}
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		t.Rejected(source, string(chain.CodeOf(err)))
	}
	t.Accepted(source, ok)
}

// Rejected counts one transaction refused from source with code ("" for an
// error without a rule code).
func (t *Txs) Rejected(source, code string) {
	if t == nil {
		return
	}
	t.rejected.WithLabelValues(source, t.boundCode(code)).Inc()
}

func (t *Txs) boundCode(code string) string {
	if code == "" {
		return OtherCode
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.codes[code] {
		return code
	}
	if len(t.codes) >= maxCodes {
		return OtherCode
	}
	t.codes[code] = true
	return code
}

// API measures HTTP requests by route pattern and status class.
type API struct {
	requestDur *prometheus.HistogramVec
}

func newAPI(reg prometheus.Registerer) *API {
	a := &API{requestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "api_request_duration_seconds",
		Help: "Time to answer an API request, by route pattern (\"GET /v1/blocks/{id}\"; \"unmatched\" for unknown paths and methods) " +
			"and status class (2xx, 4xx, 5xx). Streams (/v1/events, /blockchain) count when they end.",
		Buckets: requestBuckets,
	}, []string{"route", "status"})}
	reg.MustRegister(a.requestDur)
	return a
}

// UnmatchedRoute is the route label of requests no route matched.
const UnmatchedRoute = "unmatched"

// ObserveRequest records a request to route (a pattern of the API's route
// table, or UnmatchedRoute: never the raw path) answered with status in d.
func (a *API) ObserveRequest(route string, status int, d time.Duration) {
	if a == nil {
		return
	}
	a.requestDur.WithLabelValues(route, statusClass(status)).Observe(d.Seconds())
}

// statusClasses are the status label values, by status/100 (no
// allocation per request).
var statusClasses = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return statusClasses[status/100]
}

// Evidence counts equivocation evidence and the slashings it causes.
type Evidence struct {
	received  prometheus.Counter
	committed prometheus.Counter
	slashed   prometheus.Counter
}

func newEvidence(reg prometheus.Registerer) *Evidence {
	e := &Evidence{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "evidence_received_total",
			Help: "Valid equivocation evidence this node learned of (from gossip, the API, or two headers it saw), once per (forger, height).",
		}),
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "evidence_committed_total",
			Help: "Evidence carried by blocks that joined the main chain: each one a slashing.",
		}),
		slashed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "slashed_stake_total",
			Help: "Stake burned by slashings on the main chain.",
		}),
	}
	reg.MustRegister(e.received, e.committed, e.slashed)
	return e
}

// Received counts one piece of new, valid evidence.
func (e *Evidence) Received() {
	if e == nil {
		return
	}
	e.received.Inc()
}

// Committed counts n pieces of evidence committed on the main chain, which
// burned stake in total.
func (e *Evidence) Committed(n int, stake uint64) {
	if e == nil || n <= 0 {
		return
	}
	e.committed.Add(float64(n))
	e.slashed.Add(float64(stake))
}

// finalityBuckets: with epoch_blocks 1 and 2 s slots, a block is final
// about two beats after it is forged; a stall runs to minutes.
var finalityBuckets = []float64{.25, .5, 1, 2, 3, 4, 6, 8, 12, 20, 30, 60, 120, 300}

// Vote outcomes, the values of the outcome label of the votes counter.
const (
	VoteIncluded  = "included"  // carried by a block that joined the main chain
	VotePooled    = "pooled"    // valid and new: kept in the vote pool
	VoteDuplicate = "duplicate" // already in the pool or on the branch
	VoteStale     = "stale"     // its target is too old (or already final)
	VoteInvalid   = "invalid"   // bad signature, not a staker, unknown source, ... (the sender's fault)
	VoteSlashable = "slashable" // forms a double or surround pair: evidence
	VoteDropped   = "dropped"   // the pool was full
	VoteCast      = "cast"      // signed by this node's own voter
)

// voteOutcomes are the outcome label values Vote accepts; others count as
// OtherCode, so a bug cannot grow the series.
var voteOutcomes = map[string]bool{
	VoteIncluded: true, VotePooled: true, VoteDuplicate: true, VoteStale: true,
	VoteInvalid: true, VoteSlashable: true, VoteDropped: true, VoteCast: true,
}

// Finality measures the finality gadget (the v3 rules, docs/CONSENSUS.md): the justified
// and final heights, how long blocks take to become final, and the votes
// by outcome.
type Finality struct {
	justified prometheus.Gauge
	final     prometheus.Gauge
	toFinal   prometheus.Histogram
	votes     *prometheus.CounterVec
}

func newFinality(reg prometheus.Registerer) *Finality {
	f := &Finality{
		justified: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "justified_height",
			Help: "Height of the latest justified checkpoint on the main chain.",
		}),
		final: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "final_height",
			Help: "Height of the latest finalized checkpoint on the main chain: no reorg goes below it.",
		}),
		toFinal: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "time_to_finality_seconds",
			Help:    "Time from a block's timestamp to this node seeing it final, once per block that became final.",
			Buckets: finalityBuckets,
		}),
		votes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "votes_total",
			Help: "Finality votes by outcome: cast (by this node), pooled, included, duplicate, stale, invalid, slashable, dropped.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(f.justified, f.final, f.toFinal, f.votes)
	return f
}

// SetJustified records the height of the latest justified checkpoint.
func (f *Finality) SetJustified(height uint64) {
	if f == nil {
		return
	}
	f.justified.Set(float64(height))
}

// SetFinal records the height of the latest finalized checkpoint.
func (f *Finality) SetFinal(height uint64) {
	if f == nil {
		return
	}
	f.final.Set(float64(height))
}

// ObserveTimeToFinality records that a block became final d after its
// timestamp (call it for each block newly below the finalized checkpoint,
// or once per checkpoint with its own block's timestamp). Negative d
// (a block from a clock ahead) counts as 0.
func (f *Finality) ObserveTimeToFinality(d time.Duration) {
	if f == nil {
		return
	}
	f.toFinal.Observe(max(d, 0).Seconds())
}

// Votes counts n votes with outcome (Vote*).
func (f *Finality) Votes(outcome string, n int) {
	if f == nil || n <= 0 {
		return
	}
	if !voteOutcomes[outcome] {
		outcome = OtherCode
	}
	f.votes.WithLabelValues(outcome).Add(float64(n))
}
