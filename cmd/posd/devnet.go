package main

import (
	"context"
	"fmt"
	"github.com/poslab/posd/internal/tune"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"

	"github.com/poslab/posd/daemon"
)

// DevnetOptions are the flags of `posd devnet`.
type DevnetOptions struct {
	Config    daemon.DevnetConfig
	Stakes    string
	Exchange  string
	LogLevel  string
	LogFormat string
	Pprof     string // address of net/http/pprof for the whole process; empty: none
	Reset     bool
	// GenesisFlags are the flags given that shape a new chain's genesis
	// (--stakes, --election, ...): refused on a home that has a chain.
	GenesisFlags []string
	Out          io.Writer
	Stderr       io.Writer
	// Ready, if set, is called once every node listens (tests use it).
	Ready func(*daemon.Devnet)
	WAN   wanOptions // devnet_wan.go
}

// NewCmdDevnet builds `posd devnet`; runF replaces devnetRun in tests.
func NewCmdDevnet(runF func(context.Context, *DevnetOptions) error) *cobra.Command {
	opts := &DevnetOptions{Config: daemon.DevnetConfig{Genesis: daemon.DefaultGenesisParams()}}
	opts.Config.Genesis.ChainID = "posd-devnet"
	home, _ := os.UserHomeDir()
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local network of several nodes in one process",
		Long: `Run N nodes in one process, each with its own home (<home>/node1, node2, ...)
and ports (API 5001.., P2P 10001..). Node 1 makes the genesis, in which every
node's key holds balance 1000 and the stake --stakes gives it (1 by default).
The other nodes join node 1. Ctrl-C stops them all; running it again in the
same home resumes the same chain (--reset starts over).`,
		Example: `  posd devnet --nodes 3
  posd devnet --nodes 4 --stakes 1,10,20,40 --election weighted
  posd devnet --nodes 3 --slot-ms 1000 --block-reward 5 --reset
  posd devnet --nodes 3 --heartbeat=false --seed-source block_hash --lab --reset`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			opts.Out, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := opts.WAN.parse(cmd); err != nil {
				return err
			}
			for _, name := range genesisFlagNames {
				if cmd.Flags().Changed(name) {
					opts.GenesisFlags = append(opts.GenesisFlags, "--"+name)
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return devnetRun(cmd.Context(), opts)
		},
	}
	c := &opts.Config
	f := cmd.Flags()
	f.IntVar(&c.Nodes, "nodes", 3, "number of nodes")
	f.StringVar(&c.Home, "home", filepath.Join(home, ".posd", "devnet"), "parent of the nodes' homes")
	f.StringVar(&opts.Stakes, "stakes", "", "stake of each node, comma-separated (default 1 each)")
	f.StringVar(&c.Host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&c.APIPort, "api-port", 5001, "API port of node 1; node i uses api-port+i-1")
	f.IntVar(&c.P2PPort, "p2p-port", 10001, "P2P port of node 1; node i uses p2p-port+i-1")
	f.BoolVar(&opts.Reset, "reset", false, "delete the nodes' homes first: a new chain")
	f.StringVar(&opts.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&opts.LogFormat, "log-format", "text", "text or json")
	addVoteFlag(cmd, &c.NoVote, "the nodes vote for finality checkpoints (--vote=false: none votes, finality off, to compare throughput)")
	f.BoolVar(&c.OwnSigCaches, "own-sig-caches", false, "each node verifies every signature itself (by default the nodes, sharing one process, share verified signatures)")
	f.StringVar(&opts.Pprof, "pprof", "", "serve net/http/pprof for the whole devnet on this address, e.g. 127.0.0.1:6060")
	addGenesisFlags(cmd, &c.Genesis, &opts.Exchange)
	addDevnetLabFlags(cmd, opts) // byzantine.go
	addWANFlags(cmd, &opts.WAN)  // devnet_wan.go
	return cmd
}

// genesisFlagNames are devnet's flags that only a new chain can take.
var genesisFlagNames = []string{"stakes", "chain-id", "election", "slot-ms", "max-rank", "max-block-txs", "block-reward", "exchange",
	"seed-source", "lot-size", "max-lots", "min-total-stake", "heartbeat", "heartbeat-ms", "slash-percent", "min-fee", "lab", "unbonding-blocks"}

// checkResume refuses genesis flags on a home whose devnet already has a
// chain: they would be silently ignored, the old genesis going on.
func checkResume(opts *DevnetOptions) error {
	if opts.Reset || len(opts.GenesisFlags) == 0 {
		return nil
	}
	path := filepath.Join(opts.Config.Home, "node1", daemon.GenesisFile)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return fmt.Errorf("%s already holds a devnet whose genesis fixes %s: add --reset to start a new chain with them (deleting the old one), or leave them out to resume it",
		opts.Config.Home, strings.Join(opts.GenesisFlags, ", "))
}

// parseStakes reads "1,10,20".
func parseStakes(s string) ([]uint64, error) {
	if s == "" {
		return nil, nil
	}
	var out []uint64
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(part), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--stakes: %q is not a whole number", part)
		}
		out = append(out, v)
	}
	return out, nil
}

func devnetRun(ctx context.Context, opts *DevnetOptions) error {
	log, err := newLogger(opts.Stderr, opts.LogLevel, opts.LogFormat)
	if err != nil {
		return err
	}
	c := opts.Config
	c.Logger = log
	c.Genesis.Exchange = opts.Exchange
	if c.Stakes, err = parseStakes(opts.Stakes); err != nil {
		return err
	}
	if err := checkResume(opts); err != nil {
		return err
	}
	tune.ScaleMemoryLimit(c.Nodes) // the nodes share one process
	wanNet := opts.WAN.Net == "wan"
	for i := range c.Nodes {
		if c.APIPort == 0 && c.P2PPort == 0 {
			break // any free ports (tests)
		}
		if err := checkPortFree(c.Host, c.APIPort+i, fmt.Sprintf("node %d API", i+1), "--api-port"); err != nil {
			return err
		}
		if wanNet {
			continue // no P2P ports: the links are emulated
		}
		if err := checkPortFree(c.Host, c.P2PPort+i, fmt.Sprintf("node %d P2P", i+1), "--p2p-port"); err != nil {
			return err
		}
	}
	stopPprof, err := startPprof(opts.Pprof, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	if opts.Reset {
		if err := os.RemoveAll(c.Home); err != nil {
			return err
		}
	}
	var d *daemon.Devnet
	if wanNet {
		w, err := startWAN(ctx, c, &opts.WAN, log)
		if err != nil {
			return err
		}
		defer w.Close()
		d = w.Devnet
	} else {
		if d, err = daemon.StartDevnet(ctx, c); err != nil {
			return err
		}
		defer d.Close()
	}
	if err := printDevnet(opts.Out, d); err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready(d)
	}
	<-ctx.Done()
	log.Info("stopping the devnet")
	return nil
}

// printDevnet shows each node's API, address and stake.
func printDevnet(w io.Writer, d *daemon.Devnet) error {
	t := tablewriter.NewTable(w)
	t.Header("Node", "API", "Address", "Stake", "Home")
	for i, n := range d.Nodes {
		acc := n.API().Account(n.Address())
		if err := t.Append(strconv.Itoa(i+1), n.APIURL(), string(n.Address()), strconv.FormatUint(acc.Stake, 10), n.Home()); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	first := d.Nodes[0]
	_, err := fmt.Fprintf(w, "chain %s, %d nodes. Try: poscli --node %s status. Ctrl-C stops them all.\n"+
		"Each node's admin token is <Home>/%s, e.g. %s; poscli node ... --node-home %s uses it.\n",
		first.API().Genesis().ChainID, len(d.Nodes), first.APIURL(),
		daemon.TokenFile, filepath.Join(first.Home(), daemon.TokenFile), first.Home())
	return err
}
