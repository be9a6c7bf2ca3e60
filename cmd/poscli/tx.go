package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/keystore"
)

// NewCmdTx builds `poscli tx` and its subcommands.
func NewCmdTx(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tx",
		Short: "Sign and send transactions, look one up",
		Long: `Sign transactions locally with one of your keys and send them to the node.

The nonce is the account's pending_nonce + 1 and the chain id is the node's
(GET /v1/status). Balances are checked before sending where possible.`,
		Example: `  poscli tx exchange --key alice --amount 100 --wait
  poscli tx transfer --key alice --to bob --amount 5 --fee 1 --wait=included
  poscli tx stake --key alice --amount 50
  poscli tx unstake --key alice --amount 20
  poscli tx show 5c1e…(64 hex)`,
		Args: parentArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		NewCmdTxExchange(f, nil),
		NewCmdTxTransfer(f, nil),
		NewCmdTxStake(f, nil),
		NewCmdTxUnstake(f, nil),
		NewCmdTxShow(f, nil),
	)
	return cmd
}

// TxSendOptions are the options of tx exchange, transfer, stake and unstake.
type TxSendOptions struct {
	IO           *IOStreams
	Globals      *GlobalOptions
	Client       func(...client.Option) (*client.Client, error)
	Keys         func() keystore.Dir
	Pass         passphraseSource
	PollInterval time.Duration
	Ctx          context.Context

	Type        chain.TxType
	Key         string // name or file
	To          string // address or key name; "" for stake and unstake
	Amount      uint64
	Fee         uint64
	Wait        WaitMode
	WaitTimeout time.Duration
	// Now is the clock that times inclusion and finality.
	Now func() time.Time
}

// WaitMode is what `tx … --wait` waits for.
type WaitMode string

// Wait modes: --wait alone (or --wait=final) waits until the transaction is
// final, --wait=included until it is in a block; no --wait does not wait.
const (
	WaitNone     WaitMode = ""
	WaitIncluded WaitMode = "included"
	WaitFinal    WaitMode = "final"
)

// String, Set and Type make WaitMode a flag value. true and false are
// accepted too, so scripts that wrote --wait=true (a bool flag before
// finality) keep working: true is final, false does not wait.
func (m *WaitMode) String() string { return string(*m) }

func (m *WaitMode) Set(v string) error {
	switch strings.ToLower(v) {
	case "final", "true", "1":
		*m = WaitFinal
	case "included", "committed":
		*m = WaitIncluded
	case "false", "0", "none":
		*m = WaitNone
	default:
		return fmt.Errorf("must be final or included, got %q", v)
	}
	return nil
}

func (m *WaitMode) Type() string { return "stage" }

type txKind struct {
	typ     chain.TxType
	use     string
	short   string
	long    string
	example string
	to      string // "required", "optional" or "" (no --to)
}

var (
	kindExchange = txKind{
		typ:   chain.TxExchange,
		use:   "exchange",
		short: "Buy coins: credit --amount to --to (default: yourself)",
		long: `Send an EXCHANGE: the original's way to buy coins. The recipient (--to, by
default the sending key itself) is credited --amount new coins; the sender
pays only --fee. Networks may restrict EXCHANGE to authorities listed in
their genesis.`,
		example: `  poscli tx exchange --amount 100
  poscli tx exchange --key alice --to bob --amount 100 --wait`,
		to: "optional",
	}
	kindTransfer = txKind{
		typ:   chain.TxTransfer,
		use:   "transfer",
		short: "Send --amount coins to --to",
		long: `Send a TRANSFER of --amount coins, plus --fee for the forger, from --key to
--to (an address or the name of one of your keys).`,
		example: `  poscli tx transfer --to 3f2a0c9e5d7b1a2c4e6f8091a3b5c7d9e1f20304 --amount 5
  poscli tx transfer --key alice --to bob --amount 5 --fee 1 --wait
  poscli tx transfer --key alice --to bob --amount 5 --wait=included`,
		to: "required",
	}
	kindStake = txKind{
		typ:   chain.TxStake,
		use:   "stake",
		short: "Move --amount from balance to stake",
		long: `Send a STAKE: --amount moves from the key's balance to its stake, which
gives it a chance to forge blocks in proportion to its share.`,
		example: `  poscli tx stake --amount 50
  poscli tx stake --key alice --amount 50 --wait`,
	}
	kindUnstake = txKind{
		typ:   chain.TxUnstake,
		use:   "unstake",
		short: "Move --amount from stake to unbonding, back in the balance later",
		long: `Send an UNSTAKE: --amount leaves the key's stake at once (it no longer
counts in elections) and unbonds: it returns to the balance unbonding_blocks
heights later (a genesis parameter, 256 by default; 0 returns it at once).
Until then slashing still reaches it. ` + "`poscli account`" + ` shows the coins
unbonding and the height that releases them.`,
		example: `  poscli tx unstake --amount 20
  poscli tx unstake --key alice --amount 20 --wait -o json`,
	}
)

const txJSONDoc = `

Before sending, poscli checks the account on the node: the balance must
cover amount + fee (TRANSFER, STAKE) or the fee (EXCHANGE, UNSTAKE), and the
stake must cover an UNSTAKE; and the network's genesis: the fee must reach
its min_fee, and only its exchange authorities may EXCHANGE.

--wait waits until the transaction is final (no reorg can undo it) and says
how long inclusion and finality took, counted from sending (seen by polling,
so up to a poll late); --wait=included waits only until it is in a block. On
a node that does not report finality, --wait waits for inclusion and says so.

JSON (-o json): {"id", "status", "height", "block_hash", "index",
"confirmations", "final", "transaction"} as GET /v1/txs/{id}; height,
block_hash, index and confirmations only once committed (--wait); after
--wait also "included_after_ms" and, once final, "final_after_ms".
transaction is {"id", "type", "chain_id", "from", "to", "amount", "fee",
"nonce", "public_key", "signature"}.`

// NewCmdTxExchange builds `poscli tx exchange`.
func NewCmdTxExchange(f *Factory, runF func(*TxSendOptions) error) *cobra.Command {
	return newCmdTxSend(f, kindExchange, runF)
}

// NewCmdTxTransfer builds `poscli tx transfer`.
func NewCmdTxTransfer(f *Factory, runF func(*TxSendOptions) error) *cobra.Command {
	return newCmdTxSend(f, kindTransfer, runF)
}

// NewCmdTxStake builds `poscli tx stake`.
func NewCmdTxStake(f *Factory, runF func(*TxSendOptions) error) *cobra.Command {
	return newCmdTxSend(f, kindStake, runF)
}

// NewCmdTxUnstake builds `poscli tx unstake`.
func NewCmdTxUnstake(f *Factory, runF func(*TxSendOptions) error) *cobra.Command {
	return newCmdTxSend(f, kindUnstake, runF)
}

func newCmdTxSend(f *Factory, kind txKind, runF func(*TxSendOptions) error) *cobra.Command {
	opts := &TxSendOptions{
		IO: f.IO, Globals: f.Globals, Client: f.Client, Keys: f.Keys,
		Pass: newPassphraseSource(f), PollInterval: f.PollInterval, Type: kind.typ, Now: f.Now,
	}
	cmd := &cobra.Command{
		Use:     kind.use + " --amount N [flags]",
		Short:   kind.short,
		Long:    kind.long + txJSONDoc,
		Example: kind.example,
		Args: func(cmd *cobra.Command, args []string) error {
			// --wait takes its stage after "=": "--wait included" leaves
			// "included" as an argument.
			if len(args) == 1 && cmd.Flags().Changed("wait") && (args[0] == string(WaitIncluded) || args[0] == string(WaitFinal)) {
				return fmt.Errorf("--wait takes its stage with '=': --wait=%s (see '%s --help')", args[0], cmd.CommandPath())
			}
			return noArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("amount") {
				return fmt.Errorf("--amount is required (see '%s --help')", cmd.CommandPath())
			}
			if kind.to == "required" && !cmd.Flags().Changed("to") {
				return fmt.Errorf("--to is required: the recipient's address or key name (see '%s --help')", cmd.CommandPath())
			}
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return txSendRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Key, "key", "k", defaultKey, "signing key: a key `NAME` in <home>/keys or a PEM file")
	_ = cmd.RegisterFlagCompletionFunc("key", completeKeyNames(f))
	if kind.to != "" {
		fl.StringVar(&opts.To, "to", "", "recipient: an `ADDRESS` (or a unique prefix, or a table's 3f2a…91bc) or the name of one of your keys")
		_ = cmd.RegisterFlagCompletionFunc("to", completeKeyNames(f))
	}
	uint64Flag(fl, &opts.Amount, "amount", 0, "amount `N` (a positive whole number)")
	uint64Flag(fl, &opts.Fee, "fee", 0, "fee `N` paid to the forger")
	// The empty `` keeps pflag from naming a value: help reads
	// "--wait[=final]", and --wait alone stays what it was for scripts.
	fl.VarP(&opts.Wait, "wait", "w", "``wait until the transaction is final (--wait=included: only until it is in a block) and say how long each took")
	fl.Lookup("wait").NoOptDefVal = string(WaitFinal)
	fl.DurationVar(&opts.WaitTimeout, "wait-timeout", 2*time.Minute, "give up --wait after this long (0: never)")
	fl.StringVar(&opts.Pass.File, "passphrase-file", "", "read an encrypted key's passphrase from the first line of `FILE`")
	return cmd
}

// loadKey loads the key ref (a name in dir or a file), asking for its
// passphrase if it is encrypted.
func loadKey(ctx context.Context, dir keystore.Dir, ref string, pass passphraseSource) (*keystore.Key, error) {
	path := dir.Resolve(ref)
	enc, err := keystore.IsEncrypted(path)
	if err != nil {
		return nil, keyError(ref, dir.Path, err)
	}
	var pw []byte
	if enc {
		if pw, err = pass.existing(ctx, ref); err != nil {
			return nil, keyError(ref, dir.Path, err)
		}
	}
	k, err := keystore.Load(path, pw)
	if err != nil {
		return nil, keyError(ref, dir.Path, err)
	}
	return k, nil
}

// resolveAddressOn is resolveAddress, then an address known to the node
// from a short form: the tables' "fdea…084c", or a unique prefix (git-style).
func resolveAddressOn(ctx context.Context, c *client.Client, ref string, dir keystore.Dir, flag string) (chain.Address, error) {
	a, err := resolveAddress(ref, dir, flag)
	if err == nil {
		return a, nil
	}
	if head, tail, ok := splitShortAddress(ref); ok {
		full, serr := resolveShortAddress(ctx, c, head, tail)
		if serr != nil {
			return "", fmt.Errorf("%s %q: %v", flag, ref, serr)
		}
		return chain.Address(full), nil
	}
	if !isHexPrefix(strings.ToLower(ref), 40) {
		return a, err
	}
	if _, ierr := dir.Info(ref); ierr == nil {
		return a, err // a key by that name exists, its address unknown: say so
	}
	full, perr := resolvePrefix(ctx, c, strings.ToLower(ref), addrPrefix)
	if perr != nil {
		return "", fmt.Errorf("%s %q: %v", flag, ref, perr)
	}
	return chain.Address(full), nil
}

// resolveAddress reads ref as an address, or else as the name of a key in
// dir; flag names the argument in errors.
func resolveAddress(ref string, dir keystore.Dir, flag string) (chain.Address, error) {
	if a := chain.Address(strings.ToLower(ref)); a.Valid() {
		return a, nil
	}
	info, err := dir.Info(ref)
	if err == nil && info.Address != "" {
		return info.Address, nil
	}
	if err == nil {
		return "", fmt.Errorf("%s: the address of key %s is unknown (encrypted without its .pub file); run `poscli keys show %s` after using the key once", flag, ref, ref)
	}
	if ref == defaultKey && errors.Is(err, keystore.ErrNotFound) {
		return "", fmt.Errorf("%s: no key named %q in %s: create it with `poscli keygen`, or give an address or a key name", flag, defaultKey, dir.Path)
	}
	return "", fmt.Errorf("%s %q is neither an address (40 hex characters, a unique prefix of at least %d, or a table's short form like 3f2a…91bc) nor the name of a key in %s", flag, ref, minPrefix, dir.Path)
}

func txSendRun(opts *TxSendOptions) error {
	ctx := ctxOr(opts.Ctx)
	if opts.Amount == 0 {
		return errors.New("--amount must be greater than 0")
	}
	dir := opts.Keys()
	key, err := loadKey(ctx, dir, opts.Key, opts.Pass)
	if err != nil {
		return err
	}
	from := key.Address()
	if opts.Type == chain.TxTransfer && opts.To == "" {
		return errors.New("--to is required: the recipient's address or key name")
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	to := from
	if opts.To != "" && (opts.Type == chain.TxExchange || opts.Type == chain.TxTransfer) {
		if to, err = resolveAddressOn(ctx, c, opts.To, dir, "--to"); err != nil {
			return err
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	acc, err := c.Account(ctx, from)
	if err != nil {
		return err
	}
	nonce := acc.Nonce + 1
	if acc.PendingNonce != nil {
		nonce = *acc.PendingNonce + 1
	}
	tx := chain.Transaction{
		Type:    opts.Type,
		ChainID: st.ChainID,
		To:      to,
		Amount:  opts.Amount,
		Fee:     opts.Fee,
		Nonce:   nonce,
	}
	key.SignTx(&tx)
	if err := precheck(opts, networkRules(ctx, c, st), &tx, acc); err != nil {
		return err
	}

	if opts.Type == chain.TxStake {
		// Said before the stake goes out: a learner reads why before the
		// network shows it (blocks a slot late, finality stalled).
		warnIfNoNodeRuns(ctx, opts, c, st, from)
	}
	sent := opts.clock()()
	res, err := c.SubmitTx(ctx, &tx)
	if err != nil {
		return submitError(err)
	}
	info := rpc.TxInfo{ID: tx.ID(), Status: rpc.TxPending, Transaction: &tx}
	if res.ID != nil {
		info.ID = *res.ID
	}
	if res.Status != "" {
		info.Status = res.Status
	}
	ecs := opts.IO.ErrColorScheme()
	var took *txTimes
	if opts.Wait != WaitNone {
		mode := opts.Wait
		noFinality := mode == WaitFinal && !st.HasFinality()
		if noFinality {
			// A node before finality: inclusion is all there is to wait
			// for. Said on a terminal now, and in the table's "final" line
			// (stderr stays quiet for scripts, as on every success).
			if opts.IO.ErrIsTerminal {
				fmt.Fprintln(opts.IO.ErrOut, "note: the node does not report finality; waiting until the transaction is in a block")
			}
			mode = WaitIncluded
		}
		done, times, err := waitTx(ctx, c, opts, info.ID, mode, sent)
		times.NoFinality = noFinality
		if err != nil {
			// The transaction was sent: print it (id, pending) so that
			// scripts and people still have its id, then fail.
			if done.ID != (chain.Hash{}) {
				info = done
				if info.Transaction == nil {
					info.Transaction = &tx
				}
			}
			_ = printTxResult(opts.IO, opts.Globals, info, ownKeysOf(dir), nil)
			return err
		}
		info, took = done, &times
		if info.Transaction == nil {
			info.Transaction = &tx
		}
		if opts.IO.ErrIsTerminal && info.Height != nil {
			if mode == WaitFinal { // "✓ Committed" was said when it was
				fmt.Fprintln(opts.IO.ErrOut, ecs.Green(fmt.Sprintf("✓ Final in block %d", *info.Height)+times.final()))
			} else {
				fmt.Fprintln(opts.IO.ErrOut, ecs.Green(fmt.Sprintf("✓ Committed in block %d", *info.Height)+times.included()))
			}
		}
	} else if opts.IO.ErrIsTerminal && !opts.Globals.JSON() {
		fmt.Fprintln(opts.IO.ErrOut, ecs.Green(fmt.Sprintf("✓ Sent %s of %d", tx.Type, tx.Amount)))
	}
	return printTxResult(opts.IO, opts.Globals, info, ownKeysOf(dir), took)
}

// warnIfNoNodeRuns warns when the staking key is neither the node's key nor
// one of its peers': stake makes a key win elections, and each block it
// wins while no node forges with it comes a slot late (the next rank
// waits slot_ms). The dashboard shows such keys as "elected, offline".
//
// A key no node runs never votes either. When the stake would leave a
// third or more of all stake on such keys, finality stalls (more than 2/3
// must vote): that is said too, loudly, with the share.
func warnIfNoNodeRuns(ctx context.Context, opts *TxSendOptions, c *client.Client, st rpc.Status, from chain.Address) {
	peers, err := c.Peers(ctx)
	if err != nil {
		return // best effort: a warning, never a refusal
	}
	run := map[chain.Address]bool{chain.Address(st.Address): true}
	for _, p := range peers {
		if a, err := addressOfPeerID(p.ID); err == nil {
			run[a] = true
		}
	}
	ecs := opts.IO.ErrColorScheme()
	if !run[from] {
		fmt.Fprintln(opts.IO.ErrOut, ecs.Yellow(fmt.Sprintf(
			"warning: no node runs key %s (%s) — not the node at %s nor its %d peers. Staked, it will win elections it never forges, "+
				"and each such block comes a slot late. Run a node with it (posd start --key FILE), or stake from a node's own key (poscli node stake).",
			opts.Key, from.Short(), c.BaseURL(), len(peers))))
	}
	if !st.HasFinality() {
		return
	}
	stakes, err := c.Stakes(ctx)
	if err != nil {
		return
	}
	unrun, total := unrunStake(stakes, run, from, opts.Amount)
	if total > 0 && 3*unrun >= total {
		fmt.Fprintln(opts.IO.ErrOut, ecs.Red(fmt.Sprintf(
			"warning: finality will stall: %.1f%% of the stake would be on keys no node runs (a third or more), and those keys never vote. "+
				"Blocks go on but none becomes final. Run a node with the key (posd start --key FILE) so it votes.",
			100*float64(unrun)/float64(total))))
	}
}

// unrunStake is the stake on keys no node runs, and all stake, after from
// stakes amount more.
func unrunStake(stakes []rpc.Stake, run map[chain.Address]bool, from chain.Address, amount uint64) (unrun, total uint64) {
	total = amount
	if !run[from] {
		unrun = amount
	}
	for _, s := range stakes {
		total += s.Stake
		if !run[s.Address] {
			unrun += s.Stake
		}
	}
	return unrun, total
}

// networkRules is the node's genesis, whose parameters (min_fee, the
// exchange authorities) the pre-checks apply. Best effort: a node that does
// not serve it gets a genesis with its chain id and open defaults, and is
// left to judge the rest.
func networkRules(ctx context.Context, c *client.Client, st rpc.Status) *chain.Genesis {
	if g, err := c.Genesis(ctx); err == nil && g.ChainID == st.ChainID {
		return g
	}
	return &chain.Genesis{ChainID: st.ChainID, Exchange: chain.ExchangePolicy{Open: true}}
}

// precheck refuses, before anything is sent, what the chain's rules refuse
// whatever the node's pool holds: the stateless rules and genesis
// parameters of the transaction-type table (chain.Genesis.CheckTx), then
// the type's cost against the sender's committed account
// (chain.Genesis.CheckPayable; the recipient is left to the node). Each
// typed rule error becomes a message in the CLI's terms.
func precheck(opts *TxSendOptions, g *chain.Genesis, tx *chain.Transaction, acc rpc.Account) error {
	err := g.CheckTx(tx)
	if err == nil {
		err = g.CheckPayable(tx, chain.Account{Balance: acc.Balance, Stake: acc.Stake, Nonce: acc.Nonce, Unbonding: acc.Unbonding}, chain.Account{})
	}
	if err == nil {
		return nil
	}
	cost, _ := tx.Cost() // known not to overflow past CheckTx
	switch {
	case errors.Is(err, chain.ErrAmountOverflow):
		return fmt.Errorf("--amount %d + --fee %d overflows", tx.Amount, tx.Fee)
	case errors.Is(err, chain.ErrInsufficientStake):
		return fmt.Errorf("insufficient stake: have %d, need %d (key %s)", acc.Stake, cost.Stake, opts.Key)
	case errors.Is(err, chain.ErrInsufficientFunds):
		detail := fmt.Sprintf("fee %d", tx.Fee)
		if cost.Balance != tx.Fee { // the type spends the amount from the balance too
			detail = fmt.Sprintf("amount %d + fee %d", tx.Amount, tx.Fee)
		}
		return fmt.Errorf("insufficient balance: have %d, need %d (%s, key %s)", acc.Balance, cost.Balance, detail, opts.Key)
	case errors.Is(err, chain.ErrNotExchange):
		return fmt.Errorf("exchange not allowed: this network lets only the authorities in its genesis EXCHANGE, and key %s (%s) is not one", opts.Key, tx.From)
	case errors.Is(err, chain.ErrFeeTooLow):
		return fmt.Errorf("--fee %d is below this network's min_fee of %d: pass --fee %d or more", tx.Fee, g.MinFee, g.MinFee)
	}
	return fmt.Errorf("cannot build a valid transaction: %v", err)
}

// errUnavailable is the API's answer when the node cannot take
// transactions now (503: halted, shutting down).
var errUnavailable = &chain.RuleError{Code: "unavailable"}

// submitError explains why the node refused a transaction. The node's
// codes are matched as the typed errors of chain and the pool
// (client.APIError.Is compares codes).
func submitError(err error) error {
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code == "unauthorized" {
		return err
	}
	hint := ""
	switch {
	case errors.Is(err, chain.ErrBadNonce), errors.Is(err, mempool.ErrNonceGap):
		hint = "; another transaction from this key may have been sent meanwhile, try again"
	case errors.Is(err, mempool.ErrAlreadyKnown):
		hint = "; nothing new was sent"
	case errors.Is(err, chain.ErrWrongChain):
		hint = "; is --node the network you meant?"
	case errors.Is(err, mempool.ErrPoolFull), errors.Is(err, errUnavailable):
		hint = "; try again later"
	case errors.Is(err, chain.ErrNotExchange):
		hint = "; this network lets only its genesis authorities EXCHANGE"
	}
	return fmt.Errorf("the node refused the transaction: %s: %s%s", ae.Code, ae.Message, hint)
}

func (opts *TxSendOptions) clock() func() time.Time {
	if opts.Now == nil {
		return time.Now
	}
	return opts.Now
}

// txTimes are how long after sending a transaction was seen in a block and
// final (zero: not waited for). Seen by polling: they are late by up to
// one poll interval.
type txTimes struct {
	Included time.Duration
	Final    time.Duration
	// NoFinality: the node does not report finality, so --wait waited
	// for inclusion only.
	NoFinality bool
}

func (t txTimes) included() string {
	return " after " + roundDur(t.Included).String()
}

func (t txTimes) final() string {
	return fmt.Sprintf(" after %s (%s after inclusion)", roundDur(t.Final), roundDur(t.Final-t.Included))
}

// roundDur keeps durations readable: 1.234s, 850ms.
func roundDur(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Millisecond / 10)
}

// waitTx waits for id to be included (mode WaitIncluded) or final, with a
// spinner on a terminal, and times both stages from sent. On an error it
// returns what it last knew (zero before inclusion).
func waitTx(ctx context.Context, c *client.Client, opts *TxSendOptions, id chain.Hash, mode WaitMode, sent time.Time) (rpc.TxInfo, txTimes, error) {
	wctx := ctx
	if opts.WaitTimeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.WaitTimeout)
		defer cancel()
	}
	now := opts.clock()
	var times txTimes
	var sp *spinner
	if opts.IO.ErrIsTerminal {
		sp = startSpinner(opts.IO.ErrOut, "waiting for "+shortHash(id)+" to be committed")
	}
	var info, inBlock rpc.TxInfo
	var err error
	if mode == WaitIncluded {
		info, err = c.WaitTx(wctx, id, opts.PollInterval)
		times.Included = now().Sub(sent)
	} else {
		info, err = c.WaitTxStages(wctx, id, opts.PollInterval, func(in rpc.TxInfo) {
			times.Included, inBlock = now().Sub(sent), in
			if sp != nil {
				sp.Stop()
				fmt.Fprintln(opts.IO.ErrOut, opts.IO.ErrColorScheme().Green(fmt.Sprintf("✓ Committed in block %d", *in.Height)+times.included()))
				sp = startSpinner(opts.IO.ErrOut, "waiting for block "+u64(*in.Height)+" to be final")
			}
		})
		times.Final = now().Sub(sent)
		if err == nil && inBlock.Height == nil {
			// Final at the first poll: inclusion was not seen apart.
			times.Included = times.Final
		}
	}
	sp.Stop()
	if err == nil {
		return info, times, nil
	}
	if inBlock.Height != nil {
		info = inBlock
	}
	switch {
	case ctx.Err() != nil:
		return info, times, fmt.Errorf("interrupted while waiting; transaction %s was sent, check it with `poscli tx show %s`", id, id)
	case errors.Is(err, context.DeadlineExceeded) && inBlock.Height != nil:
		return info, times, fmt.Errorf("transaction %s is in block %d but was not final within %s; finality may be stalled: see `poscli finality`, and check it with `poscli tx show %s`", id, *inBlock.Height, opts.WaitTimeout, id)
	case errors.Is(err, context.DeadlineExceeded):
		return info, times, fmt.Errorf("transaction %s was sent but not committed within %s; check it with `poscli tx show %s`", id, opts.WaitTimeout, id)
	case client.IsNotFound(err):
		return info, times, fmt.Errorf("transaction %s left the node's pool without being committed; check the account with `poscli account` and send it again", id)
	}
	var ue *client.UnreachableError
	if errors.As(err, &ue) {
		// Not wrapped: describe would print only "node not reachable" and lose the id.
		return info, times, fmt.Errorf("transaction %s was sent, but the node stopped answering while poscli waited (%s); once it is back, check with `poscli tx show %s` and, if a restart lost its pool, send it again",
			id, describe(err), id)
	}
	return info, times, fmt.Errorf("transaction %s was sent, but waiting for it failed: %w", id, err)
}

// txResult is the JSON of a sent transaction: GET /v1/txs/{id}'s answer
// and, after --wait, how long it took to be included and final.
type txResult struct {
	rpc.TxInfo
	IncludedAfterMs *int64 `json:"included_after_ms,omitempty"`
	FinalAfterMs    *int64 `json:"final_after_ms,omitempty"`
}

// printTxResult is printTxInfo with the times of --wait.
func printTxResult(ios *IOStreams, g *GlobalOptions, info rpc.TxInfo, own ownKeys, took *txTimes) error {
	if took == nil {
		return printTxInfo(ios, g, info, own)
	}
	res := txResult{TxInfo: info}
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	res.IncludedAfterMs = ms(took.Included)
	if took.Final > 0 || info.Final {
		res.FinalAfterMs = ms(took.Final)
	}
	if g.JSON() {
		return writeJSON(ios.Out, res)
	}
	return printTxInfo(ios, g, info, own, took)
}

// printTxInfo prints a transaction and where it is.
// took, if set, adds how long --wait took (labels no wider than "chain
// id", so the layout stays what scripts and people know).
func printTxInfo(ios *IOStreams, g *GlobalOptions, info rpc.TxInfo, own ownKeys, took ...*txTimes) error {
	if g.JSON() {
		return writeJSON(ios.Out, info)
	}
	cs := ios.ColorScheme()
	fl := fields{cs: cs}
	fl.Add("id", info.ID.String())
	status := info.Status
	if status == rpc.TxCommitted {
		status = cs.Green(status)
	}
	fl.Add("status", status)
	if info.Height != nil {
		fl.Add("height", u64(*info.Height))
	}
	if info.BlockHash != nil {
		fl.Add("block", info.BlockHash.String())
	}
	if info.Index != nil {
		fl.Add("index", fmt.Sprint(*info.Index))
	}
	var t *txTimes
	if len(took) > 0 {
		t = took[0]
	}
	if t != nil && info.Height != nil {
		fl.Add("included", "after "+roundDur(t.Included).String())
	}
	if t != nil && t.NoFinality && info.Height != nil {
		fl.Add("final", "not reported by this node (waited for inclusion only)")
	}
	if info.Final {
		// Only a node with finality says final; false may be an older
		// node's silence, so it is not printed as "no".
		final := "yes: no reorg can undo it"
		if t != nil {
			final = fmt.Sprintf("yes, after %s: no reorg can undo it", roundDur(t.Final))
		}
		fl.Add("final", cs.Green(final))
	}
	if tx := info.Transaction; tx != nil {
		fl.Add("type", string(tx.Type))
		fl.Add("from", own.full(tx.From, cs))
		fl.Add("to", own.full(tx.To, cs))
		fl.Add("amount", u64(tx.Amount))
		fl.Add("fee", u64(tx.Fee))
		fl.Add("nonce", u64(tx.Nonce))
		fl.Add("chain id", tx.ChainID)
	}
	return fl.Write(ios.Out)
}

// ownKeysOf lists the keystore's addresses; errors just mean none.
func ownKeysOf(dir keystore.Dir) ownKeys {
	own := ownKeys{}
	infos, _ := dir.List()
	for _, in := range infos {
		if in.Address != "" {
			if _, dup := own[in.Address]; !dup {
				own[in.Address] = in.Name
			}
		}
	}
	return own
}

// TxShowOptions are the options of `poscli tx show`.
type TxShowOptions struct {
	IO      *IOStreams
	Globals *GlobalOptions
	Client  func(...client.Option) (*client.Client, error)
	Keys    func() keystore.Dir
	Ctx     context.Context

	ID string
}

// NewCmdTxShow builds `poscli tx show ID`.
func NewCmdTxShow(f *Factory, runF func(*TxShowOptions) error) *cobra.Command {
	opts := &TxShowOptions{IO: f.IO, Globals: f.Globals, Client: f.Client, Keys: f.Keys}
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a transaction: pending or committed, and where",
		Long: `Show the transaction ID (64 hex characters) as the node knows it: pending in
its pool, or committed with its block height, block hash and index.

JSON (-o json): {"id", "status", "height", "block_hash", "index",
"confirmations", "transaction"} exactly as GET /v1/txs/{id}; height,
block_hash, index and confirmations only once committed.`,
		Example: `  poscli tx show 9b0f3c1d2e4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e
  poscli tx show $(poscli tx transfer --to bob --amount 1 -o json | jq -r .id)`,
		Args: args(1, 1, "a transaction id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			opts.Ctx = cmd.Context()
			if runF != nil {
				return runF(opts)
			}
			return txShowRun(opts)
		},
	}
}

func txShowRun(opts *TxShowOptions) error {
	ref := strings.ToLower(opts.ID)
	c, err := opts.Client()
	if err != nil {
		return err
	}
	if isHexPrefix(ref, 64) {
		if ref, err = resolvePrefix(ctxOr(opts.Ctx), c, ref, txPrefix); err != nil {
			return err
		}
	}
	id, err := chain.ParseHash(ref)
	if err != nil {
		return fmt.Errorf("%q is not a transaction id (64 hex characters, or a unique prefix of at least %d)", opts.ID, minPrefix)
	}
	info, err := c.Tx(ctxOr(opts.Ctx), id)
	if client.IsNotFound(err) {
		return fmt.Errorf("transaction %s not found: the node at %s has neither pooled nor committed it", id, c.BaseURL())
	}
	if err != nil {
		return err
	}
	return printTxInfo(opts.IO, opts.Globals, info, ownKeysOf(opts.Keys()))
}
