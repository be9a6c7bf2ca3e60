package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/keystore"
)

// QueryEnv is what every query command takes from the Factory.
type QueryEnv struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Client  func(...client.Option) (*client.Client, error)
	Keys    func() keystore.Dir
	Now     func() time.Time
	Ctx     context.Context
}

func newQueryEnv(f *Factory) QueryEnv {
	return QueryEnv{IO: f.IO, Globals: f.Globals, Client: f.Client, Keys: f.Keys, Now: f.Now}
}

func (e *QueryEnv) ctx() context.Context { return ctxOr(e.Ctx) }

func (e *QueryEnv) own() ownKeys { return ownKeysOf(e.Keys()) }

// queryCmd fills in what all query commands share.
func queryCmd(env *QueryEnv, cmd *cobra.Command, run func() error) *cobra.Command {
	cmd.RunE = func(c *cobra.Command, args []string) error {
		env.Ctx = c.Context()
		return run()
	}
	return cmd
}

// ---- status ----

// StatusOptions are the options of `poscli status`.
type StatusOptions struct{ QueryEnv }

// NewCmdStatus builds `poscli status`.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "status",
		Short: "Show the node's chain, head and settings",
		Long: `Show what the node reports about itself (GET /v1/status): chain id and
genesis.json hash (the network's identity, which block 0 carries as its prev
hash; not block 0's own hash), head height, hash and time, the justified
and final heights (blocks at or below the final height are never reverted),
the node's address, election, peers, forging settings and pool size, then
its peers (GET /v1/peers) nearest first with their round-trip times: RTT is
a moving average of the node's pings (one every 10 s), LAST the latest ping;
"-" until the first ping was answered. When finality stalls (more than a
third of the stake not voting), status says so loudly, with the stake
missing.

JSON (-o json): {"chain_id", "genesis_hash", "height", "head_hash",
"head_timestamp", "address", "election", "peers", "block_size",
"block_interval_ms", "pending", "peer_id", "p2p_addrs", "version",
"justified_height", "justified_hash", "finalized_height", "finalized_hash",
"finality_stalled"} as the node sends it (timestamps in unix milliseconds;
the finality fields are absent on a node without finality, and
finality_stalled unless it stalls: see poscli finality --help), and
"peer_list": the peers as poscli peers -o json gives them, nearest first.`,
		Example: `  poscli status
  poscli status --node http://10.0.0.2:5001
  poscli status -o json | jq .height`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return statusRun(opts)
	})
}

func statusRun(opts *StatusOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	st, err := c.Status(opts.ctx())
	if err != nil {
		return err
	}
	// The peers are a second request: status still answers when they
	// cannot be had, saying so.
	peers, peersErr := c.Peers(opts.ctx())
	if peersErr != nil {
		fmt.Fprintf(opts.IO.ErrOut, "peers unavailable: %v\n", peersErr)
	}
	peers = nonNil(peers)
	for i := range peers {
		peers[i].Addrs = nonNil(peers[i].Addrs)
	}
	sortByRTT(peers)
	if opts.Globals.JSON() {
		st.P2PAddrs = nonNil(st.P2PAddrs)
		out := statusJSON{Status: st}
		if peersErr == nil {
			out.PeerList = &peers
		}
		return writeJSON(opts.IO.Out, out)
	}
	cs := opts.IO.ColorScheme()
	if st.FinalityStalled != nil {
		// First and loud: blocks go on, but nothing new becomes final.
		fmt.Fprintln(opts.IO.Out, cs.Red(cs.Bold(stallLine(st.FinalityStalled))))
		writeStalledStakers(opts.IO.Out, st.FinalityStalled, opts.own(), cs)
		fmt.Fprintln(opts.IO.Out)
	}
	fl := fields{cs: cs}
	fl.Add("node", c.BaseURL())
	fl.Add("chain id", st.ChainID)
	fl.Add("genesis.json hash", st.GenesisHash.String())
	fl.Add("height", u64(st.Height))
	fl.Add("head hash", st.HeadHash.String())
	fl.Add("head time", formatTime(st.HeadTimestamp, opts.Now()))
	if st.JustifiedHeight != nil {
		fl.Add("justified", u64(*st.JustifiedHeight))
	}
	if st.FinalizedHeight != nil {
		final := u64(*st.FinalizedHeight)
		if st.Height >= *st.FinalizedHeight {
			final += fmt.Sprintf(" (%d behind the head)", st.Height-*st.FinalizedHeight)
		}
		if st.FinalityStalled != nil {
			final = cs.Red(final + ", stalled")
		}
		fl.Add("final", final)
	}
	fl.Add("node address", opts.own().full(chain.Address(st.Address), cs))
	fl.Add("election", st.Election)
	fl.Add("peers", strconv.Itoa(st.Peers))
	fl.Add("block size", strconv.Itoa(st.BlockSize))
	fl.Add("block interval", formatMs(st.BlockIntervalMs))
	fl.Add("pending txs", strconv.Itoa(st.Pending))
	if st.PeerID != "" {
		fl.Add("peer id", st.PeerID)
	}
	if len(st.P2PAddrs) > 0 {
		fl.Add("p2p addrs", strings.Join(st.P2PAddrs, ", "))
	}
	fl.Add("version", st.Version)
	if st.Byzantine != "" {
		fl.Add("byzantine", cs.Red(st.Byzantine+" (misbehaving on purpose: lab network)"))
	}
	if st.ClockBehindMs > 0 {
		fl.Add("clock", cs.Yellow(fmt.Sprintf("looks %s behind the network's: blocks arrive ahead of it (check NTP)", formatMs(st.ClockBehindMs))))
	}
	if err := fl.Write(opts.IO.Out); err != nil || len(peers) == 0 {
		return err
	}
	fmt.Fprintln(opts.IO.Out)
	t := newTable(opts.IO.Out, "peer", "rtt", "last", "addr")
	for _, p := range peers {
		addr := "-"
		if len(p.Addrs) > 0 {
			addr = p.Addrs[0]
		}
		t.Append(p.ID, rttText(p.RTTMs), rttText(p.RTTLastMs), addr)
	}
	return t.Render()
}

// statusJSON is status -o json: the node's status and its peers.
type statusJSON struct {
	rpc.Status
	// PeerList is absent when the peers could not be had, [] with none.
	PeerList *[]rpc.Peer `json:"peer_list,omitempty"`
}

// ---- accounts ----

// AccountsOptions are the options of `poscli accounts`.
type AccountsOptions struct{ QueryEnv }

// NewCmdAccounts builds `poscli accounts`.
func NewCmdAccounts(f *Factory, runF func(*AccountsOptions) error) *cobra.Command {
	opts := &AccountsOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "accounts",
		Short: "List every account: balance, stake, nonce",
		Long: `List every account with a balance, stake or nonce, in address order. Your
own keys are marked with their name.

JSON (-o json): [{"address", "balance", "stake", "nonce"}].`,
		Example: `  poscli accounts
  poscli accounts -o json | jq 'map(.balance) | add'`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return accountsRun(opts)
	})
}

func accountsRun(opts *AccountsOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	accs, err := c.Accounts(opts.ctx())
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, nonNil(accs))
	}
	if len(accs) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no accounts yet")
		return nil
	}
	own, cs := opts.own(), opts.IO.ColorScheme()
	// The unbonding column appears when some account has coins unbonding.
	unbonding := slices.ContainsFunc(accs, func(a rpc.Account) bool { return a.Unbonding > 0 })
	head := []string{"address", "balance", "stake", "nonce"}
	if unbonding {
		head = []string{"address", "balance", "stake", "unbonding", "nonce"}
	}
	t := newTable(opts.IO.Out, head...)
	for _, a := range accs {
		row := []string{own.label(a.Address, cs), u64(a.Balance), u64(a.Stake), u64(a.Nonce)}
		if unbonding {
			row = slices.Insert(row, 3, unbondingCell(a.Unbonding, a.ReleaseHeight))
		}
		t.Append(row...)
	}
	return t.Render()
}

// unbondingCell shows unbonding coins and the height that returns them:
// "150 until 261"; "" for none.
func unbondingCell(amount, release uint64) string {
	if amount == 0 {
		return ""
	}
	return u64(amount) + " until " + u64(release)
}

// ---- account ----

// AccountOptions are the options of `poscli account`.
type AccountOptions struct {
	QueryEnv
	Ref string // address or key name
}

// NewCmdAccount builds `poscli account ADDR|NAME`.
func NewCmdAccount(f *Factory, runF func(*AccountOptions) error) *cobra.Command {
	opts := &AccountOptions{QueryEnv: newQueryEnv(f)}
	cmd := queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "account [ADDRESS|NAME]",
		Short: "Show one account: balance, stake, nonces",
		Long: `Show the account of an address, or of one of your keys by name (default
"default"): balance, stake, nonce (of its last committed transaction) and
pending nonce (of its last pooled one; the next transaction uses pending
nonce + 1). An address never seen reads as zeros. The address may be
shortened as tables print it (3f2a…91bc) or to a unique prefix (3f2a0c):
the node resolves it.

JSON (-o json): {"address", "balance", "stake", "nonce", "unbonding",
"release_height" (while coins unbond), "pending_nonce"}.`,
		Example: `  poscli account
  poscli account alice
  poscli account 3f2a0c9e5d7b1a2c4e6f8091a3b5c7d9e1f20304 -o json
  poscli account '3f2a…0304'`,
		Args:              args(0, 1, "an address or key name"),
		ValidArgsFunction: firstArgKeyName(f),
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return accountRun(opts)
	})
	inner := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		opts.Ref = defaultKey
		if len(args) == 1 {
			opts.Ref = args[0]
		}
		return inner(c, args)
	}
	return cmd
}

func accountRun(opts *AccountOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	addr, err := resolveAddressOn(opts.ctx(), c, opts.Ref, opts.Keys(), "account")
	if err != nil {
		return err
	}
	acc, err := c.Account(opts.ctx(), addr)
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		if acc.PendingNonce == nil {
			n := acc.Nonce
			acc.PendingNonce = &n
		}
		return writeJSON(opts.IO.Out, acc)
	}
	cs := opts.IO.ColorScheme()
	fl := fields{cs: cs}
	fl.Add("address", opts.own().full(acc.Address, cs))
	fl.Add("balance", u64(acc.Balance))
	fl.Add("stake", u64(acc.Stake))
	if acc.Unbonding > 0 {
		fl.Add("unbonding", unbondingCell(acc.Unbonding, acc.ReleaseHeight))
	}
	fl.Add("nonce", u64(acc.Nonce))
	pending := acc.Nonce
	if acc.PendingNonce != nil {
		pending = *acc.PendingNonce
	}
	fl.Add("pending nonce", u64(pending))
	return fl.Write(opts.IO.Out)
}

// ---- stakes ----

// StakesOptions are the options of `poscli stakes`.
type StakesOptions struct{ QueryEnv }

// barWidth is the width of a 100% share bar.
const barWidth = 20

// NewCmdStakes builds `poscli stakes`.
func NewCmdStakes(f *Factory, runF func(*StakesOptions) error) *cobra.Command {
	opts := &StakesOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "stakes",
		Short: "List the stakers and their share of the stake",
		Long: `List every staking account, largest stake first, with its share of the total
stake (its chance to be elected forger) as a percentage and a bar.

JSON (-o json): [{"address", "stake", "share"}] with share a fraction in
[0, 1].`,
		Example: `  poscli stakes
  poscli stakes -o json | jq '.[0]'`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return stakesRun(opts)
	})
}

func stakesRun(opts *StakesOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	stakes, err := c.Stakes(opts.ctx())
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, nonNil(stakes))
	}
	if len(stakes) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "nobody stakes")
		return nil
	}
	own, cs := opts.own(), opts.IO.ColorScheme()
	unbonding := slices.ContainsFunc(stakes, func(s rpc.Stake) bool { return s.Unbonding > 0 })
	head := []string{"address", "stake", "share", ""}
	if unbonding {
		head = []string{"address", "stake", "unbonding", "share", ""}
	}
	t := newTable(opts.IO.Out, head...)
	for _, s := range stakes {
		row := []string{own.label(s.Address, cs), u64(s.Stake), percent(s.Share), cs.Green(bar(s.Share, barWidth))}
		if unbonding {
			row = slices.Insert(row, 2, unbondingCell(s.Unbonding, s.ReleaseHeight))
		}
		t.Append(row...)
	}
	return t.Render()
}

// ---- blocks ----

// BlocksOptions are the options of `poscli blocks`.
type BlocksOptions struct {
	QueryEnv
	From  *uint64
	Limit int
}

// maxBlocks is the node's largest page.
const maxBlocks = 1000

// NewCmdBlocks builds `poscli blocks`.
func NewCmdBlocks(f *Factory, runF func(*BlocksOptions) error) *cobra.Command {
	opts := &BlocksOptions{QueryEnv: newQueryEnv(f)}
	var from uint64
	cmd := &cobra.Command{
		Use:   "blocks [--limit N] [--from H]",
		Short: "List blocks: the newest, or from a height",
		Long: `List blocks in ascending height: the newest --limit blocks, or --limit
blocks from height --from. On a node with finality, the "final" column marks
final blocks (at or below the status's finalized_height: never reverted) and
the justified checkpoint.

JSON (-o json): [block] where block is {"hash", "height", "prev_hash",
"timestamp", "forger", "forger_public_key", "rank", "tx_root", "signature",
"transactions"} as GET /v1/blocks sends it (transactions: see tx show).`,
		Example: `  poscli blocks
  poscli blocks --limit 5
  poscli blocks --from 0 --limit 3 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("from") {
				opts.From = &from
			}
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return blocksRun(opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "n", 20, fmt.Sprintf("how many blocks, 1 to %d", maxBlocks))
	uint64Flag(cmd.Flags(), &from, "from", 0, "first `HEIGHT` (default: the newest blocks)")
	return cmd
}

func blocksRun(opts *BlocksOptions) error {
	if opts.Limit < 1 || opts.Limit > maxBlocks {
		return fmt.Errorf("--limit must be between 1 and %d, got %d", maxBlocks, opts.Limit)
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	blocks, err := c.Blocks(opts.ctx(), opts.From, opts.Limit)
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, nonNil(blocks))
	}
	if len(blocks) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no blocks in that range")
		return nil
	}
	own, cs, now := opts.own(), opts.IO.ColorScheme(), opts.Now()
	// The marks come from the status read after the blocks: finality only
	// moves up the main chain, so a block final then is final now.
	var st *rpc.Status
	if s, err := c.Status(opts.ctx()); err == nil && s.HasFinality() {
		st = &s
	}
	headers := []string{"height", "hash", "age", "forger", "rank", "txs"}
	if st != nil {
		headers = append(headers, "final")
	}
	t := newTable(opts.IO.Out, headers...)
	for i := range blocks {
		b := &blocks[i]
		row := []string{u64(b.Height), shortHash(b.Hash()), age(time.UnixMilli(b.Timestamp), now),
			own.label(b.Forger, cs), strconv.FormatUint(uint64(b.Rank), 10), strconv.Itoa(len(b.Transactions))}
		if st != nil {
			row = append(row, finalMark(b.Height, st, cs))
		}
		t.Append(row...)
	}
	return t.Render()
}

// finalMark is a block's cell in the final column: "✓ final" at or below
// the finalized height, "justified" at the justified checkpoint, else empty.
func finalMark(height uint64, st *rpc.Status, cs ColorScheme) string {
	switch {
	case height <= *st.FinalizedHeight:
		return cs.Green("✓ final")
	case st.JustifiedHeight != nil && height == *st.JustifiedHeight:
		return "justified"
	}
	return ""
}

// ---- block ----

// BlockOptions are the options of `poscli block`.
type BlockOptions struct {
	QueryEnv
	Ref string // height or hash
}

// NewCmdBlock builds `poscli block HEIGHT|HASH`.
func NewCmdBlock(f *Factory, runF func(*BlockOptions) error) *cobra.Command {
	opts := &BlockOptions{QueryEnv: newQueryEnv(f)}
	cmd := &cobra.Command{
		Use:   "block HEIGHT|HASH",
		Short: "Show a block and its transactions",
		Long: `Show the block at HEIGHT or with HASH (64 hex characters): its header and
a table of its transactions.

JSON (-o json): {"hash", "height", "prev_hash", "timestamp", "forger",
"forger_public_key", "rank", "tx_root", "signature", "transactions"} as GET
/v1/blocks/{height|hash} sends it; each transaction is {"id", "type",
"chain_id", "from", "to", "amount", "fee", "nonce", "public_key",
"signature"}.`,
		Example: `  poscli block 12
  poscli block 0 -o json
  poscli block 5c1e0d3f...`,
		Args: args(1, 1, "a block height or hash"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return blockRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(negativeHeightError)
	return cmd
}

// negativeHeightError turns cobra's "unknown shorthand flag: '1' in -1" for
// `poscli block -1` into what the user got wrong.
func negativeHeightError(c *cobra.Command, err error) error {
	msg := err.Error()
	if _, arg, ok := strings.Cut(msg, "' in "); ok && strings.HasPrefix(msg, "unknown shorthand flag: ") {
		if _, perr := strconv.ParseInt(arg, 10, 64); perr == nil {
			return fmt.Errorf("block heights start at 0: %s is not a height (see '%s --help')", arg, c.CommandPath())
		}
	}
	return fmt.Errorf("%v (see '%s --help')", err, c.CommandPath())
}

func blockRun(opts *BlockOptions) error {
	ref := strings.ToLower(opts.Ref)
	_, herr := strconv.ParseUint(ref, 10, 64)
	isHeight := herr == nil
	if !isHeight && !isHexPrefix(ref, 64) {
		if _, err := chain.ParseHash(ref); err != nil {
			return fmt.Errorf("%q is neither a block height nor a block hash (64 hex characters, or a unique prefix of at least %d)", opts.Ref, minPrefix)
		}
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	if !isHeight && isHexPrefix(ref, 64) {
		if ref, err = resolvePrefix(opts.ctx(), c, ref, blockPrefix); err != nil {
			return err
		}
	}
	b, err := c.Block(opts.ctx(), ref)
	if client.IsNotFound(err) && isHeight && isHexPrefix(ref, 64) {
		// digits only, above the head: maybe a short hash made of digits
		if full, perr := resolvePrefix(opts.ctx(), c, ref, blockPrefix); perr == nil {
			b, err = c.Block(opts.ctx(), full)
		}
	}
	if client.IsNotFound(err) {
		return fmt.Errorf("block %s not found on the node at %s (see `poscli status` for its height)", opts.Ref, c.BaseURL())
	}
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, b)
	}
	own, cs := opts.own(), opts.IO.ColorScheme()
	fl := fields{cs: cs}
	fl.Add("height", u64(b.Height))
	fl.Add("hash", b.Hash().String())
	fl.Add("prev hash", b.PrevHash.String())
	fl.Add("time", formatTime(b.Timestamp, opts.Now()))
	if b.Height == 0 {
		fl.Add("forger", "- (genesis)")
	} else {
		fl.Add("forger", own.full(b.Forger, cs))
	}
	fl.Add("rank", strconv.FormatUint(uint64(b.Rank), 10))
	fl.Add("tx root", b.TxRoot.String())
	fl.Add("transactions", strconv.Itoa(len(b.Transactions)))
	if err := fl.Write(opts.IO.Out); err != nil {
		return err
	}
	if len(b.Transactions) == 0 {
		return nil
	}
	fmt.Fprintln(opts.IO.Out)
	return txTable(opts.IO.Out, b.Transactions, own, cs, true)
}

// txTable lists transactions, with their index in a block when index.
func txTable(w io.Writer, txs []chain.Transaction, own ownKeys, cs ColorScheme, index bool) error {
	headers := []string{"id", "type", "from", "to", "amount", "fee", "nonce"}
	if index {
		headers = append([]string{"#"}, headers...)
	}
	t := newTable(w, headers...)
	for i := range txs {
		tx := &txs[i]
		row := []string{shortHash(tx.ID()), string(tx.Type), own.label(tx.From, cs), own.label(tx.To, cs), u64(tx.Amount), u64(tx.Fee), u64(tx.Nonce)}
		if index {
			row = append([]string{strconv.Itoa(i)}, row...)
		}
		t.Append(row...)
	}
	return t.Render()
}

// ---- pool ----

// PoolOptions are the options of `poscli pool`.
type PoolOptions struct{ QueryEnv }

// NewCmdPool builds `poscli pool`.
func NewCmdPool(f *Factory, runF func(*PoolOptions) error) *cobra.Command {
	opts := &PoolOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:     "pool",
		Aliases: []string{"pending"},
		Short:   "List the transactions waiting in the node's pool",
		Long: `List the node's pending transactions, not yet in a block.

JSON (-o json): [{"id", "type", "chain_id", "from", "to", "amount", "fee",
"nonce", "public_key", "signature"}] as GET /v1/txs/pending sends it.`,
		Example: `  poscli pool
  poscli pool -o json | jq length`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return poolRun(opts)
	})
}

func poolRun(opts *PoolOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	txs, err := c.PendingTxs(opts.ctx())
	if err != nil {
		return err
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, nonNil(txs))
	}
	if len(txs) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "the pool is empty")
		return nil
	}
	return txTable(opts.IO.Out, txs, opts.own(), opts.IO.ColorScheme(), false)
}

// ---- peers ----

// PeersOptions are the options of `poscli peers`.
type PeersOptions struct{ QueryEnv }

// NewCmdPeers builds `poscli peers`.
func NewCmdPeers(f *Factory, runF func(*PeersOptions) error) *cobra.Command {
	opts := &PeersOptions{newQueryEnv(f)}
	return queryCmd(&opts.QueryEnv, &cobra.Command{
		Use:   "peers",
		Short: "List the node's peers",
		Long: `List the peers the node is connected to, nearest first: peer id, round-trip
time and addresses. RTT is a moving average of the node's pings (one every
10 s, so one slow answer moves it by a fifth), LAST the latest ping; "-"
until the first ping was answered.

JSON (-o json): [{"id", "addrs", "rtt_ms", "rtt_last_ms"}] as the node
sends it (in peer id order), with addrs a list of multiaddresses and the
round-trip times in milliseconds, absent until measured.`,
		Example: `  poscli peers
  poscli peers -o json | jq -r '.[].id'`,
		Args: noArgs,
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return peersRun(opts)
	})
}

func peersRun(opts *PeersOptions) error {
	c, err := opts.Client()
	if err != nil {
		return err
	}
	peers, err := c.Peers(opts.ctx())
	if err != nil {
		return err
	}
	peers = nonNil(peers)
	for i := range peers {
		peers[i].Addrs = nonNil(peers[i].Addrs)
	}
	if opts.Globals.JSON() {
		return writeJSON(opts.IO.Out, peers)
	}
	if len(peers) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no peers")
		return nil
	}
	sortByRTT(peers)
	t := newTable(opts.IO.Out, "id", "rtt", "last", "addrs")
	for _, p := range peers {
		t.Append(p.ID, rttText(p.RTTMs), rttText(p.RTTLastMs), strings.Join(p.Addrs, ", "))
	}
	return t.Render()
}
