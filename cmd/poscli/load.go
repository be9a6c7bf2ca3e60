package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/client"
	"github.com/poslab/posd/lab/load"
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
	// MaxBackoff caps the pause after a push-back (0: load's default).
	MaxBackoff time.Duration

	Senders       int
	Txs           int
	Concurrency   int
	Batch         int
	Rate          float64
	Nodes         []string
	TimeoutCommit time.Duration
}

// defaultLoadPoll is how often load's commit watcher reads new blocks.
const defaultLoadPoll = load.DefaultPoll

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
		Use:   "load [--senders N] [--txs N] [--batch B] [--concurrency C] [--rate TX/S] [--nodes URL,...]",
		Short: "Send a load of transfers to a node or devnet and measure it",
		Long: `Generate load on a running network and measure what it commits.

1. Make --senders keys, in memory only (nothing is saved).
2. Fund each with an EXCHANGE of the coins it will send (the network must
   let anyone EXCHANGE: genesis "exchange": "open") and wait until every
   node a sender uses shows the balance.
3. Sign --txs TRANSFERs of 1 coin, fee 0, sender i to sender i+1: each
   sender counts its own nonces from its account's pending_nonce + 1.
   Signing is done before the clock starts.
4. Send them in batches of --batch (POST /v1/txs, binary batch encoding;
   JSON to a node older than it), --concurrency
   requests at a time. Senders are spread over --nodes (default: --node);
   all of a sender's transactions go to its one node, in nonce order, so
   they arrive in order. A refused transfer is counted under its error code
   and, unless its nonce is taken (bad_nonce, nonce_in_use, already_known),
   sent again later: the total sent is --txs either way. A node that pushes
   back (pool_full: its pool is full; busy: 503 with Retry-After) is not
   refusing: poscli pauses (20 ms doubling, or what Retry-After asks, at
   most 5 s) and sends the same transfers again, so every signed transfer
   is sent; a node that takes nothing for --timeout-commit ends the load with an
   error. A node may also drop a transfer it had accepted (a full pool
   evicts to make room): when it refuses a sender's transfer for a gap
   (nonce_gap, queue_full: counted as deferred) or pushes one back,
   and when the commits stall, poscli asks it for the sender's
   pending_nonce and sends again, in order, the transfers it lost
   (resent). So every signed transfer commits unless a node refuses it
   for a reason that does not go away (bad signature, insufficient
   funds, ...) or --timeout-commit passes. With --rate the
   batches are paced to at most that many transfers per second in all, to
   watch a network below its ceiling (a batch the nodes delayed is not
   made up for with a burst); without it they go as fast as the nodes
   answer.
5. Wait until every accepted transfer is committed, or --timeout-commit.

Commits are counted from the blocks themselves: from the start, poscli
reads the transaction ids of every new block of the first node (GET
/v1/blocks/txids, every 50 ms; no bodies) and counts the load's transfers
in it, following reorgs. A transfer's latency
runs from the moment its batch was first sent to the moment poscli saw the block
holding it on that node (not the block's timestamp). submitted_tx_per_s is
the accepted transfers over the time from the first batch sent to the last
answer; committed_tx_per_s the committed transfers over the time from the
first batch sent to the last of them seen in a block (duration_s).

A terminal shows progress on stderr. The exit status is 1 when accepted
transfers were not all committed in time (after the report).

JSON (-o json): {"nodes": [string], "senders", "txs", "batch",
"concurrency", "rate", "submitted", "rejected": {code: count}, "deferred", "resent", "stranded",
"committed", "blocks", "first_height", "last_height", "duration_s",
"submit_duration_s", "submitted_tx_per_s", "committed_tx_per_s",
"latency_ms": {"p50", "p95", "p99", "max"}}. submitted counts the transfers
a node accepted; deferred the sends a node pushed back, or refused
for a gap its pool had opened (sent again); resent the sends of
transfers a node had accepted and then lost (each counts once in
submitted); stranded those accepted behind a refused nonce that was
never filled (they cannot commit); blocks the blocks holding the load's
transfers, between first_height and last_height.`,
		Example: `  poscli load --senders 10 --txs 2000
  poscli load --senders 50 --txs 50000 --batch 500 --concurrency 4
  poscli load --nodes http://127.0.0.1:5001,http://127.0.0.1:5002,http://127.0.0.1:5003 --txs 30000 --batch 500
  poscli load --txs 5000 -o json | jq .latency_ms
  poscli load --senders 50 --txs 60000 --batch 500 --rate 10000`,
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
	fl.Float64Var(&opts.Rate, "rate", 0, "pace the sending at this many transfers per second in all, at most (0: as fast as the nodes take them)")
	fl.StringSliceVar(&opts.Nodes, "nodes", nil, "spread the senders over these node `URL`s (default: --node); the first one's blocks are watched")
	fl.DurationVar(&opts.TimeoutCommit, "timeout-commit", 60*time.Second, "how long to wait for the commits after the last transfer is sent (also for the funding)")
	return cmd
}

// loadJSON is the JSON shape of `poscli load`: the engine's report.
type loadJSON = load.Report

// loadRun checks the flags, runs the load engine (lab/load) on the nodes'
// HTTP API and prints its report.
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
	case opts.Rate != 0 && !(opts.Rate >= load.MinRate && opts.Rate <= load.MaxRate):
		return fmt.Errorf("--rate must be 0 (no pacing) or %g to %g transfers per second, got %v", load.MinRate, load.MaxRate, opts.Rate)
	}

	// One connection pool, big enough for every request in flight.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.Concurrency + 4
	defer tr.CloseIdleConnections()
	hc := client.WithHTTPClient(&http.Client{Transport: tr})
	// The engine backs off on busy itself, counting the push-backs.
	noRetry := client.WithBusyRetries(0)
	var nodes []load.Node
	if len(opts.Nodes) == 0 {
		c, err := opts.Client(hc, noRetry)
		if err != nil {
			return err
		}
		nodes = []load.Node{load.ClientNode{Client: c}}
	} else {
		for _, u := range opts.Nodes {
			if u = strings.TrimSpace(u); u == "" {
				return errors.New("--nodes: empty URL in the list")
			}
			nodes = append(nodes, load.ClientNode{Client: opts.NodeClient(u, hc, noRetry)})
		}
	}

	cfg := load.Config{
		Nodes: nodes, Senders: opts.Senders, Txs: opts.Txs, Concurrency: opts.Concurrency, Batch: opts.Batch, Rate: opts.Rate,
		TimeoutCommit: opts.TimeoutCommit, Poll: opts.PollInterval, MaxBackoff: opts.MaxBackoff,
	}
	var live *liveLine
	if opts.IO.ErrIsTerminal {
		var last atomic.Pointer[load.Progress]
		cfg.Progress = func(p load.Progress) { last.Store(&p) }
		live = startLiveLine(opts.IO.ErrOut, 0, func() string {
			if p := last.Load(); p != nil {
				return loadProgressLine(*p)
			}
			return "checking the network"
		})
	}
	report, err := load.Run(ctxOr(opts.Ctx), cfg)
	live.Stop()
	var mixed *load.MixedNetworkError
	var batch *load.BatchTooLargeError
	switch {
	case errors.As(err, &mixed):
		return fmt.Errorf("--nodes: %w", err)
	case errors.As(err, &batch):
		return fmt.Errorf("--%w", err)
	case err != nil:
		return err
	}
	if opts.Globals.JSON() {
		if err := writeJSON(opts.IO.Out, report); err != nil {
			return err
		}
	} else if err := loadTable(opts, *report); err != nil {
		return err
	}
	if missing := report.Missing(); missing > 0 {
		msg := fmt.Sprintf("%d of %d accepted transfers were not committed within %s (--timeout-commit)", missing, report.Submitted-report.Stranded, opts.TimeoutCommit)
		if report.WatchErr != nil {
			msg += "; reading blocks last failed: " + describe(report.WatchErr)
		}
		return errors.New(msg)
	}
	return nil
}

// loadProgressLine is the live line of a phase.
func loadProgressLine(p load.Progress) string {
	share := float64(p.Done) / float64(max(1, p.Total))
	switch p.Phase {
	case load.PhaseFunding:
		return fmt.Sprintf("funding %d senders with EXCHANGE: %d/%d ready", p.Total, p.Done, p.Total)
	case load.PhaseSigning:
		return fmt.Sprintf("signing %d transfers: %d done", p.Total, p.Done)
	case load.PhaseSending:
		line := fmt.Sprintf("sending    %s %3.0f%%  %d/%d sent, %d refused, %d committed",
			progressBar(share, 20), 100*share, p.Done, p.Total, p.Refused, p.Committed)
		if p.Deferred > 0 {
			line += fmt.Sprintf(", %d pushed back", p.Deferred)
		}
		if p.Resent > 0 {
			line += fmt.Sprintf(", %d resent", p.Resent)
		}
		return line
	}
	line := fmt.Sprintf("committing %s %3.0f%%  %d/%d committed", progressBar(share, 20), 100*share, p.Done, p.Total)
	if p.Resent > 0 {
		line += fmt.Sprintf(", %d resent", p.Resent)
	}
	return line
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
	transfers := fmt.Sprintf("%d in batches of %d, %d %s at a time", r.Txs, r.Batch, r.Concurrency, requests)
	if r.Rate > 0 {
		transfers += fmt.Sprintf(", paced at %g tx/s", r.Rate)
	}
	fl.Add("transfers", transfers)
	fl.Add("submitted", fmt.Sprintf("%d accepted in %.3fs: %.1f tx/s", r.Submitted, r.SubmitDurationS, r.SubmittedTxPerS))
	if r.Deferred > 0 {
		fl.Add("deferred", fmt.Sprintf("%d sends pushed back (pool_full, busy, a gap) and sent again", r.Deferred))
	}
	if r.Resent > 0 {
		fl.Add("resent", fmt.Sprintf("%d sends of accepted transfers a node had lost (evicted)", r.Resent))
	}
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
