package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/keystore"
)

// LoadOptions are the options of `poscli load`.
type LoadOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	// Client is the client of --node, used when --nodes is not given.
	Client func(...client.Option) (*client.Client, error)
	// NodeClient is a client of one of --nodes, with the global --timeout.
	NodeClient func(url string, extra ...client.Option) *client.Client
	Ctx        context.Context
	// PollInterval is how often the commit watcher asks for new blocks and
	// the funding step for balances.
	PollInterval time.Duration

	Senders       int
	Txs           int
	Concurrency   int
	Batch         int
	Nodes         []string
	TimeoutCommit time.Duration
}

// Defaults of `poscli load`.
const (
	defaultLoadPoll = 50 * time.Millisecond
	// loadWatchPage is how many blocks the commit watcher asks for at once
	// (a block may hold max_block_txs transactions).
	loadWatchPage = 20
	// loadAmount is what each transfer moves; the fee is 0.
	loadAmount = 1
)

// NewCmdLoad builds `poscli load`.
func NewCmdLoad(f *Factory, runF func(*LoadOptions) error) *cobra.Command {
	opts := &LoadOptions{
		IO: f.IO, Globals: f.Globals, Client: f.Client, PollInterval: defaultLoadPoll,
		NodeClient: func(url string, extra ...client.Option) *client.Client {
			return client.New(url, append([]client.Option{
				client.WithTimeout(f.Globals.Timeout),
				client.WithUserAgent("poscli/" + f.Version),
			}, extra...)...)
		},
	}
	cmd := &cobra.Command{
		Use:   "load [--senders N] [--txs N] [--batch B] [--concurrency C] [--nodes URL,...]",
		Short: "Send a load of transfers to a node or devnet and measure it",
		Long: `Generate load on a running network and measure what it commits.

1. Make --senders keys, in memory only (nothing is saved).
2. Fund each with an EXCHANGE of the coins it will send (the network must
   let anyone EXCHANGE: genesis "exchange": "open") and wait until every
   node a sender uses shows the balance.
3. Sign --txs TRANSFERs of 1 coin, fee 0, sender i to sender i+1: each
   sender counts its own nonces from its account's pending_nonce + 1.
   Signing is done before the clock starts.
4. Send them in batches of --batch (POST /v1/txs with an array), --concurrency
   requests at a time. Senders are spread over --nodes (default: --node);
   all of a sender's transactions go to its one node, in nonce order, so
   they arrive in order. A refused transfer is counted under its error code
   and, unless its nonce is taken (bad_nonce, nonce_in_use, already_known),
   sent again later: the total sent is --txs either way.
5. Wait until every accepted transfer is committed, or --timeout-commit.

Commits are counted from the blocks themselves: from the start, poscli
reads every new block of the first node (GET /v1/blocks, every 50 ms) and
counts the load's transfers in it, following reorgs. A transfer's latency
runs from the moment its batch was sent to the moment poscli saw the block
holding it on that node (not the block's timestamp). submitted_tx_per_s is
the accepted transfers over the time from the first batch sent to the last
answer; committed_tx_per_s the committed transfers over the time from the
first batch sent to the last of them seen in a block (duration_s).

A terminal shows progress on stderr. The exit status is 1 when accepted
transfers were not all committed in time (after the report).

JSON (-o json): {"nodes": [string], "senders", "txs", "batch",
"concurrency", "submitted", "rejected": {code: count}, "stranded",
"committed", "blocks", "first_height", "last_height", "duration_s",
"submit_duration_s", "submitted_tx_per_s", "committed_tx_per_s",
"latency_ms": {"p50", "p95", "p99", "max"}}. submitted counts the transfers
a node accepted; stranded those accepted behind a refused nonce that was
never filled (they cannot commit); blocks the blocks holding the load's
transfers, between first_height and last_height.`,
		Example: `  poscli load --senders 10 --txs 2000
  poscli load --senders 50 --txs 50000 --batch 500 --concurrency 4
  poscli load --nodes http://127.0.0.1:5001,http://127.0.0.1:5002,http://127.0.0.1:5003 --txs 30000 --batch 500
  poscli load --txs 5000 -o json | jq .latency_ms`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return loadRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Senders, "senders", 10, "how many sending keys to make and fund")
	fl.IntVar(&opts.Txs, "txs", 1000, "how many transfers to send in all")
	fl.IntVar(&opts.Concurrency, "concurrency", 4, "how many requests in flight at once")
	fl.IntVar(&opts.Batch, "batch", 100, "transfers per request (at most the network's max_block_txs)")
	fl.StringSliceVar(&opts.Nodes, "nodes", nil, "spread the senders over these node `URL`s (default: --node); the first one's blocks are watched")
	fl.DurationVar(&opts.TimeoutCommit, "timeout-commit", 60*time.Second, "how long to wait for the commits after the last transfer is sent (also for the funding)")
	return cmd
}

// loadLatencyJSON are latency percentiles in milliseconds.
type loadLatencyJSON struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// loadJSON is the JSON shape of `poscli load`.
type loadJSON struct {
	Nodes           []string        `json:"nodes"`
	Senders         int             `json:"senders"`
	Txs             int             `json:"txs"`
	Batch           int             `json:"batch"`
	Concurrency     int             `json:"concurrency"`
	Submitted       int             `json:"submitted"`
	Rejected        map[string]int  `json:"rejected"`
	Stranded        int             `json:"stranded"`
	Committed       int             `json:"committed"`
	Blocks          int             `json:"blocks"`
	FirstHeight     uint64          `json:"first_height"`
	LastHeight      uint64          `json:"last_height"`
	DurationS       float64         `json:"duration_s"`
	SubmitDurationS float64         `json:"submit_duration_s"`
	SubmittedTxPerS float64         `json:"submitted_tx_per_s"`
	CommittedTxPerS float64         `json:"committed_tx_per_s"`
	LatencyMs       loadLatencyJSON `json:"latency_ms"`
}

// loadTx is a signed transfer and its id.
type loadTx struct {
	tx chain.Transaction
	id chain.Hash
}

// loadSender is one sending key. Once the transfers are signed, it belongs
// to one worker, which alone touches it until the workers are done.
type loadSender struct {
	key   *keystore.Key
	addr  chain.Address
	node  int    // index into the node clients
	quota int    // transfers it sends
	first uint64 // nonce of its first transfer

	queue    []loadTx // to send, ascending nonces
	budget   int      // sends left
	sentAt   map[chain.Hash]time.Time
	accepted []loadTx
	holes    map[uint64]bool // refused nonces that may still be filled
}

// loader runs one `poscli load`.
type loader struct {
	opts    *LoadOptions
	nodes   []*client.Client
	urls    []string
	senders []*loadSender
	watch   *commitWatcher
	chainID string

	sent, accepted, refused atomic.Int64

	mu       sync.Mutex
	rejected map[string]int
	firstErr error
}

func loadRun(opts *LoadOptions) error {
	switch {
	case opts.Senders < 1:
		return fmt.Errorf("--senders must be at least 1, got %d", opts.Senders)
	case opts.Txs < 1:
		return fmt.Errorf("--txs must be at least 1, got %d", opts.Txs)
	case opts.Senders > opts.Txs:
		return fmt.Errorf("--senders %d is more than --txs %d: every sender sends at least one transfer", opts.Senders, opts.Txs)
	case opts.Concurrency < 1:
		return fmt.Errorf("--concurrency must be at least 1, got %d", opts.Concurrency)
	case opts.Batch < 1:
		return fmt.Errorf("--batch must be at least 1, got %d", opts.Batch)
	case opts.TimeoutCommit <= 0:
		return fmt.Errorf("--timeout-commit must be positive, got %s", opts.TimeoutCommit)
	}
	ctx, cancel := context.WithCancel(ctxOr(opts.Ctx))
	defer cancel()
	poll := opts.PollInterval
	if poll <= 0 {
		poll = defaultLoadPoll
	}

	// One connection pool, big enough for every request in flight.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.Concurrency + 4
	defer tr.CloseIdleConnections()
	hc := client.WithHTTPClient(&http.Client{Transport: tr})
	l := &loader{opts: opts, rejected: map[string]int{}}
	if len(opts.Nodes) == 0 {
		c, err := opts.Client(hc)
		if err != nil {
			return err
		}
		l.nodes = []*client.Client{c}
	} else {
		for _, u := range opts.Nodes {
			if u = strings.TrimSpace(u); u == "" {
				return errors.New("--nodes: empty URL in the list")
			}
			l.nodes = append(l.nodes, opts.NodeClient(u, hc))
		}
	}
	for _, c := range l.nodes {
		l.urls = append(l.urls, c.BaseURL())
	}

	st, err := l.checkNetwork(ctx)
	if err != nil {
		return err
	}
	l.chainID = st.ChainID
	if err := l.makeSenders(); err != nil {
		return err
	}
	addrs := map[chain.Address]bool{}
	for _, s := range l.senders {
		addrs[s.addr] = true
	}
	l.watch = newCommitWatcher(l.nodes[0], addrs, st.Height, st.HeadHash, poll)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); l.watch.run(watchCtx) }()
	defer func() { stopWatch(); <-watchDone }()

	if err := l.fund(ctx, poll); err != nil {
		return err
	}
	if err := l.sign(ctx); err != nil {
		return err
	}
	report, err := l.send(ctx)
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		if err := writeJSON(opts.IO.Out, report); err != nil {
			return err
		}
	} else if err := loadTable(opts, report); err != nil {
		return err
	}
	if missing := report.Submitted - report.Stranded - report.Committed; missing > 0 {
		msg := fmt.Sprintf("%d of %d accepted transfers were not committed within %s (--timeout-commit)", missing, report.Submitted-report.Stranded, opts.TimeoutCommit)
		if werr := l.watch.err(); werr != nil {
			msg += "; reading blocks last failed: " + describe(werr)
		}
		return errors.New(msg)
	}
	return nil
}

// checkNetwork checks that the nodes are one network that lets anyone
// EXCHANGE and takes batches of --batch, and returns the first node's status.
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
			return st, fmt.Errorf("--nodes: %s is on chain %s (genesis %s) but %s on chain %s (genesis %s): give the nodes of one network",
				l.urls[0], st.ChainID, shortHash(st.GenesisHash), l.urls[i+1], other.ChainID, shortHash(other.GenesisHash))
		}
	}
	g, err := l.nodes[0].Genesis(ctx)
	if err != nil {
		return st, err
	}
	if !g.Exchange.Open {
		return st, fmt.Errorf("load funds its senders with EXCHANGE, but network %s lets only its %d genesis authorities EXCHANGE: use a network whose genesis has \"exchange\": \"open\" (posd's default)", st.ChainID, len(g.Exchange.Authorities))
	}
	if g.MaxBlockTxs > 0 && l.opts.Batch > g.MaxBlockTxs {
		return st, fmt.Errorf("--batch %d is more than network %s takes in one request (max_block_txs %d)", l.opts.Batch, st.ChainID, g.MaxBlockTxs)
	}
	return st, nil
}

// makeSenders makes the keys and shares the transfers out between them.
func (l *loader) makeSenders() error {
	n := l.opts.Senders
	for i := range n {
		k, err := keystore.Generate()
		if err != nil {
			return err
		}
		quota := l.opts.Txs / n
		if i < l.opts.Txs%n {
			quota++
		}
		l.senders = append(l.senders, &loadSender{
			key: k, addr: k.Address(), node: i % len(l.nodes), quota: quota, budget: quota,
			sentAt: map[chain.Hash]time.Time{}, holes: map[uint64]bool{},
		})
	}
	return nil
}

// phase shows what is going on, on a terminal, until the returned stop.
func (l *loader) phase(text func() string) func() {
	if !l.opts.IO.ErrIsTerminal {
		return func() {}
	}
	return startLiveLine(l.opts.IO.ErrOut, 0, text).Stop
}

// fund sends each sender an EXCHANGE of the coins it will send and waits
// until it is committed and its node shows the balance.
func (l *loader) fund(ctx context.Context, poll time.Duration) error {
	var funded atomic.Int64
	stop := l.phase(func() string {
		return fmt.Sprintf("funding %d senders with EXCHANGE: %d/%d ready", len(l.senders), funded.Load(), len(l.senders))
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
			Amount: uint64(s.quota) * loadAmount, Nonce: pendingNonce(acc) + 1}
		s.key.SignTx(&tx)
		byNode[s.node] = append(byNode[s.node], tx)
		ids = append(ids, tx.ID())
	}
	for n, txs := range byNode {
		for start := 0; start < len(txs); start += l.opts.Batch {
			chunk := txs[start:min(start+l.opts.Batch, len(txs))]
			res, err := l.nodes[n].SubmitTxs(ctx, chunk)
			if err != nil {
				return fmt.Errorf("funding the senders: %w", err)
			}
			for i, r := range res {
				if r.Error != nil {
					return fmt.Errorf("funding the senders: %s refused the EXCHANGE to %s: %s: %s", l.urls[n], chunk[i].To, r.Error.Code, r.Error.Message)
				}
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, l.opts.TimeoutCommit)
	defer cancel()
	if got := l.watch.waitFor(wctx, ids, poll); got < len(ids) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("funding the senders: %d of %d EXCHANGEs were committed within %s (--timeout-commit); is the network forging? (see `poscli status`)", got, len(ids), l.opts.TimeoutCommit)
	}
	// Each sender's node must have the funding block before it takes the
	// sender's transfers (a pool checks them against committed balances).
	for _, s := range l.senders {
		for {
			acc, err := l.nodes[s.node].Account(wctx, s.addr)
			if err == nil && acc.Balance >= uint64(s.quota)*loadAmount {
				s.first = pendingNonce(acc) + 1
				break
			}
			if wctx.Err() != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("funding the senders: %s does not show the funded balance of %s within %s (--timeout-commit)", l.urls[s.node], s.addr, l.opts.TimeoutCommit)
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

// pendingNonce is the nonce of the account's last pooled transaction, or
// of its last committed one.
func pendingNonce(acc rpc.Account) uint64 {
	if acc.PendingNonce != nil {
		return *acc.PendingNonce
	}
	return acc.Nonce
}

// isTransient reports whether err may go away by asking again.
func isTransient(err error) bool {
	var ue *client.UnreachableError
	return errors.As(err, &ue) || client.IsCode(err, "unavailable")
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
	stop := l.phase(func() string {
		return fmt.Sprintf("signing %d transfers: %d done", l.opts.Txs, done.Load())
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
				for k := range s.quota {
					tx := chain.Transaction{Type: chain.TxTransfer, ChainID: l.chainID, To: to, Amount: loadAmount, Nonce: s.first + uint64(k)}
					s.key.SignTx(&tx)
					s.queue = append(s.queue, loadTx{tx: tx, id: tx.ID()})
				}
				done.Add(int64(s.quota))
			}
		})
	}
	wg.Wait()
	return ctx.Err()
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
func (l *loader) send(ctx context.Context) (loadJSON, error) {
	opts := l.opts
	workers := min(opts.Concurrency, len(l.senders))
	mine := make([][]*loadSender, workers)
	for i, s := range l.senders {
		mine[i%workers] = append(mine[i%workers], s)
	}
	stop := l.phase(func() string {
		sent := l.sent.Load()
		return fmt.Sprintf("sending    %s %3.0f%%  %d/%d sent, %d refused, %d committed",
			progressBar(float64(sent)/float64(opts.Txs), 20), 100*float64(sent)/float64(opts.Txs),
			sent, opts.Txs, l.refused.Load(), l.watch.transfersSeen())
	})
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
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
		return loadJSON{}, l.firstErr
	}
	if err := ctx.Err(); err != nil {
		return loadJSON{}, err
	}

	// What can commit: the accepted transfers below each sender's lowest
	// unfilled refused nonce.
	var expect []chain.Hash
	stranded := 0
	for _, s := range l.senders {
		low := uint64(math.MaxUint64)
		for n := range s.holes {
			low = min(low, n)
		}
		for _, t := range s.accepted {
			if t.tx.Nonce < low {
				expect = append(expect, t.id)
			} else {
				stranded++
			}
		}
	}
	stop = l.phase(func() string {
		c := l.watch.transfersSeen()
		return fmt.Sprintf("committing %s %3.0f%%  %d/%d committed", progressBar(float64(c)/float64(len(expect)), 20),
			100*float64(c)/float64(max(1, len(expect))), c, len(expect))
	})
	wctx, wcancel := context.WithTimeout(ctx, opts.TimeoutCommit)
	l.watch.waitFor(wctx, expect, l.watch.poll)
	wcancel()
	stop()
	if err := ctx.Err(); err != nil {
		return loadJSON{}, err
	}
	waitEnd := time.Now()

	seen, committed, blocks, first, last, lastSeen := l.watch.summary()
	var lat []float64
	for _, s := range l.senders {
		for id, at := range s.sentAt {
			if c, ok := seen[id]; ok {
				lat = append(lat, float64(c.Sub(at))/float64(time.Millisecond))
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
	r := loadJSON{
		Nodes: l.urls, Senders: len(l.senders), Txs: opts.Txs, Batch: opts.Batch, Concurrency: opts.Concurrency,
		Submitted: int(l.accepted.Load()), Rejected: l.rejected, Stranded: stranded, Committed: committed,
		Blocks: blocks, FirstHeight: first, LastHeight: last,
		DurationS:       round3(end.Sub(start).Seconds()),
		SubmitDurationS: round3(submitEnd.Sub(start).Seconds()),
		LatencyMs: loadLatencyJSON{
			P50: round3(percentile(lat, 50)), P95: round3(percentile(lat, 95)),
			P99: round3(percentile(lat, 99)), Max: round3(percentile(lat, 100)),
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

// percentile is the nearest-rank p-th percentile of sorted xs (0 if none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// work sends the transfers of senders, one batch at a time: a batch holds
// the senders of one node, their transfers interleaved, each sender's in
// nonce order; the worker goes round the nodes.
func (l *loader) work(ctx context.Context, senders []*loadSender) error {
	byNode := make([][]*loadSender, len(l.nodes))
	for _, s := range senders {
		byNode[s.node] = append(byNode[s.node], s)
	}
	backoff := time.Duration(0)
	for {
		idle := true
		for n, group := range byNode {
			batch, from := l.takeBatch(group)
			if len(batch) == 0 {
				continue
			}
			idle = false
			refused, err := l.submit(ctx, n, batch, from)
			if err != nil {
				return err
			}
			if refused == len(batch) { // the node takes nothing: let it breathe
				backoff = min(max(2*backoff, 10*time.Millisecond), 500*time.Millisecond)
				sleepCtx(ctx, backoff)
			} else {
				backoff = 0
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if idle {
			return nil
		}
	}
}

// takeBatch takes up to --batch transfers from the senders' queues, one
// from each in turn.
func (l *loader) takeBatch(group []*loadSender) ([]chain.Transaction, []*loadSender) {
	var batch []chain.Transaction
	var from []*loadSender
	for len(batch) < l.opts.Batch {
		took := false
		for _, s := range group {
			if len(s.queue) == 0 || len(batch) == l.opts.Batch {
				continue
			}
			batch = append(batch, s.queue[0].tx)
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

// submit sends one batch to node n and books what the node answered. It
// returns how many transfers were refused; an error means the node could
// not be asked and ends the load.
func (l *loader) submit(ctx context.Context, n int, batch []chain.Transaction, from []*loadSender) (int, error) {
	sentAt := time.Now()
	res, err := l.nodes[n].SubmitTxs(ctx, batch)
	var ae *client.APIError
	switch {
	case err == nil && len(res) != len(batch):
		return 0, fmt.Errorf("%s answered %d results for a batch of %d transfers", l.urls[n], len(res), len(batch))
	case errors.As(err, &ae):
		// The whole batch was refused (pool shutting down, ...).
		res = make([]rpc.SubmitResult, len(batch))
		for i := range res {
			res[i].Error = &rpc.Error{Code: ae.Code, Message: ae.Message}
		}
	case err != nil:
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("sending transfers to %s failed: %s", l.urls[n], describe(err))
	}
	l.sent.Add(int64(len(batch)))
	refused := 0
	back := map[*loadSender][]loadTx{}
	codes := map[string]int{}
	for i, r := range res {
		s, tx := from[i], batch[i]
		id := tx.ID()
		if r.ID != nil {
			id = *r.ID
		}
		t := loadTx{tx: tx, id: id}
		if r.Error == nil {
			s.sentAt[id] = sentAt
			s.accepted = append(s.accepted, t)
			delete(s.holes, tx.Nonce)
			continue
		}
		refused++
		codes[r.Error.Code]++
		if retryable(r.Error.Code) {
			s.holes[tx.Nonce] = true
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
	l.accepted.Add(int64(len(batch) - refused))
	if refused > 0 {
		l.refused.Add(int64(refused))
		l.mu.Lock()
		for c, k := range codes {
			l.rejected[c] += k
		}
		l.mu.Unlock()
	}
	return refused, nil
}

// loadTable prints the report for people.
func loadTable(opts *LoadOptions, r loadJSON) error {
	cs := opts.IO.ColorScheme()
	fl := fields{cs: cs}
	nodes := "node"
	if len(r.Nodes) > 1 {
		nodes = "nodes"
	}
	fl.Add(nodes, strings.Join(r.Nodes, ", "))
	fl.Add("senders", fmt.Sprintf("%d, funded with EXCHANGE", r.Senders))
	requests := "requests"
	if r.Concurrency == 1 {
		requests = "request"
	}
	fl.Add("transfers", fmt.Sprintf("%d in batches of %d, %d %s at a time", r.Txs, r.Batch, r.Concurrency, requests))
	fl.Add("submitted", fmt.Sprintf("%d accepted in %.3fs: %.1f tx/s", r.Submitted, r.SubmitDurationS, r.SubmittedTxPerS))
	if len(r.Rejected) == 0 {
		fl.Add("rejected", "none")
	} else {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(r.Rejected)) {
			parts = append(parts, c+" "+strconv.Itoa(r.Rejected[c]))
		}
		fl.Add("rejected", cs.Yellow(strings.Join(parts, ", ")))
	}
	if r.Stranded > 0 {
		fl.Add("stranded", cs.Yellow(fmt.Sprintf("%d accepted behind a refused nonce that was never filled", r.Stranded)))
	}
	committed := fmt.Sprintf("%d in %.3fs: %.1f tx/s", r.Committed, r.DurationS, r.CommittedTxPerS)
	if r.Blocks > 0 {
		committed += fmt.Sprintf(", in %d blocks (heights %d to %d)", r.Blocks, r.FirstHeight, r.LastHeight)
	}
	if r.Committed == r.Submitted-r.Stranded {
		committed = cs.Green(committed)
	} else {
		committed = cs.Red(committed)
	}
	fl.Add("committed", committed)
	ms := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) + " ms" }
	fl.Add("latency", fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s (batch sent → block seen on %s)",
		ms(r.LatencyMs.P50), ms(r.LatencyMs.P95), ms(r.LatencyMs.P99), ms(r.LatencyMs.Max), r.Nodes[0]))
	return fl.Write(opts.IO.Out)
}

// commitWatcher reads every new block of one node from a starting height
// and notes when it first saw each transaction of the watched senders.
// When a block does not follow the last one read (a reorg), it forgets the
// last block read and reads again from there.
type commitWatcher struct {
	c       *client.Client
	senders map[chain.Address]bool
	poll    time.Duration

	mu        sync.Mutex
	next      uint64     // height to read next
	base      chain.Hash // hash of the block at the starting height
	read      []watchedBlock
	seen      map[chain.Hash]time.Time
	transfers int
	lastErr   error
}

// watchedBlock is a block read, with the watched transactions in it.
type watchedBlock struct {
	height    uint64
	hash      chain.Hash
	ids       []chain.Hash
	transfers int
}

func newCommitWatcher(c *client.Client, senders map[chain.Address]bool, height uint64, head chain.Hash, poll time.Duration) *commitWatcher {
	return &commitWatcher{c: c, senders: senders, poll: poll, next: height + 1, base: head, seen: map[chain.Hash]time.Time{}}
}

// run reads blocks until ctx ends.
func (w *commitWatcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.mu.Lock()
		from := w.next
		w.mu.Unlock()
		blocks, err := w.c.Blocks(ctx, &from, loadWatchPage)
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
		if err != nil || len(blocks) < loadWatchPage {
			sleepCtx(ctx, w.poll)
		}
	}
}

// add books blocks read at now. w.mu is held.
func (w *commitWatcher) add(blocks []chain.Block, now time.Time) {
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
				delete(w.seen, id)
			}
			w.transfers -= last.transfers
			w.read = w.read[:len(w.read)-1]
			w.next--
			return
		}
		wb := watchedBlock{height: b.Height, hash: b.Hash()}
		for j := range b.Transactions {
			tx := &b.Transactions[j]
			if !w.senders[tx.From] {
				continue
			}
			id := tx.ID()
			if _, dup := w.seen[id]; dup {
				continue
			}
			w.seen[id] = now
			wb.ids = append(wb.ids, id)
			if tx.Type == chain.TxTransfer {
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
			if _, ok := w.seen[ids[i]]; !ok {
				break
			}
			i++
		}
		w.mu.Unlock()
		if i == len(ids) || ctx.Err() != nil {
			if i < len(ids) { // count the rest too
				w.mu.Lock()
				for _, id := range ids[i:] {
					if _, ok := w.seen[id]; ok {
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
	seen = make(map[chain.Hash]time.Time, len(w.seen))
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
			seen[id] = w.seen[id]
			lastSeen = w.seen[id]
		}
	}
	return seen, transfers, blocks, first, last, lastSeen
}
