package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
)

// nodeAPIURLFile is where posd writes its API's URL in its home at each
// start (daemon.APIURLFile; poscli does not link the daemon).
const nodeAPIURLFile = "api.url"

// NewCmdNode builds `poscli node` and its subcommands.
func NewCmdNode(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Administer a node: forging settings, node stake",
		Long: `Administer the node with its admin token: the content of <posd home>/api.token.
Give it with --token-file FILE, or --node-home DIR to read DIR/api.token;
with --node-home and no --node, poscli also talks to the node of that home
(the URL it wrote in DIR/api.url when it started), not to the default node.`,
		Example: `  poscli node config --node-home ~/.posd
  poscli node config --node-home ~/.posd --block-size 50 --block-interval 1s
  poscli node stake --token-file ./api.token --amount 10`,
		Args: parentArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdNodeConfig(f, nil), NewCmdNodeStake(f, nil))
	return cmd
}

// adminToken is where the admin token comes from.
type adminToken struct {
	File      string // --token-file
	NodeHome  string // --node-home
	NodeGiven bool   // --node was on the command line: it wins over DIR/api.url
}

// client reads the token and returns a client with it: for the node of
// --node-home (DIR/api.url) unless --node was given, else for --node. A
// token sent to another node than its own would be refused, and would
// tell that node the token.
func (a *adminToken) client(io *IOStreams, g *GlobalOptions, newClient func(...client.Option) (*client.Client, error)) (*client.Client, error) {
	tok, err := a.read()
	if err != nil {
		return nil, err
	}
	if a.NodeHome != "" && !a.NodeGiven {
		data, err := os.ReadFile(filepath.Join(a.NodeHome, nodeAPIURLFile))
		switch {
		case err == nil && strings.TrimSpace(string(data)) != "":
			g.Node = strings.TrimSpace(string(data))
		case err == nil:
			return nil, fmt.Errorf("%s is empty", filepath.Join(a.NodeHome, nodeAPIURLFile))
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintln(io.ErrOut, io.ErrColorScheme().Yellow(fmt.Sprintf(
				"warning: %s has no %s (posd writes it when it starts); using %s", a.NodeHome, nodeAPIURLFile, g.Node)))
		default:
			return nil, fmt.Errorf("cannot read the node's URL: %v", err)
		}
	}
	return newClient(client.WithToken(tok))
}

func (a *adminToken) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.File, "token-file", "", "read the admin token from `FILE`")
	cmd.Flags().StringVar(&a.NodeHome, "node-home", "", "posd's home `DIR`: read DIR/api.token")
}

func (a *adminToken) read() (string, error) {
	if a.File != "" && a.NodeHome != "" {
		return "", errors.New("give either --token-file or --node-home, not both")
	}
	path := a.File
	if path == "" && a.NodeHome != "" {
		path = filepath.Join(a.NodeHome, "api.token")
	}
	if path == "" {
		return "", errors.New("this needs the node's admin token: pass --token-file FILE or --node-home DIR (posd's home, holding api.token)")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("admin token file %s not found: posd writes it at first start in its home (see --node-home)", path)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the admin token: %v", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	return tok, nil
}

// NodeConfigOptions are the options of `poscli node config`.
type NodeConfigOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Client  func(...client.Option) (*client.Client, error)
	Ctx     context.Context
	Token   adminToken

	BlockSize     *int
	BlockInterval *time.Duration
	PoolLimit     *int
}

// NewCmdNodeConfig builds `poscli node config`.
func NewCmdNodeConfig(f *Factory, runF func(*NodeConfigOptions) error) *cobra.Command {
	opts := &NodeConfigOptions{IO: f.IO, Globals: f.Globals, Client: f.Client}
	var size, pool int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "config [--block-size N] [--block-interval D] [--pool-limit N]",
		Short: "Show or change the node's forging settings",
		Long: `Without flags, show the node's forging settings (GET /v1/config). With
flags, change those given and show the result (PUT /v1/config). The node
forges a block (of up to the genesis max_block_txs) once --block-size
transactions are pending or the oldest has waited --block-interval;
--pool-limit is how many transactions its pool holds.

With the genesis heartbeat on (the default), heartbeat blocks carry pending
transactions along: until the newest payment is 64 blocks deep, a block
follows the head within heartbeat_ms whatever these settings, which then
only time the first block after the chain rests (docs/CONSENSUS.md). poscli
prints a note saying so.

JSON (-o json): {"block_size", "block_interval_ms", "pool_limit"}.`,
		Example: `  poscli node config --node-home ~/.posd
  poscli node config --token-file api.token --block-size 50
  poscli node config --node-home ~/.posd --block-interval 500ms -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.Changed("block-size") {
				opts.BlockSize = &size
			}
			if fl.Changed("block-interval") {
				opts.BlockInterval = &interval
			}
			if fl.Changed("pool-limit") {
				opts.PoolLimit = &pool
			}
			opts.Ctx = cmd.Context()
			opts.Token.NodeGiven = fl.Changed("node")
			if runF != nil {
				return runF(opts)
			}
			return nodeConfigRun(opts)
		},
	}
	opts.Token.flags(cmd)
	cmd.Flags().IntVar(&size, "block-size", 0, "forge once `N` transactions are pending")
	cmd.Flags().DurationVar(&interval, "block-interval", 0, "forge once the oldest pending transaction waited `D` (e.g. 2s, 500ms)")
	cmd.Flags().IntVar(&pool, "pool-limit", 0, "most transactions `N` in the pool")
	return cmd
}

func nodeConfigRun(opts *NodeConfigOptions) error {
	var patch rpc.ConfigPatch
	if opts.BlockSize != nil {
		if *opts.BlockSize < 1 {
			return fmt.Errorf("--block-size must be at least 1, got %d", *opts.BlockSize)
		}
		patch.BlockSize = opts.BlockSize
	}
	if opts.BlockInterval != nil {
		ms := opts.BlockInterval.Milliseconds()
		if *opts.BlockInterval <= 0 || ms == 0 {
			return fmt.Errorf("--block-interval must be at least 1ms, got %s", *opts.BlockInterval)
		}
		patch.BlockIntervalMs = &ms
	}
	if opts.PoolLimit != nil {
		if *opts.PoolLimit < 1 {
			return fmt.Errorf("--pool-limit must be at least 1, got %d", *opts.PoolLimit)
		}
		patch.PoolLimit = opts.PoolLimit
	}
	c, err := opts.Token.client(opts.IO, opts.Globals, opts.Client)
	if err != nil {
		return err
	}
	ctx := ctxOr(opts.Ctx)
	var cfg rpc.Config
	changed := patch != (rpc.ConfigPatch{})
	if changed {
		cfg, err = c.SetConfig(ctx, patch)
	} else {
		cfg, err = c.Config(ctx)
	}
	if client.IsCode(err, "bad_request") {
		return fmt.Errorf("the node refused the settings: %s", err.(*client.APIError).Message)
	}
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, cfg)
	}
	if changed && opts.IO.ErrIsTerminal {
		fmt.Fprintln(opts.IO.ErrOut, opts.IO.ErrColorScheme().Green("✓ Updated the node's settings"))
	}
	fl := fields{cs: opts.IO.ColorScheme()}
	fl.Add("block size", fmt.Sprint(cfg.BlockSize))
	fl.Add("block interval", formatMs(cfg.BlockIntervalMs))
	fl.Add("pool limit", fmt.Sprint(cfg.PoolLimit))
	if err := fl.Write(opts.IO.Out); err != nil {
		return err
	}
	// Without the note a longer interval or a larger size seems to do
	// nothing on a busy chain; a node whose genesis is unreadable gets none.
	if g, err := c.Genesis(ctx); err == nil && g.Heartbeat {
		fmt.Fprintln(opts.IO.ErrOut, heartbeatNote(g.HeartbeatMs))
	}
	return nil
}

// heartbeatNote says why the forging settings show little effect while the
// heartbeat beats.
func heartbeatNote(heartbeatMs int64) string {
	return fmt.Sprintf("note: heartbeat blocks carry pending transactions along: until the newest payment is 64 blocks deep, a block follows the head within about %s whatever the block size and interval, which only time the first block after the chain rests",
		formatMs(heartbeatMs))
}

// NodeStakeOptions are the options of `poscli node stake`.
type NodeStakeOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Client  func(...client.Option) (*client.Client, error)
	Ctx     context.Context
	Token   adminToken

	Amount uint64
}

// submitJSON is the JSON shape of `poscli node stake`.
type submitJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// NewCmdNodeStake builds `poscli node stake`.
func NewCmdNodeStake(f *Factory, runF func(*NodeStakeOptions) error) *cobra.Command {
	opts := &NodeStakeOptions{IO: f.IO, Globals: f.Globals, Client: f.Client}
	cmd := &cobra.Command{
		Use:   "stake --amount N",
		Short: "Make the node stake from its own key",
		Long: `Ask the node to send a STAKE of --amount signed by its own key (POST
/v1/stake), so that it can be elected to forge.

JSON (-o json): {"id", "status"}.`,
		Example: `  poscli node stake --node-home ~/.posd --amount 10
  poscli node stake --token-file api.token --amount 10 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("amount") {
				return fmt.Errorf("--amount is required (see '%s --help')", cmd.CommandPath())
			}
			opts.Ctx = cmd.Context()
			opts.Token.NodeGiven = cmd.Flags().Changed("node")
			if runF != nil {
				return runF(opts)
			}
			return nodeStakeRun(opts)
		},
	}
	opts.Token.flags(cmd)
	uint64Flag(cmd.Flags(), &opts.Amount, "amount", 0, "amount `N` to stake")
	return cmd
}

func nodeStakeRun(opts *NodeStakeOptions) error {
	if opts.Amount == 0 {
		return errors.New("--amount must be greater than 0")
	}
	c, err := opts.Token.client(opts.IO, opts.Globals, opts.Client)
	if err != nil {
		return err
	}
	res, err := c.Stake(ctxOr(opts.Ctx), opts.Amount)
	if err != nil {
		return submitError(err)
	}
	out := submitJSON{Status: res.Status}
	if res.ID != nil {
		out.ID = res.ID.String()
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, out)
	}
	fl := fields{cs: opts.IO.ColorScheme()}
	fl.Add("id", out.ID)
	fl.Add("status", out.Status)
	return fl.Write(opts.IO.Out)
}
