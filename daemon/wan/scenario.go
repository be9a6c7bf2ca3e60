package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/poslab/posd/daemon"
)

// Scenario is a run: a network, a load, and what happens to the links when.
type Scenario struct {
	Name     string
	Nodes    int
	Stakes   []uint64 // per node; default 1 each
	Topology Topology
	SlotMs   int64 // 0: the genesis default
	// Duration is how long the load runs, from the moment every node is
	// connected; events happen at offsets into it.
	Duration    time.Duration
	LoadPerNode float64 // transfers per second sent to each node
	Events      []Event
	// Settle bounds the wait for every node to agree at the end (and after
	// an event that waits for agreement).
	Settle time.Duration
	Seed   uint64
	Logger *slog.Logger
}

// Event changes the network at At into the run.
type Event struct {
	At   time.Duration
	Name string
	Do   func(*Net) error
	// WaitAgree: after Do, wait until every node has on its main chain a
	// block made after Do (Recorder.WaitCommon) and record how long it
	// took (Result.Agree[Name]).
	WaitAgree bool
}

// Result is a finished run.
type Result struct {
	Report
	// Agree is, per event that waited for it, how long every node took to
	// agree after it.
	Agree       map[string]time.Duration
	Submitted   int64
	SubmitFails int64
	Finality    FinalityReport
	// FinalAt is each node's final height at each event (before its Do),
	// and at "end" once the nodes agreed.
	FinalAt map[string][]uint64
	// HeadAt is the highest head among the nodes at each event, at
	// "load end" (once the nodes agreed) and at "end".
	HeadAt map[string]uint64
	// FinalCaughtUp: after the load, every node's final height reached
	// the newest block with transactions at "load end" (the empty blocks
	// above it need not become final) and every transfer sent became
	// final, within
	// Settle; FinalWait is how long that took after the nodes agreed.
	FinalCaughtUp bool
	FinalWait     time.Duration
}

func (r Result) String() string {
	s := r.Report.String()
	for name, d := range r.Agree {
		s += fmt.Sprintf("; all agree %v after %s", d.Round(time.Millisecond), name)
	}
	return s + fmt.Sprintf("; load: %d submitted, %d refused; %v; all final %v after agreement (caught up: %v); final heights by event %v, highest heads %v",
		r.Submitted, r.SubmitFails, r.Finality, r.FinalWait.Round(time.Millisecond), r.FinalCaughtUp, r.FinalAt, r.HeadAt)
}

// Run runs sc with the nodes' homes under home, then checks the invariants:
// every node ends on one chain, coins are conserved on every node, no
// final block is ever reverted on any node (Recorder.CheckFinal).
func Run(ctx context.Context, home string, sc Scenario) (Result, error) {
	if sc.Settle <= 0 {
		sc.Settle = 30 * time.Second
	}
	if sc.Logger == nil {
		sc.Logger = slog.New(slog.DiscardHandler)
	}
	accs, allocs := NewLoadAccounts(sc.Nodes, 1<<40)
	gp := daemon.DefaultGenesisParams()
	gp.ChainID = "posd-wan"
	if sc.SlotMs > 0 {
		gp.SlotMs = sc.SlotMs
	}
	gp.Allocations = allocs
	w, err := Start(ctx, Config{
		Devnet:   daemon.DevnetConfig{Home: home, Nodes: sc.Nodes, Stakes: sc.Stakes, Genesis: gp, Logger: sc.Logger},
		Topology: sc.Topology,
		Seed:     sc.Seed,
	})
	if err != nil {
		return Result{}, err
	}
	defer w.Close()
	nodes := w.Nodes()
	if err := waitConnected(ctx, nodes, sc.Settle); err != nil {
		return Result{}, err
	}

	rec := Record(nodes)
	defer rec.Stop()
	res := Result{Agree: map[string]time.Duration{}, FinalAt: map[string][]uint64{}, HeadAt: map[string]uint64{}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	load := StartLoad(loadCtx, nodes, accs, sc.LoadPerNode, rec)
	start := time.Now()
	runErr := func() error {
		for _, ev := range sc.Events {
			if err := sleepUntil(ctx, start.Add(ev.At)); err != nil {
				return err
			}
			sc.Logger.Info("wan: event", "name", ev.Name, "at", time.Since(start).Round(time.Millisecond))
			res.FinalAt[ev.Name] = FinalHeights(w.Nodes())
			res.HeadAt[ev.Name] = slices.Max(heights(w.Nodes()))
			at := time.Now()
			if err := ev.Do(w); err != nil {
				return fmt.Errorf("%s: %w", ev.Name, err)
			}
			for _, n := range w.Nodes()[len(rec.Nodes()):] {
				rec.Add(n) // a node that joined
			}
			if ev.WaitAgree {
				d, err := rec.WaitCommon(ctx, at, sc.Settle)
				if err != nil {
					return fmt.Errorf("after %s: %w", ev.Name, err)
				}
				res.Agree[ev.Name] = d
			}
		}
		return sleepUntil(ctx, start.Add(sc.Duration))
	}()
	stopLoad()
	load.Wait()
	res.Submitted, res.SubmitFails = load.Submitted.Load(), load.Failed.Load()
	if runErr != nil {
		return res, errors.Join(runErr, rec.CheckFinal())
	}
	agree, err := rec.WaitAgree(ctx, sc.Settle)
	if err != nil {
		return res, errors.Join(err, rec.CheckFinal())
	}
	if res.Report, err = rec.Report(); err != nil {
		return res, err
	}
	res.Report.Agree = agree
	nodes = w.Nodes()
	// One chain and the coins are checked at the agreement: the chain goes
	// on (forgers forge empty blocks too), and a fork at the tip a moment
	// later is no failure.
	oneChain, coins := CheckOneChain(nodes), CheckCoins(nodes)
	// Every block with transactions there was when the load stopped, and
	// every transfer it sent, should become final on every node: finality
	// resumed after whatever the run did. Empty blocks above the newest
	// with transactions need not: the heartbeat rests once that one is
	// final, so nothing may come to carry their votes. A stall is
	// measured (Result.FinalCaughtUp), not an error here: the tests say
	// which runs must finalize.
	res.HeadAt["load end"] = slices.Max(heights(nodes))
	res.FinalWait, res.FinalCaughtUp = rec.WaitFinal(ctx, lastTxHeight(nodes[0]), sc.Settle)
	res.FinalAt["end"] = FinalHeights(nodes)
	res.HeadAt["end"] = slices.Max(heights(nodes))
	res.Finality = rec.Finality()
	return res, errors.Join(oneChain, coins, rec.CheckFinal())
}

// lastTxHeight is the height of the newest block with transactions on
// n's main chain (0: none).
func lastTxHeight(n *daemon.Node) uint64 {
	for h := n.API().Height(); h > 0; h-- {
		b, err := n.API().BlockByHeight(h)
		if err != nil {
			return h // unreadable: ask for everything up to it
		}
		if len(b.Transactions) > 0 {
			return h
		}
	}
	return 0
}

// waitConnected waits until every node has handshaken with every other.
func waitConnected(ctx context.Context, nodes []*daemon.Node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, n := range nodes {
			if len(n.API().Peers()) < len(nodes)-1 {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			var counts []int
			for _, n := range nodes {
				counts = append(counts, len(n.API().Peers()))
			}
			return fmt.Errorf("nodes not all connected after %v: peers per node %v", timeout, counts)
		}
		if err := sleepUntil(ctx, time.Now().Add(50*time.Millisecond)); err != nil {
			return err
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
