// Package load generates load on a running posd network and measures
// what it commits: it makes sending keys in memory, funds them with
// EXCHANGE, signs every transfer before the clock starts, sends them in
// batches with bounded concurrency, and reads the blocks to see when each
// is committed (following reorgs). The transport is behind Node, progress
// goes to a callback, and the outcome is a Report.
package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
	"github.com/poslab/posd/lab/stats"
)

// Defaults of Config.
const (
	DefaultPoll = 50 * time.Millisecond
	// DefaultProgressEvery is how often Progress is called during a phase.
	DefaultProgressEvery = 100 * time.Millisecond
	// watchPage is how many blocks the commit watcher asks for at once (a
	// block may hold max_block_txs transactions).
	watchPage = 20
	// Amount is what each transfer moves; the fee is 0.
	Amount = 1
	// MinRate and MaxRate bound Config.Rate when it is not 0.
	MinRate = 0.01
	MaxRate = 1e9
	// DefaultMaxBackoff caps the pause after a node pushed back (pool_full,
	// busy), a Retry-After it asked for included.
	DefaultMaxBackoff = 5 * time.Second
	// minBackoff is the first pause after a push-back that named no wait.
	minBackoff = 20 * time.Millisecond
	// stallPolls is how many Polls the commits may stall, after the last
	// transfer is sent, before the load asks the senders' nodes whether
	// they still hold what is not committed.
	stallPolls = 40
)

// Config is one load run.
type Config struct {
	// Nodes are the nodes to send to; senders are spread over them and the
	// first one's blocks are watched. At least one.
	Nodes []Node
	// Senders is how many keys send; Txs how many transfers in all
	// (Senders ≤ Txs).
	Senders, Txs int
	// Concurrency is how many batches are in flight at once; Batch how many
	// transfers a batch holds.
	Concurrency, Batch int
	// Rate, if not 0, paces the sending at that many transfers per second
	// in all, at most (MinRate to MaxRate): a batch leaves when its turn
	// comes, not before; when the nodes fall behind it leaves when a
	// worker is free, and the pace does not make up for the lost time with
	// a burst. 0 sends as fast as the nodes take.
	Rate float64
	// TimeoutCommit bounds the wait for the funding and for the commits
	// after the last transfer is sent, and how long a node may push back
	// (pool_full, busy) without taking a transfer before the load gives up.
	TimeoutCommit time.Duration
	// MaxBackoff caps each pause after a push-back (default
	// DefaultMaxBackoff): pauses double from 20 ms, or last what the
	// node's Retry-After asked, up to it.
	MaxBackoff time.Duration
	// Poll is how often the commit watcher asks for new blocks and the
	// funding step for balances (default DefaultPoll).
	Poll time.Duration
	// Progress, if set, is called during each phase, every ProgressEvery
	// (default DefaultProgressEvery), from one goroutine at a time.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Phase is a step of a load run.
type Phase string

// The phases, in order.
const (
	PhaseFunding    Phase = "funding"
	PhaseSigning    Phase = "signing"
	PhaseSending    Phase = "sending"
	PhaseCommitting Phase = "committing"
)

// Progress is a snapshot of a running phase.
type Progress struct {
	Phase Phase
	// Done of Total: senders funded, transfers signed, transfers sent,
	// transfers committed (of those that can commit).
	Done, Total int
	// Refused, Deferred and Committed, while sending; Resent, while
	// sending and committing.
	Refused, Deferred, Resent, Committed int
}

// Latency are latency percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Report is what a load run measured. Its JSON is poscli load's -o json.
type Report struct {
	Nodes       []string       `json:"nodes"`
	Senders     int            `json:"senders"`
	Txs         int            `json:"txs"`
	Batch       int            `json:"batch"`
	Concurrency int            `json:"concurrency"`
	Rate        float64        `json:"rate"` // tx/s asked for; 0: unpaced
	Submitted   int            `json:"submitted"`
	Rejected    map[string]int `json:"rejected"`
	// Deferred counts the sends a node pushed back (pool_full, busy) or
	// refused for a gap its pool had opened (nonce_gap, queue_full): the
	// same transfers went again after a pause, and count once in
	// Submitted when taken.
	Deferred int `json:"deferred"`
	// Resent counts the transfers a node had accepted, then lost (its
	// pool evicted them to make room), and took again: told by a gap
	// refusal (nonce_gap, queue_full) of a later nonce, or, once the
	// commits stall, by a transfer not committed that its node's pending
	// nonce no longer covers, the load sent them again from the first
	// nonce the node lacked, in order. They count once in Submitted.
	Resent          int     `json:"resent"`
	Stranded        int     `json:"stranded"`
	Committed       int     `json:"committed"`
	Blocks          int     `json:"blocks"`
	FirstHeight     uint64  `json:"first_height"`
	LastHeight      uint64  `json:"last_height"`
	DurationS       float64 `json:"duration_s"`
	SubmitDurationS float64 `json:"submit_duration_s"`
	SubmittedTxPerS float64 `json:"submitted_tx_per_s"`
	CommittedTxPerS float64 `json:"committed_tx_per_s"`
	LatencyMs       Latency `json:"latency_ms"`
	// WatchErr is the last failure to read blocks, if the last read failed
	// (it explains missing commits).
	WatchErr error `json:"-"`
}

// Missing is how many accepted transfers that could commit did not.
func (r *Report) Missing() int { return r.Submitted - r.Stranded - r.Committed }

// The network refusals Run reports before it sends anything.
type (
	// MixedNetworkError: two of the nodes are on different chains.
	MixedNetworkError struct {
		URL, ChainID           string
		Genesis                chain.Hash
		OtherURL, OtherChainID string
		OtherGenesis           chain.Hash
	}
	// ClosedExchangeError: the network lets only its authorities EXCHANGE,
	// so the senders cannot be funded.
	ClosedExchangeError struct {
		ChainID     string
		Authorities int
	}
	// BatchTooLargeError: a batch would hold more than the network takes
	// in one request.
	BatchTooLargeError struct {
		Batch       int
		ChainID     string
		MaxBlockTxs int
	}
)

func (e *MixedNetworkError) Error() string {
	return fmt.Sprintf("%s is on chain %s (genesis %s) but %s on chain %s (genesis %s): give the nodes of one network",
		e.URL, e.ChainID, ShortHash(e.Genesis), e.OtherURL, e.OtherChainID, ShortHash(e.OtherGenesis))
}

func (e *ClosedExchangeError) Error() string {
	return fmt.Sprintf("load funds its senders with EXCHANGE, but network %s lets only its %d genesis authorities EXCHANGE: use a network whose genesis has \"exchange\": \"open\" (posd's default)", e.ChainID, e.Authorities)
}

func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("batch %d is more than network %s takes in one request (max_block_txs %d)", e.Batch, e.ChainID, e.MaxBlockTxs)
}

// ShortHash shortens a hash for messages: its first 10 hex characters and "…".
func ShortHash(h chain.Hash) string { return h.String()[:10] + "…" }

func (cfg *Config) validate() error {
	switch {
	case len(cfg.Nodes) == 0:
		return errors.New("load: no nodes")
	case cfg.Senders < 1:
		return fmt.Errorf("load: senders must be at least 1, got %d", cfg.Senders)
	case cfg.Txs < cfg.Senders:
		return fmt.Errorf("load: %d senders but %d transfers: every sender sends at least one", cfg.Senders, cfg.Txs)
	case cfg.Concurrency < 1:
		return fmt.Errorf("load: concurrency must be at least 1, got %d", cfg.Concurrency)
	case cfg.Batch < 1:
		return fmt.Errorf("load: batch must be at least 1, got %d", cfg.Batch)
	case cfg.TimeoutCommit <= 0:
		return fmt.Errorf("load: the commit timeout must be positive, got %s", cfg.TimeoutCommit)
	case cfg.Rate != 0 && !(cfg.Rate >= MinRate && cfg.Rate <= MaxRate):
		return fmt.Errorf("load: rate must be 0 (no pacing) or %g to %g transfers per second, got %v", MinRate, MaxRate, cfg.Rate)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	return nil
}

// Run funds, signs, sends and waits for the commits, and reports. It
// returns an error when the network cannot be loaded (unreachable, another
// network, closed exchange, funding not committed in time, a node failing
// to answer a batch); transfers not committed in time are in the report
// (Missing), not an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := &loader{cfg: cfg, nodes: cfg.Nodes, rejected: map[string]int{}}
	for _, n := range l.nodes {
		l.urls = append(l.urls, n.URL())
	}
	st, err := l.checkNetwork(ctx)
	if err != nil {
		return nil, err
	}
	l.chainID = st.ChainID
	if err := l.makeSenders(); err != nil {
		return nil, err
	}
	l.watch = newCommitWatcher(l.nodes[0], st.Height, st.HeadHash, cfg.Poll)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); l.watch.run(watchCtx) }()
	defer func() { stopWatch(); <-watchDone }()

	if err := l.fund(ctx); err != nil {
		return nil, err
	}
	if err := l.sign(ctx); err != nil {
		return nil, err
	}
	r, err := l.send(ctx)
	if err != nil {
		return nil, err
	}
	r.WatchErr = l.watch.err()
	return r, nil
}

// phase reports snapshots of a phase until the returned stop, which
// reports a last one.
func (l *loader) phase(snap func() Progress) (stop func()) {
	if l.cfg.Progress == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.cfg.ProgressEvery)
		defer t.Stop()
		for {
			l.cfg.Progress(snap())
			select {
			case <-quit:
				l.cfg.Progress(snap())
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// loadTx is a signed transfer and its id. sentAt: when the batch its node
// first accepted it in was sent (latency counts from there). resend: its
// node had accepted it, then lost it; it is queued to be sent again.
type loadTx struct {
	tx     chain.Transaction
	id     chain.Hash
	sentAt time.Time
	resend bool
}

// loadSender is one sending key. Once the transfers are signed, it belongs
// to one worker, which alone touches it until the workers are done.
type loadSender struct {
	key   *keystore.Key
	addr  chain.Address
	node  int    // index into the node clients
	quota int    // transfers it sends
	first uint64 // nonce of its first transfer

	queue    []loadTx        // to send, ascending nonces
	budget   int             // sends left
	accepted []loadTx        // each transfer once, as first accepted
	holes    map[uint64]bool // refused nonces that may still be filled
	// gap: the node refused a transfer of s for a gap (nonce_gap,
	// queue_full), or pushed one back after taking others (a full pool
	// may have evicted one of those): before its next batch, ask it which
	// nonces of s it holds (resync).
	gap bool
}

// lowHole is the lowest refused nonce of s not filled since, or
// math.MaxUint64: accepted transfers from it on cannot commit.
func (s *loadSender) lowHole() uint64 {
	low := uint64(math.MaxUint64)
	for n := range s.holes {
		low = min(low, n)
	}
	return low
}

// loader runs one load.
type loader struct {
	cfg     Config
	nodes   []Node
	urls    []string
	senders []*loadSender
	watch   *commitWatcher
	chainID string

	sent, accepted, refused, deferred, resent atomic.Int64
	pace                                      pacer // Config.Rate

	mu       sync.Mutex
	rejected map[string]int
	firstErr error
}

// checkNetwork checks that the nodes are one network that lets anyone
// EXCHANGE and takes batches of cfg.Batch, and returns the first node's status.
func (l *loader) checkNetwork(ctx context.Context) (rpc.Status, error) {
	st, err := l.nodes[0].Status(ctx)
	if err != nil {
		return st, err
	}
	for i, c := range l.nodes[1:] {
		other, err := c.Status(ctx)
		if err != nil {
			return st, err
		}
		if other.GenesisHash != st.GenesisHash {
			return st, &MixedNetworkError{URL: l.urls[0], ChainID: st.ChainID, Genesis: st.GenesisHash,
				OtherURL: l.urls[i+1], OtherChainID: other.ChainID, OtherGenesis: other.GenesisHash}
		}
	}
	g, err := l.nodes[0].Genesis(ctx)
	if err != nil {
		return st, err
	}
	if !g.Exchange.Open {
		return st, &ClosedExchangeError{ChainID: st.ChainID, Authorities: len(g.Exchange.Authorities)}
	}
	if g.MaxBlockTxs > 0 && l.cfg.Batch > g.MaxBlockTxs {
		return st, &BatchTooLargeError{Batch: l.cfg.Batch, ChainID: st.ChainID, MaxBlockTxs: g.MaxBlockTxs}
	}
	return st, nil
}

// makeSenders makes the keys and shares the transfers out between them.
func (l *loader) makeSenders() error {
	n := l.cfg.Senders
	for i := range n {
		k, err := keystore.Generate()
		if err != nil {
			return err
		}
		quota := l.cfg.Txs / n
		if i < l.cfg.Txs%n {
			quota++
		}
		l.senders = append(l.senders, &loadSender{
			key: k, addr: k.Address(), node: i % len(l.nodes), quota: quota, budget: quota,
			holes: map[uint64]bool{},
		})
	}
	return nil
}

// fund sends each sender an EXCHANGE of the coins it will send and waits
// until it is committed and its node shows the balance.
func (l *loader) fund(ctx context.Context) error {
	poll := l.cfg.Poll
	var funded atomic.Int64
	stop := l.phase(func() Progress {
		return Progress{Phase: PhaseFunding, Done: int(funded.Load()), Total: len(l.senders)}
	})
	defer stop()
	byNode := make([][]chain.Transaction, len(l.nodes))
	var ids []chain.Hash
	for _, s := range l.senders {
		acc, err := l.nodes[s.node].Account(ctx, s.addr)
		if err != nil {
			return err
		}
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: l.chainID, To: s.addr,
			Amount: uint64(s.quota) * Amount, Nonce: pendingNonce(acc) + 1}
		s.key.SignTx(&tx)
		byNode[s.node] = append(byNode[s.node], tx)
		ids = append(ids, tx.ID())
	}
	l.watch.watch(ids, false)
	for n, txs := range byNode {
		for start := 0; start < len(txs); start += l.cfg.Batch {
			if err := l.fundChunk(ctx, n, txs[start:min(start+l.cfg.Batch, len(txs))]); err != nil {
				return fmt.Errorf("funding the senders: %w", err)
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.TimeoutCommit)
	defer cancel()
	if got := l.watch.waitFor(wctx, ids, poll); got < len(ids) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("funding the senders: %d of %d EXCHANGEs were committed within %s; is the network forging?", got, len(ids), l.cfg.TimeoutCommit)
	}
	// Each sender's node must have the funding block before it takes the
	// sender's transfers (a pool checks them against committed balances).
	for _, s := range l.senders {
		for {
			acc, err := l.nodes[s.node].Account(wctx, s.addr)
			if err == nil && acc.Balance >= uint64(s.quota)*Amount {
				s.first = pendingNonce(acc) + 1
				break
			}
			if wctx.Err() != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("funding the senders: %s does not show the funded balance of %s within %s", l.urls[s.node], s.addr, l.cfg.TimeoutCommit)
			}
			if err != nil && !isTransient(err) {
				return err
			}
			sleepCtx(wctx, poll)
		}
		funded.Add(1)
	}
	return nil
}

// fundChunk sends one batch of EXCHANGEs to node n, sending again what the
// node pushed back (pool_full, busy) after a pause, as work does.
func (l *loader) fundChunk(ctx context.Context, n int, chunk []chain.Transaction) error {
	var since time.Time
	pause := time.Duration(0)
	for tries := 1; ; tries++ {
		res, err := l.nodes[n].SubmitTxs(ctx, chunk)
		var re *RefusedError
		var again []chain.Transaction
		code, wait := "", time.Duration(0)
		switch {
		case errors.As(err, &re) && pushback(re.Code):
			again, code, wait = chunk, re.Code, re.RetryAfter
		case err != nil:
			return err
		case len(res) != len(chunk):
			return fmt.Errorf("%s answered %d results for a batch of %d transfers", l.urls[n], len(res), len(chunk))
		}
		for i, r := range res {
			switch {
			case r.Error == nil:
			case pushback(r.Error.Code):
				again, code = append(again, chunk[i]), r.Error.Code
			default:
				return fmt.Errorf("%s refused the EXCHANGE to %s: %s: %s", l.urls[n], chunk[i].To, r.Error.Code, r.Error.Message)
			}
		}
		if len(again) == 0 {
			return nil
		}
		if len(again) < len(chunk) || since.IsZero() {
			since, tries = time.Now(), 1
		}
		if d := time.Since(since); d > l.cfg.TimeoutCommit {
			return &PushbackError{URL: l.urls[n], Code: code, Tries: tries, For: d}
		}
		chunk = again
		pause = min(max(2*pause, minBackoff, wait), l.cfg.MaxBackoff)
		sleepCtx(ctx, pause)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// pendingNonce is the nonce of the account's last pooled transaction, or
// of its last committed one.
func pendingNonce(acc rpc.Account) uint64 {
	if acc.PendingNonce != nil {
		return *acc.PendingNonce
	}
	return acc.Nonce
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sign signs every sender's transfers, sender i paying sender i+1, on all
// cores.
func (l *loader) sign(ctx context.Context) error {
	var done atomic.Int64
	stop := l.phase(func() Progress {
		return Progress{Phase: PhaseSigning, Done: int(done.Load()), Total: l.cfg.Txs}
	})
	defer stop()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(l.senders) || ctx.Err() != nil {
					return
				}
				s := l.senders[i]
				to := l.senders[(i+1)%len(l.senders)].addr
				s.queue = make([]loadTx, 0, s.quota)
				ids := make([]chain.Hash, 0, s.quota)
				for k := range s.quota {
					tx := chain.Transaction{Type: chain.TxTransfer, ChainID: l.chainID, To: to, Amount: Amount, Nonce: s.first + uint64(k)}
					s.key.SignTx(&tx)
					s.queue = append(s.queue, loadTx{tx: tx, id: tx.ID()})
					ids = append(ids, s.queue[k].id)
				}
				// Watched before sent: a commit is never missed.
				l.watch.watch(ids, true)
				done.Add(int64(s.quota))
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// pushback reports whether a refusal with code is the node asking for
// time (its pool full, its request budget spent), not a verdict on the
// transfer: it is sent again after a pause, and does not count as a send.
func pushback(code string) bool {
	switch code {
	case "pool_full", "busy", "too_many_connections":
		return true
	}
	return false
}

// PushbackError ends a load whose node kept pushing back (pool_full,
// busy) for longer than TimeoutCommit without taking a transfer.
type PushbackError struct {
	URL   string
	Code  string
	Tries int
	For   time.Duration
}

func (e *PushbackError) Error() string {
	return fmt.Sprintf("%s took no transfer for %s: answered %s %d times in a row (is its pool draining? is the network forging?)",
		e.URL, e.For.Round(time.Millisecond), e.Code, e.Tries)
}

// retryable reports whether a transfer refused with code leaves its nonce
// free, to be filled by sending it again.
func retryable(code string) bool {
	switch code {
	case "bad_nonce", "nonce_in_use", "already_known":
		return false
	}
	return true
}

// send sends every transfer, waits for the commits and measures.
func (l *loader) send(ctx context.Context) (*Report, error) {
	opts := l.cfg
	workers := min(opts.Concurrency, len(l.senders))
	mine := make([][]*loadSender, workers)
	for i, s := range l.senders {
		mine[i%workers] = append(mine[i%workers], s)
	}
	stop := l.phase(func() Progress {
		return Progress{Phase: PhaseSending, Done: int(l.sent.Load()), Total: opts.Txs,
			Refused: int(l.refused.Load()), Deferred: int(l.deferred.Load()), Resent: int(l.resent.Load()), Committed: l.watch.transfersSeen()}
	})
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	l.pace.start(start, opts.Rate)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			if err := l.work(sctx, mine[w]); err != nil {
				l.mu.Lock()
				if l.firstErr == nil {
					l.firstErr = err
				}
				l.mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	submitEnd := time.Now()
	stop()
	if l.firstErr != nil {
		return nil, l.firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// What can commit: the accepted transfers below each sender's lowest
	// unfilled refused nonce.
	expect, _ := l.expected()
	stop = l.phase(func() Progress {
		c := l.watch.transfersSeen()
		return Progress{Phase: PhaseCommitting, Done: c, Total: len(expect), Resent: int(l.resent.Load()), Committed: c}
	})
	wctx, wcancel := context.WithTimeout(ctx, opts.TimeoutCommit)
	err := l.settle(wctx, expect)
	wcancel()
	stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	waitEnd := time.Now()
	// A transfer sent again and refused may have opened a hole.
	expect, stranded := l.expected()

	seen, committed, blocks, first, last, lastSeen := l.watch.summary()
	var lat []float64
	for _, s := range l.senders {
		for _, t := range s.accepted {
			if c, ok := seen[t.id]; ok {
				lat = append(lat, float64(c.Sub(t.sentAt))/float64(time.Millisecond))
			}
		}
	}
	slices.Sort(lat)
	end := waitEnd // not everything committed: the whole wait counts
	switch {
	case len(expect) == 0:
		end = submitEnd
	case committed >= len(expect):
		end = lastSeen
	}
	r := &Report{
		Nodes: l.urls, Senders: len(l.senders), Txs: opts.Txs, Batch: opts.Batch, Concurrency: opts.Concurrency, Rate: opts.Rate,
		Submitted: int(l.accepted.Load()), Rejected: l.rejected, Deferred: int(l.deferred.Load()), Resent: int(l.resent.Load()),
		Stranded: stranded, Committed: committed,
		Blocks: blocks, FirstHeight: first, LastHeight: last,
		DurationS:       round3(end.Sub(start).Seconds()),
		SubmitDurationS: round3(submitEnd.Sub(start).Seconds()),
		LatencyMs: Latency{
			P50: round3(stats.Percentile(lat, 50)), P95: round3(stats.Percentile(lat, 95)),
			P99: round3(stats.Percentile(lat, 99)), Max: round3(stats.Percentile(lat, 100)),
		},
	}
	if d := submitEnd.Sub(start).Seconds(); d > 0 {
		r.SubmittedTxPerS = math.Round(float64(r.Submitted)/d*10) / 10
	}
	if d := end.Sub(start).Seconds(); d > 0 {
		r.CommittedTxPerS = math.Round(float64(r.Committed)/d*10) / 10
	}
	return r, nil
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// expected returns the accepted transfers that can commit (those below
// their sender's lowest unfilled refused nonce) and how many cannot.
func (l *loader) expected() (expect []chain.Hash, stranded int) {
	for _, s := range l.senders {
		low := s.lowHole()
		for _, t := range s.accepted {
			if t.tx.Nonce < low {
				expect = append(expect, t.id)
			} else {
				stranded++
			}
		}
	}
	return expect, stranded
}

// settle waits until every transfer of expect is seen committed or ctx
// ends. When no transfer of the load has committed for stallPolls polls,
// it asks the node of each sender with transfers not seen whether it still
// holds them, and sends again, as the workers do, what a node no longer
// holds (resync): a pool may evict a transfer it had accepted, and no
// later transfer of the sender is left to be refused for the gap. An
// error is a node failing to take a batch (as while sending).
func (l *loader) settle(ctx context.Context, expect []chain.Hash) error {
	every := stallPolls * l.cfg.Poll
	for {
		before := l.watch.transfersSeen()
		rctx, cancel := context.WithTimeout(ctx, every)
		got := l.watch.waitFor(rctx, expect, l.cfg.Poll)
		cancel()
		if got == len(expect) || ctx.Err() != nil {
			return nil
		}
		if l.watch.transfersSeen() != before {
			continue // still committing
		}
		lost := l.findLost(ctx)
		if len(lost) == 0 {
			continue
		}
		if err := l.work(ctx, lost); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// findLost asks, Concurrency at a time, the node of every sender with
// transfers that can commit and are not seen committed whether it still
// holds them, queues again what it lost (resync) and returns the senders
// with something to send. A node that does not answer is asked again at
// the next stall.
func (l *loader) findLost(ctx context.Context) []*loadSender {
	var check []*loadSender
	for _, s := range l.senders {
		if l.watch.anyUnseen(s.accepted, s.lowHole()) {
			check = append(check, s)
		}
	}
	var mu sync.Mutex
	var lost []*loadSender
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(l.cfg.Concurrency, len(check)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(check) || ctx.Err() != nil {
					return
				}
				s := check[i]
				if k, err := l.resync(ctx, s, s.lowHole()); err == nil && k > 0 {
					mu.Lock()
					lost = append(lost, s)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return lost
}

// resync asks s's node for the end of the run of s's nonces it holds
// (its pending nonce: the account nonce when it holds none) and puts
// back at the front of s's queue, in nonce order, every transfer of s
// above that end, below the first still queued and below nonce below,
// that the node had accepted and is not seen committed; it returns how
// many. Those above the first queued nonce are left alone: the node may
// hold them above the gap, and the gap's refusals will tell. Each keeps
// its first send time (its latency counts the loss), and sending it again
// is not one of the --txs sends.
func (l *loader) resync(ctx context.Context, s *loadSender, below uint64) (int, error) {
	acc, err := l.nodes[s.node].Account(ctx, s.addr)
	if err != nil {
		return 0, err
	}
	s.gap = false
	held := max(pendingNonce(acc), acc.Nonce)
	if len(s.queue) > 0 {
		below = min(below, s.queue[0].tx.Nonce)
	}
	var lost []loadTx
	for _, t := range s.accepted {
		if n := t.tx.Nonce; n > held && n < below {
			t.resend = true
			lost = append(lost, t)
		}
	}
	lost = l.watch.unseen(lost)
	if len(lost) == 0 {
		return 0, nil
	}
	slices.SortFunc(lost, func(a, b loadTx) int { return cmp.Compare(a.tx.Nonce, b.tx.Nonce) })
	s.queue = append(lost, s.queue...)
	s.budget += len(lost)
	return len(lost), nil
}

// work sends the transfers of senders, one batch at a time: a batch holds
// the senders of one node, their transfers interleaved, each sender's in
// nonce order; the worker goes round the nodes. A node that pushes back
// (pool_full, busy) gets a pause, doubling while it goes on, or what its
// Retry-After asked, at most MaxBackoff; one that takes nothing for
// TimeoutCommit ends the load with a *PushbackError. A pause is the
// node's alone: the worker goes on with the other nodes meanwhile, and
// sleeps only when every node it has transfers for is pausing. A
// nonce_gap or queue_full (not behind a push-back) is a push-back too,
// and before the node's next batch the worker asks it which nonces of
// the sender it lacks and queues them again (resync).
func (l *loader) work(ctx context.Context, senders []*loadSender) error {
	byNode := make([][]*loadSender, len(l.nodes))
	for _, s := range senders {
		byNode[s.node] = append(byNode[s.node], s)
	}
	type stall struct {
		since   time.Time
		tries   int
		pause   time.Duration // after a push-back
		backoff time.Duration // after a batch refused whole
		next    time.Time     // no batch to the node before
	}
	stalls := make([]stall, len(l.nodes))
	for {
		idle := true
		var wake time.Time // the earliest end of a pause, when every node with work pauses
		ready := false
		for n, group := range byNode {
			if !hasQueued(group) {
				continue
			}
			idle = false
			st := &stalls[n]
			if now := time.Now(); now.Before(st.next) {
				if wake.IsZero() || st.next.Before(wake) {
					wake = st.next
				}
				continue
			}
			ready = true
			for _, s := range group {
				if !s.gap {
					continue
				}
				if _, err := l.resync(ctx, s, math.MaxUint64); err != nil && !isTransient(err) {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return fmt.Errorf("asking %s for the pending nonce of %s: %w", l.urls[n], s.addr, err)
				}
			}
			batch, from := l.takeBatch(group)
			if err := l.pace.wait(ctx, len(batch)); err != nil {
				return err
			}
			out, err := l.submit(ctx, n, batch, from)
			if err != nil {
				return err
			}
			if out.deferred > 0 {
				if out.deferred == len(batch) {
					if st.tries == 0 {
						st.since = time.Now()
					}
					st.tries++
					if d := time.Since(st.since); d > l.cfg.TimeoutCommit {
						return &PushbackError{URL: l.urls[n], Code: out.code, Tries: st.tries, For: d}
					}
				} else {
					st.tries = 0
				}
				st.pause = min(max(2*st.pause, minBackoff, out.retryAfter), l.cfg.MaxBackoff)
				st.next = time.Now().Add(st.pause)
				continue
			}
			st.since, st.tries, st.pause = time.Time{}, 0, 0
			if out.refused == len(batch) { // the node takes nothing: let it breathe
				st.backoff = min(max(2*st.backoff, 10*time.Millisecond), 500*time.Millisecond)
				st.next = time.Now().Add(st.backoff)
			} else {
				st.backoff = 0
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if idle {
			return nil
		}
		if !ready && !wake.IsZero() {
			sleepCtx(ctx, time.Until(wake))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// hasQueued reports whether some sender of group has transfers to send.
func hasQueued(group []*loadSender) bool {
	for _, s := range group {
		if len(s.queue) > 0 {
			return true
		}
	}
	return false
}

// pacer spaces the batches of a paced load: each takes its transfers'
// share of the time (n/rate), in the order the workers ask.
type pacer struct {
	mu   sync.Mutex
	rate float64   // transfers per second; 0: no pacing
	next time.Time // when the next batch may leave
}

func (p *pacer) start(at time.Time, rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate, p.next = rate, at
}

// wait returns when a batch of n transfers may leave, or ctx's error.
func (p *pacer) wait(ctx context.Context, n int) error {
	p.mu.Lock()
	if p.rate <= 0 {
		p.mu.Unlock()
		return nil
	}
	at := p.next
	if now := time.Now(); now.After(at) {
		at = now // late: no burst to catch up
	}
	p.next = at.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		sleepCtx(ctx, d)
	}
	return ctx.Err()
}

// takeBatch takes up to --batch transfers from the senders' queues, one
// from each in turn.
func (l *loader) takeBatch(group []*loadSender) ([]loadTx, []*loadSender) {
	var batch []loadTx
	var from []*loadSender
	for len(batch) < l.cfg.Batch {
		took := false
		for _, s := range group {
			if len(s.queue) == 0 || len(batch) == l.cfg.Batch {
				continue
			}
			batch = append(batch, s.queue[0])
			from = append(from, s)
			s.queue = s.queue[1:]
			s.budget--
			took = true
		}
		if !took {
			break
		}
	}
	return batch, from
}

// sent is what a node answered to one batch.
type sent struct {
	refused    int           // refused as sends (counted in Rejected)
	deferred   int           // pushed back, to be sent again
	code       string        // a push-back's code
	retryAfter time.Duration // the wait a push-back asked for
}

// gapCode reports whether a transfer refused with code, its sender's
// transfers being sent in nonce order, shows that the node lacks an
// earlier nonce of the sender: too far above the run the node holds
// (nonce_gap), or no room left for transactions above a gap (queue_full).
func gapCode(code string) bool { return code == "nonce_gap" || code == "queue_full" }

// heldOrCommitted reports whether a transfer sent again and refused with
// code is where the load wants it: pooled already (already_known; the node
// had kept it above the gap) or its nonce used (committed meanwhile).
func heldOrCommitted(code string) bool {
	switch code {
	case "already_known", "nonce_in_use", "bad_nonce":
		return true
	}
	return false
}

// submit sends one batch to node n and books what the node answered; an
// error means the node could not be asked and ends the load.
func (l *loader) submit(ctx context.Context, n int, items []loadTx, from []*loadSender) (sent, error) {
	var out sent
	batch := make([]chain.Transaction, len(items))
	for i := range items {
		batch[i] = items[i].tx
	}
	sentAt := time.Now()
	res, err := l.nodes[n].SubmitTxs(ctx, batch)
	var re *RefusedError
	switch {
	case err == nil && len(res) != len(batch):
		return out, fmt.Errorf("%s answered %d results for a batch of %d transfers", l.urls[n], len(res), len(batch))
	case errors.As(err, &re):
		// The whole batch was refused (pool shutting down, busy, ...).
		res = make([]rpc.SubmitResult, len(batch))
		for i := range res {
			res[i].Error = &rpc.Error{Code: re.Code, Message: re.Message}
		}
		out.retryAfter = re.RetryAfter
	case err != nil:
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, fmt.Errorf("sending transfers to %s failed: %w", l.urls[n], err)
	}
	accepted, refused, resent := 0, 0, 0
	back := map[*loadSender][]loadTx{}
	codes := map[string]int{}
	for i, r := range res {
		s, t := from[i], items[i]
		if r.ID != nil {
			t.id = *r.ID
		}
		if r.Error == nil {
			delete(s.holes, t.tx.Nonce)
			if t.resend { // booked when first accepted, its send time kept
				resent++ // the node had lost it
				continue
			}
			accepted++
			t.sentAt = sentAt
			s.accepted = append(s.accepted, t)
			continue
		}
		code := r.Error.Code
		switch {
		// Not a send: the same transfer goes again, its budget kept. A
		// gap refusal behind a pushed-back nonce of the same sender is the
		// push-back's doing; any other shows the node lost an earlier
		// transfer of the sender. Either way, before the sender's next
		// batch the node is asked which nonces it holds: a full pool
		// pushing back may have evicted a transfer it had taken.
		case pushback(code) || gapCode(code):
			out.deferred++
			if pushback(code) {
				out.code = code
			} else if out.code == "" {
				out.code = code
			}
			if gapCode(code) || len(s.accepted) > 0 {
				s.gap = true
			}
			s.budget++
			back[s] = append(back[s], t)
			continue
		case t.resend && heldOrCommitted(code):
			continue // the node kept it above the gap, or it committed
		}
		refused++
		codes[code]++
		if retryable(code) {
			s.holes[t.tx.Nonce] = true
			back[s] = append(back[s], t)
		}
	}
	// Refused transfers go back to the front of their queue, to be sent
	// again; the queue is cut to the sends left.
	for s, txs := range back {
		s.queue = append(txs, s.queue...)
		if len(s.queue) > s.budget {
			s.queue = s.queue[:s.budget]
		}
	}
	l.sent.Add(int64(accepted + refused))
	l.accepted.Add(int64(accepted))
	l.deferred.Add(int64(out.deferred))
	l.resent.Add(int64(resent))
	out.refused = refused
	if refused > 0 {
		l.refused.Add(int64(refused))
		l.mu.Lock()
		for c, k := range codes {
			l.rejected[c] += k
		}
		l.mu.Unlock()
	}
	return out, nil
}

// commitWatcher reads the transaction ids of every new block of one node
// (GET /v1/blocks/txids: no bodies) from a starting height and notes when
// it first saw each watched transaction. When a block does not follow the
// last one read (a reorg), it forgets the last block read and reads again
// from there.
type commitWatcher struct {
	c    Node
	poll time.Duration

	mu sync.Mutex
	// watched holds every transaction looked for, and whether and when
	// it was seen: one map of pointer-free entries, which a commit looks
	// up once and the collector does not scan.
	watched   map[chain.Hash]watchEntry
	start     time.Time  // seen times are kept as offsets from it
	next      uint64     // height to read next
	base      chain.Hash // hash of the block at the starting height
	read      []watchedBlock
	transfers int
	lastErr   error
}

// watchEntry is one watched transaction: a TRANSFER or not, and when the
// blocks read first held it (seen).
type watchEntry struct {
	transfer bool
	seen     bool
	at       time.Duration // since the watcher's start
}

// watchedBlock is a block read, with the watched transactions in it.
type watchedBlock struct {
	height    uint64
	hash      chain.Hash
	ids       []chain.Hash
	transfers int
}

func newCommitWatcher(c Node, height uint64, head chain.Hash, poll time.Duration) *commitWatcher {
	return &commitWatcher{c: c, poll: poll, next: height + 1, base: head, watched: map[chain.Hash]watchEntry{}, start: time.Now()}
}

// watch adds ids to the transactions looked for; call it before they are
// sent.
func (w *commitWatcher) watch(ids []chain.Hash, transfers bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		e := w.watched[id]
		e.transfer = transfers
		w.watched[id] = e
	}
}

// run reads blocks until ctx ends.
func (w *commitWatcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.mu.Lock()
		from := w.next
		w.mu.Unlock()
		blocks, err := w.c.BlockTxIDs(ctx, &from, watchPage)
		now := time.Now()
		w.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				w.lastErr = err
			}
		} else {
			w.lastErr = nil
			w.add(blocks, now)
		}
		w.mu.Unlock()
		if err != nil || len(blocks) < watchPage {
			sleepCtx(ctx, w.poll)
		}
	}
}

// add books blocks read at now. w.mu is held.
func (w *commitWatcher) add(blocks []rpc.BlockTxIDs, now time.Time) {
	for i := range blocks {
		b := &blocks[i]
		if b.Height != w.next {
			return
		}
		tip := w.base
		if len(w.read) > 0 {
			tip = w.read[len(w.read)-1].hash
		}
		if b.PrevHash != tip && len(w.read) > 0 {
			// The node switched branches: forget the last block read.
			last := w.read[len(w.read)-1]
			for _, id := range last.ids {
				e := w.watched[id]
				e.seen = false
				w.watched[id] = e
			}
			w.transfers -= last.transfers
			w.read = w.read[:len(w.read)-1]
			w.next--
			return
		}
		wb := watchedBlock{height: b.Height, hash: b.Hash}
		for _, id := range b.TxIDs {
			e, ok := w.watched[id]
			if !ok || e.seen {
				continue
			}
			e.seen, e.at = true, now.Sub(w.start)
			w.watched[id] = e
			wb.ids = append(wb.ids, id)
			if e.transfer {
				wb.transfers++
			}
		}
		w.transfers += wb.transfers
		w.read = append(w.read, wb)
		w.next++
	}
}

// waitFor waits until every id has been seen or ctx ends, and returns how
// many were seen.
func (w *commitWatcher) waitFor(ctx context.Context, ids []chain.Hash, poll time.Duration) int {
	i := 0
	for {
		w.mu.Lock()
		for i < len(ids) {
			if !w.isSeen(ids[i]) {
				break
			}
			i++
		}
		w.mu.Unlock()
		if i == len(ids) || ctx.Err() != nil {
			if i < len(ids) { // count the rest too
				w.mu.Lock()
				for _, id := range ids[i:] {
					if w.isSeen(id) {
						i++
					}
				}
				w.mu.Unlock()
			}
			return i
		}
		sleepCtx(ctx, poll)
	}
}

// unseen returns the transfers of txs not seen committed.
func (w *commitWatcher) unseen(txs []loadTx) []loadTx {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.DeleteFunc(txs, func(t loadTx) bool {
		return w.isSeen(t.id)
	})
}

// anyUnseen reports whether a transfer of txs with a nonce below below
// is not seen committed.
func (w *commitWatcher) anyUnseen(txs []loadTx, below uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range txs {
		if !w.isSeen(t.id) && t.tx.Nonce < below {
			return true
		}
	}
	return false
}

// isSeen reports whether the blocks read hold id. w.mu is held.
func (w *commitWatcher) isSeen(id chain.Hash) bool { return w.watched[id].seen }

// transfersSeen is how many watched TRANSFERs the blocks read hold.
func (w *commitWatcher) transfersSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.transfers
}

// err is the last failure to read blocks, if the last read failed.
func (w *commitWatcher) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// summary returns when each watched transaction was seen, how many
// watched TRANSFERs the blocks hold, how many blocks hold them and their
// first and last heights, and when the last of them was seen.
func (w *commitWatcher) summary() (seen map[chain.Hash]time.Time, transfers, blocks int, first, last uint64, lastSeen time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	transfers = w.transfers
	seen = make(map[chain.Hash]time.Time, w.transfers)
	for _, b := range w.read {
		if b.transfers == 0 {
			continue
		}
		if blocks == 0 {
			first = b.height
		}
		blocks++
		last = b.height
		for _, id := range b.ids {
			lastSeen = w.start.Add(w.watched[id].at)
			seen[id] = lastSeen
		}
	}
	return seen, transfers, blocks, first, last, lastSeen
}
