package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/daemon"
)

// StartOptions are the flags of `posd start`.
type StartOptions struct {
	Config    daemon.Config
	Exchange  string
	LogLevel  string
	LogFormat string
	Pprof     string
	Stderr    io.Writer
	// Ready, if set, is called once the node listens (tests use it).
	Ready func(*daemon.Node)
	// Given reports whether a flag was on the command line (or in POSD_*);
	// nil means none was.
	Given func(name string) bool
}

// NewCmdStart builds `posd start`; runF replaces startRun in tests.
func NewCmdStart(runF func(context.Context, *StartOptions) error) *cobra.Command {
	opts := &StartOptions{Config: daemon.Config{Genesis: daemon.DefaultGenesisParams()}}
	home, _ := os.UserHomeDir()
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a node",
		Long: `Start a node. With --genesis and an empty home it creates a new network in which
this node holds stake 1 and balance 1000, as the original's genesis node did.
Without --genesis or --join, a node with no chain joins http://127.0.0.1:5001.
Restarted without them, a node joins the URL it joined through before, or
nobody if its genesis came from --genesis or --genesis-file.
Every flag can also be set as POSD_<FLAG>, e.g. POSD_API_PORT=5002.
The node keeps the Go runtime's memory under a soft limit of 1 GiB, and of
400 MiB while it catches up with a long sync (posd devnet: that much per node);
GOMEMLIMIT=2GiB sets another, GOMEMLIMIT=off none.`,
		Example: `  posd start --genesis
  posd start --home /tmp/n2 --api-port 5002 --p2p-port 10002
  posd start --home /tmp/n3 --api-port 5003 --p2p-port 10003 --join http://127.0.0.1:5001
  posd start --home /tmp/n2 --api-port 5002 --p2p-port 10002 --fund 100 --stake 10
  posd start --genesis --election weighted --slot-ms 1000 --block-reward 5
  posd start --genesis --heartbeat-ms 250 --min-fee 1 --max-lots 100000
  POSD_LOG_FORMAT=json posd start --pprof 127.0.0.1:6060
  posd start --p2p-host 0.0.0.0                      # peers from anywhere, API on loopback
  posd start --api-host 0.0.0.0 --api-tls-cert c.pem --api-tls-key k.pem
  POSD_KEY_PASSPHRASE=... posd start                 # an encrypted node_key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			opts.Stderr = cmd.ErrOrStderr()
			opts.Given = cmd.Flags().Changed
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return startRun(cmd.Context(), opts)
		},
	}
	c := &opts.Config
	f := cmd.Flags()
	f.StringVar(&c.Home, "home", filepath.Join(home, ".posd"), "node home: node_key.pem, genesis.json, chain.db, api.token")
	f.BoolVar(&c.NewNetwork, "genesis", false, "create a new network if the home has no chain")
	f.StringVar(&c.GenesisFile, "genesis-file", "", "use this genesis.json for a new network")
	addExposureFlags(cmd, c)
	f.IntVar(&c.APIPort, "api-port", 5001, "HTTP API port")
	f.IntVar(&c.P2PPort, "p2p-port", 10001, "libp2p TCP port")
	f.StringVar(&c.KeyFile, "key", "", "node key PEM (default <home>/node_key.pem, made on first start)")
	f.IntVar(&c.BlockSize, "block-size", 1, "forge once this many transactions are pending")
	f.DurationVar(&c.BlockInterval, "block-interval", time.Second, "forge once the oldest pending transaction waited this long")
	f.Uint64Var(&c.Fund, "fund", 0, "on first start, buy this many coins for the node key with an EXCHANGE")
	f.Uint64Var(&c.Stake, "stake", 0, "on first start, stake this many of the node key's coins (with --fund: once the EXCHANGE is committed)")
	f.StringVar(&c.Join, "join", "", "API URL of a node of the network to join (default http://127.0.0.1:5001 when the home has no chain)")
	f.StringSliceVar(&c.Peers, "peers", nil, "libp2p multiaddrs to connect to, comma-separated")
	f.BoolVar(&c.MDNS, "mdns", true, "find peers on the local network with mDNS")
	f.IntVar(&c.PoolLimit, "pool-limit", 100000, "most transactions the pool holds")
	addVoteFlag(cmd, &c.NoVote, "vote for finality checkpoints with the node key when it has stake (--vote=false: this node never votes; it still carries others' votes)")
	f.StringVar(&opts.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&opts.LogFormat, "log-format", "text", "text or json")
	f.StringVar(&opts.Pprof, "pprof", "", "serve net/http/pprof on this address, e.g. 127.0.0.1:6060")
	addGenesisFlags(cmd, &c.Genesis, &opts.Exchange)
	addStartLabFlags(cmd, opts)           // byzantine.go
	addCheckpointFlag(cmd, &c.Checkpoint) // checkpoint.go
	return cmd
}

// addGenesisFlags adds the parameters of a new network (start --genesis and devnet).
func addGenesisFlags(cmd *cobra.Command, p *daemon.GenesisParams, exchange *string) {
	f := cmd.Flags()
	f.StringVar(&p.ChainID, "chain-id", p.ChainID, "chain id of a new network")
	f.StringVar(&p.Election, "election", p.Election, "forger election of a new network: lottery or weighted")
	f.Int64Var(&p.SlotMs, "slot-ms", p.SlotMs, "slot length in ms: rank k may forge k slots after its parent")
	f.Uint32Var(&p.MaxRank, "max-rank", p.MaxRank, "fallback forgers per height")
	f.IntVar(&p.MaxBlockTxs, "max-block-txs", p.MaxBlockTxs, "most transactions in a block")
	f.Uint64Var(&p.BlockReward, "block-reward", 0, "coins minted to each block's forger")
	f.StringVar(exchange, "exchange", "open", `who may send EXCHANGE: "open" or comma-separated addresses`)
	f.StringVar(&p.SeedSource, "seed-source", p.SeedSource, "election seed: vrf, or block_hash (v1's grindable seed, for experiments)")
	f.Uint64Var(&p.LotSize, "lot-size", p.LotSize, "staked coins per election lot")
	f.Uint64Var(&p.MaxLots, "max-lots", p.MaxLots, "most election lots the total stake may hold (a STAKE past it is refused)")
	f.Uint64Var(&p.MinTotalStake, "min-total-stake", p.MinTotalStake, "least total stake, in whole lots, that must stay staked")
	f.BoolVar(&p.Heartbeat, "heartbeat", p.Heartbeat, "forge empty blocks until the newest block with transactions is final (64 deep when no stake votes; --heartbeat=false: off)")
	f.Int64Var(&p.HeartbeatMs, "heartbeat-ms", p.HeartbeatMs, "age of the head at which rank 0 forges a heartbeat, 1..slot-ms (0: slot-ms/4)")
	f.Uint32Var(&p.SlashPercent, "slash-percent", p.SlashPercent, "share of an equivocator's stake burned, 0..100")
	f.Uint64Var(&p.MinFee, "min-fee", p.MinFee, "least fee a transaction may carry")
	f.Uint64Var(&p.UnbondingBlocks, "unbonding-blocks", p.UnbondingBlocks, "heights unstaked coins stay unbonding (slashable, no lots) before they return to the balance (0: at once)")
	f.BoolVar(&p.Lab, "lab", p.Lab, "mark the network as made for experiments")
}

// startRun runs a node until ctx ends (SIGINT or SIGTERM).
func startRun(ctx context.Context, opts *StartOptions) error {
	log, err := newLogger(opts.Stderr, opts.LogLevel, opts.LogFormat)
	if err != nil {
		return err
	}
	opts.Config.Logger = log
	opts.Config.Genesis.Exchange = opts.Exchange
	if err := restoreSettings(opts, log); err != nil {
		return err
	}
	if err := checkPortFree(opts.Config.Host, opts.Config.APIPort, "API", "--api-port"); err != nil {
		return err
	}
	if err := checkPortFree(opts.Config.Host, opts.Config.P2PPort, "P2P", "--p2p-port"); err != nil {
		return err
	}
	stopPprof, err := startPprof(opts.Pprof, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	node, err := daemon.Open(opts.Config)
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		node.Close()
		return err
	}
	restorePool(node, log)
	if opts.Ready != nil {
		opts.Ready(node)
	}
	<-ctx.Done()
	log.Info("shutting down")
	savePool(node, log)
	return node.Close()
}

// restoreSettings applies the forging settings last changed at runtime
// (poscli node config, saved in <home>/settings.json) to those the command
// line left at their defaults: a restart keeps what the operator set.
func restoreSettings(opts *StartOptions, log *slog.Logger) error {
	saved, ok, err := daemon.ReadSettings(opts.Config.Home)
	if err != nil || !ok {
		return err
	}
	given := opts.Given
	if given == nil {
		given = func(string) bool { return false }
	}
	c := &opts.Config
	var restored []any
	if !given("block-size") && saved.BlockSize > 0 {
		c.BlockSize = saved.BlockSize
		restored = append(restored, "block_size", saved.BlockSize)
	}
	if !given("block-interval") && saved.BlockIntervalMs > 0 {
		c.BlockInterval = time.Duration(saved.BlockIntervalMs) * time.Millisecond
		restored = append(restored, "block_interval", c.BlockInterval.String())
	}
	if !given("pool-limit") && saved.PoolLimit > 0 {
		c.PoolLimit = saved.PoolLimit
		restored = append(restored, "pool_limit", saved.PoolLimit)
	}
	if len(restored) > 0 {
		log.Info("restored the forging settings changed at runtime (flags override them)",
			append(restored, "file", filepath.Join(c.Home, daemon.SettingsFile))...)
	}
	return nil
}

// startPprof serves the profiler on addr, on its own listener away from
// the API, and says so in the log; with addr empty it does nothing.
func startPprof(addr string, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	stop, err := servePprof(addr)
	if err != nil {
		return nil, err
	}
	log.Info("pprof listening", "addr", "http://"+addr+"/debug/pprof/")
	return stop, nil
}

// servePprof serves the profiler on its own listener, away from the API.
func servePprof(addr string) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return nil, fmt.Errorf("--pprof %s: %w", addr, err)
		}
	case <-time.After(100 * time.Millisecond):
	}
	return func() { srv.Close() }, nil
}
