package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/client"
)

// WatchOptions are the options of `poscli watch`.
type WatchOptions struct {
	QueryEnv
	PollInterval time.Duration
	// NoEvents skips the event stream and polls from the start.
	NoEvents bool
	// IdleNotice is how long without a block before watch says why it is
	// quiet (on stderr); 0 never.
	IdleNotice time.Duration
}

// watchJSON is the JSON shape of one line of `poscli watch -o json`.
type watchJSON struct {
	Height    uint64        `json:"height"`
	Hash      chain.Hash    `json:"hash"`
	Timestamp int64         `json:"timestamp"`
	Forger    chain.Address `json:"forger"`
	Rank      uint32        `json:"rank"`
	TxCount   int           `json:"tx_count"`
}

// NewCmdWatch builds `poscli watch`.
func NewCmdWatch(f *Factory, runF func(*WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{QueryEnv: newQueryEnv(f), PollInterval: time.Second, IdleNotice: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print each new block as it arrives, until Ctrl-C",
		Long: `Subscribe to the node's new blocks (GET /v1/events) and print one line per
block: time, height, short hash, forger (highlighted when it is one of your
keys) and transaction count. If the event stream fails, poscli says so on
stderr and polls GET /v1/status instead. Stop with Ctrl-C.

JSON (-o json): one object per line (JSON Lines), {"height", "hash",
"timestamp", "forger", "rank", "tx_count"}.`,
		Example: `  poscli watch
  poscli watch -o json | jq -c 'select(.tx_count > 0)'
  poscli watch --poll --interval 2s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return watchRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.NoEvents, "poll", false, "poll /v1/status instead of subscribing to events")
	cmd.Flags().DurationVar(&opts.PollInterval, "interval", opts.PollInterval, "how often to poll when polling")
	cmd.Flags().DurationVar(&opts.IdleNotice, "idle", opts.IdleNotice, "say why when no block came for this long (0: never)")
	return cmd
}

func watchRun(opts *WatchOptions) error {
	ctx := opts.ctx()
	if opts.PollInterval <= 0 {
		return fmt.Errorf("--interval must be positive, got %s", opts.PollInterval)
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	w := &blockPrinter{opts: opts, own: opts.own(), last: time.Now()}
	if opts.IdleNotice > 0 {
		idleCtx, stop := context.WithCancel(ctx)
		defer stop()
		go w.idleLoop(idleCtx, c)
	}
	ecs := opts.IO.ErrColorScheme()
	fmt.Fprintf(opts.IO.ErrOut, "%s\n", ecs.Faint(fmt.Sprintf("watching %s at %s from height %d (Ctrl-C to stop)", st.ChainID, c.BaseURL(), st.Height)))
	last := st.Height
	if !opts.NoEvents {
		var err error
		if last, err = watchEvents(ctx, c, w, last); err == nil || ctx.Err() != nil {
			return nil
		}
		fmt.Fprintln(opts.IO.ErrOut, ecs.Yellow(fmt.Sprintf("warning: event stream failed (%s); polling /v1/status every %s instead", describe(err), opts.PollInterval)))
	}
	return watchPoll(ctx, c, w, last)
}

// watchEvents prints blocks from the event stream until ctx ends (nil) or
// the stream fails (its error). It returns the last height printed.
func watchEvents(ctx context.Context, c *client.Client, w *blockPrinter, last uint64) (uint64, error) {
	blocks, errc := c.Events(ctx)
	for b := range blocks {
		if err := w.print(b); err != nil {
			return last, err
		}
		last = b.Height
	}
	return last, <-errc
}

// watchPoll polls the node's height and prints the blocks it has not yet
// printed, until ctx ends. Failures are reported once, then retried.
func watchPoll(ctx context.Context, c *client.Client, w *blockPrinter, last uint64) error {
	ecs := w.opts.IO.ErrColorScheme()
	failing := false
	t := time.NewTicker(w.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := c.Status(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				fmt.Fprintln(w.opts.IO.ErrOut, ecs.Yellow("warning: "+describe(err)+"; retrying"))
				failing = true
			}
			continue
		}
		if failing {
			fmt.Fprintln(w.opts.IO.ErrOut, ecs.Green("the node answers again"))
			failing = false
		}
		if st.Height < last { // the chain reorganized to a shorter one
			last = st.Height
			continue
		}
		for last < st.Height && ctx.Err() == nil {
			from := last + 1
			blocks, err := c.Blocks(ctx, &from, int(min(st.Height-last, maxBlocks)))
			if err != nil || len(blocks) == 0 {
				break
			}
			for i := range blocks {
				if err := w.print(&blocks[i]); err != nil {
					return err
				}
				last = blocks[i].Height
			}
		}
	}
}

// blockPrinter prints watch's lines.
type blockPrinter struct {
	opts *WatchOptions
	own  ownKeys

	mu       sync.Mutex // guards the fields below and the writers
	last     time.Time  // of the last block printed (or of the start)
	saidIdle bool       // the idle notice for this quiet stretch is out
}

// idleLoop says on stderr why nothing is printed when no block came for
// IdleNotice: a node forges only when it has something to commit, or no
// forger is reachable.
func (w *blockPrinter) idleLoop(ctx context.Context, c *client.Client) {
	t := time.NewTicker(max(w.opts.IdleNotice/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		quiet, said := time.Since(w.last), w.saidIdle
		w.mu.Unlock()
		if said || quiet < w.opts.IdleNotice {
			continue
		}
		msg := fmt.Sprintf("no new block for %s", quiet.Round(time.Second))
		if st, err := c.Status(ctx); err != nil {
			msg += fmt.Sprintf(", and the node does not answer (%s)", describe(err))
		} else if st.Pending == 0 {
			msg += fmt.Sprintf(" (head #%d): the pool is empty and blocks come when there is something to commit; still watching", st.Height)
		} else {
			msg += fmt.Sprintf(" though %d transactions are pending (head #%d): is a forger online? see poscli stakes and poscli peers; still watching", st.Pending, st.Height)
		}
		w.mu.Lock()
		if !w.saidIdle && ctx.Err() == nil {
			fmt.Fprintln(w.opts.IO.ErrOut, w.opts.IO.ErrColorScheme().Faint(msg))
			w.saidIdle = true
		}
		w.mu.Unlock()
	}
}

func (w *blockPrinter) print(b *chain.Block) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last, w.saidIdle = time.Now(), false
	if w.opts.Globals.JSON() {
		return writeJSONLine(w.opts.IO.Out, watchJSON{
			Height: b.Height, Hash: b.Hash(), Timestamp: b.Timestamp,
			Forger: b.Forger, Rank: b.Rank, TxCount: len(b.Transactions),
		})
	}
	cs := w.opts.IO.ColorScheme()
	t := time.UnixMilli(b.Timestamp).In(w.opts.Now().Location()).Format("15:04:05")
	txs := "txs"
	if len(b.Transactions) == 1 {
		txs = "tx"
	}
	_, err := fmt.Fprintf(w.opts.IO.Out, "%s  %s  %s  forger %s  %d %s\n",
		cs.Faint(t), cs.Bold(fmt.Sprintf("#%-6d", b.Height)), shortHash(b.Hash()),
		w.own.label(b.Forger, cs), len(b.Transactions), txs)
	return err
}
