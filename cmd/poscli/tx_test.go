package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
	"github.com/poslab/posd/keystore"
)

// sent returns the one transaction the node received, checked as the node
// would: signature and chain id.
func sent(t *testing.T, node *fakeNode) chain.Transaction {
	t.Helper()
	txs := node.submittedTxs()
	if len(txs) != 1 {
		t.Fatalf("node received %d transactions, want 1", len(txs))
	}
	if err := txs[0].Validate(testChainID); err != nil {
		t.Fatalf("received transaction does not validate: %v", err)
	}
	return txs[0]
}

func TestTxSend(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want chain.Transaction // signature fields aside
	}{
		{"transfer", []string{"tx", "transfer", "--key", "alice", "--to", string(bob), "--amount", "5", "--fee", "1"},
			chain.Transaction{Type: chain.TxTransfer, From: alice, To: bob, Amount: 5, Fee: 1, Nonce: 4}},
		{"transfer_to_key_name", []string{"tx", "transfer", "-k", "alice", "--to", "bob", "--amount", "7"},
			chain.Transaction{Type: chain.TxTransfer, From: alice, To: bob, Amount: 7, Nonce: 4}},
		{"exchange_to_self", []string{"tx", "exchange", "--key", "alice", "--amount", "1000"},
			chain.Transaction{Type: chain.TxExchange, From: alice, To: alice, Amount: 1000, Nonce: 4}},
		{"exchange_to_other", []string{"tx", "exchange", "--key", "bob", "--to", "alice", "--amount", "3"},
			chain.Transaction{Type: chain.TxExchange, From: bob, To: alice, Amount: 3, Nonce: 1}},
		{"stake", []string{"tx", "stake", "--key", "alice", "--amount", "90", "--fee", "10"},
			chain.Transaction{Type: chain.TxStake, From: alice, To: alice, Amount: 90, Fee: 10, Nonce: 4}},
		{"unstake", []string{"tx", "unstake", "--key", "alice", "--amount", "50"},
			chain.Transaction{Type: chain.TxUnstake, From: alice, To: alice, Amount: 50, Nonce: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFakeNode(t)
			e := newTestEnv(t, node.URL)
			e.addKey(t, "alice", alicePriv, "")
			e.addKey(t, "bob", bobPriv, "")
			if code := e.main(tc.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, e.errOut.String())
			}
			got := sent(t, node)
			want := tc.want
			want.ChainID = testChainID
			want.PublicKey, want.Signature = got.PublicKey, got.Signature
			want.CacheID() // the decoded transaction carries its id
			if got != want {
				t.Errorf("sent %+v\nwant %+v", got, want)
			}
			if !strings.Contains(e.out.String(), "id        "+got.ID().String()+"\nstatus    pending\n") {
				t.Errorf("output does not show the id and status:\n%s", e.out.String())
			}
		})
	}
}

func TestTxTransferGolden(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		for _, wait := range []bool{false, true} {
			name := "tx_transfer"
			args := []string{"--key", "alice", "--to", "bob", "--amount", "5", "--fee", "1"}
			if wait {
				name += "_wait"
				args = append(args, "--wait")
			}
			t.Run(name+"/"+format, func(t *testing.T) {
				node := newFakeNode(t)
				node.pendingPolls = 2
				e := newTestEnv(t, node.URL)
				e.addKey(t, "alice", alicePriv, "")
				e.addKey(t, "bob", bobPriv, "")
				e.f.Globals.Output = format
				if err := e.run(NewCmdTxTransfer(e.f, nil), args...); err != nil {
					t.Fatal(err)
				}
				if format == "json" {
					checkJSON(t, e.out.String())
					var info rpc.TxInfo
					if err := json.Unmarshal([]byte(e.out.String()), &info); err != nil {
						t.Fatal(err)
					}
					if wait && (info.Status != rpc.TxCommitted || info.Height == nil || *info.Height != 4) {
						t.Errorf("--wait: %+v, want committed at height 4", info)
					}
				}
				sent(t, node)
				golden(t, name+"."+format+".golden", e.out.String())
			})
		}
	}
}

func TestTxEncryptedKey(t *testing.T) {
	node := newFakeNode(t)
	e := newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "correct horse")

	// No passphrase anywhere (stdin is empty, not a terminal).
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1"); code != 1 {
		t.Fatal("sent without a passphrase")
	}
	want := "error: key alice is encrypted: pass --passphrase-file FILE, set POSCLI_PASSPHRASE or run on a terminal to be asked\n"
	if e.errOut.String() != want {
		t.Errorf("got %q\nwant %q", e.errOut.String(), want)
	}

	// Wrong passphrase from a file.
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("wrong\n"), 0o600)
	e = newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "correct horse")
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1", "--passphrase-file", pf); code != 1 {
		t.Fatal("sent with a wrong passphrase")
	}
	if e.errOut.String() != "error: wrong passphrase for key alice\n" {
		t.Errorf("got %q", e.errOut.String())
	}

	// The environment.
	e = newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "correct horse")
	e.env["POSCLI_PASSPHRASE"] = "correct horse"
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1"); code != 0 {
		t.Fatalf("env passphrase: %s", e.errOut.String())
	}

	// A terminal prompt.
	e = newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "correct horse")
	e.f.IO.InIsTerminal = true
	var prompts []string
	e.f.ReadSecret = func(_ context.Context, p string) (string, error) {
		prompts = append(prompts, p)
		return "correct horse", nil
	}
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1"); code != 0 {
		t.Fatalf("prompted passphrase: %s", e.errOut.String())
	}
	if len(prompts) != 1 || prompts[0] != "Passphrase for key alice: " {
		t.Errorf("prompts %q", prompts)
	}

	// A line of stdin when it is not a terminal.
	e = newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "correct horse")
	e.in.WriteString("correct horse\n")
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1"); code != 0 {
		t.Fatalf("stdin passphrase: %s", e.errOut.String())
	}
	if n := len(node.submittedTxs()); n != 3 {
		t.Errorf("node received %d transactions, want 3", n)
	}
}

func TestTxKeyFile(t *testing.T) {
	node := newFakeNode(t)
	e := newTestEnv(t, node.URL)
	path := e.addKey(t, "elsewhere", bobPriv, "")
	if code := e.main("tx", "transfer", "--key", path, "--to", string(alice), "--amount", "2"); code != 0 {
		t.Fatalf("exit 1: %s", e.errOut.String())
	}
	if tx := sent(t, node); tx.From != bob || tx.Nonce != 1 {
		t.Errorf("sent %+v", tx)
	}
}

func TestTxErrors(t *testing.T) {
	node := newFakeNode(t)
	for _, tc := range []struct {
		name  string
		args  []string
		setup func(*fakeNode)
		want  string
	}{
		{"no key", []string{"tx", "transfer", "--key", "nobody", "--to", "bob", "--amount", "1"}, nil,
			"error: key nobody not found in <home>/keys, run `poscli keygen nobody` (or pass --home)"},
		{"default key missing", []string{"tx", "stake", "--amount", "1"}, nil,
			"error: key default not found in <home>/keys, run `poscli keygen default` (or pass --home)"},
		{"key file missing", []string{"tx", "stake", "--key", "./nope.pem", "--amount", "1"}, nil,
			"error: key file ./nope.pem not found"},
		{"insufficient balance", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "100", "--fee", "1"}, nil,
			"error: insufficient balance: have 100, need 101 (amount 100 + fee 1, key alice)"},
		{"insufficient balance for fee", []string{"tx", "exchange", "--key", "bob", "--amount", "100", "--fee", "11"}, nil,
			"error: insufficient balance: have 10, need 11 (fee 11, key bob)"},
		{"insufficient stake", []string{"tx", "unstake", "--key", "alice", "--amount", "51"}, nil,
			"error: insufficient stake: have 50, need 51 (key alice)"},
		{"zero amount", []string{"tx", "stake", "--key", "alice", "--amount", "0"}, nil,
			"error: --amount must be greater than 0"},
		{"missing amount", []string{"tx", "stake", "--key", "alice"}, nil,
			"error: --amount is required (see 'poscli tx stake --help')"},
		{"missing to", []string{"tx", "transfer", "--key", "alice", "--amount", "1"}, nil,
			"error: --to is required: the recipient's address or key name (see 'poscli tx transfer --help')"},
		{"bad to", []string{"tx", "transfer", "--key", "alice", "--to", "carol", "--amount", "1"}, nil,
			`error: --to "carol" is neither an address (40 hex characters, a unique prefix of at least 4, or a table's short form like 3f2a…91bc) nor the name of a key in <home>/keys`},
		{"negative amount", []string{"tx", "stake", "--key", "alice", "--amount", "-3"}, nil,
			`error: invalid argument "-3" for "--amount" flag: must not be negative (see 'poscli tx stake --help')`},
		{"amount too large", []string{"tx", "stake", "--key", "alice", "--amount", "99999999999999999999999"}, nil,
			`error: invalid argument "99999999999999999999999" for "--amount" flag: too large: the most is 18446744073709551615 (see 'poscli tx stake --help')`},
		{"amount with decimals", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1.5"}, nil,
			`error: invalid argument "1.5" for "--amount" flag: must be a whole number, without decimals or exponent (see 'poscli tx transfer --help')`},
		{"fee not a number", []string{"tx", "stake", "--key", "alice", "--amount", "1", "--fee", "lots"}, nil,
			`error: invalid argument "lots" for "--fee" flag: must be a whole number such as 100 (see 'poscli tx stake --help')`},
		{"refused", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1"},
			func(n *fakeNode) {
				n.refuse = &rpc.Error{Code: "insufficient_funds", Message: "balance of x is 0, needs 1"}
			},
			"error: the node refused the transaction: insufficient_funds: balance of x is 0, needs 1"},
		{"exchange not allowed", []string{"tx", "exchange", "--key", "alice", "--amount", "1"},
			func(n *fakeNode) { n.exchange = chain.ExchangePolicy{Authorities: []chain.Address{carol}} },
			"error: exchange not allowed: this network lets only the authorities in its genesis EXCHANGE, and key alice (" + string(alice) + ") is not one"},
		{"wait not committed", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1", "--wait", "--wait-timeout", "50ms"},
			func(n *fakeNode) { n.pendingPolls = 1 << 30 },
			"error: transaction ID was sent but not committed within 50ms; check it with `poscli tx show ID`"},
		{"wait included not committed", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1", "--wait=included", "--wait-timeout", "50ms"},
			func(n *fakeNode) { n.pendingPolls = 1 << 30 },
			"error: transaction ID was sent but not committed within 50ms; check it with `poscli tx show ID`"},
		{"wait not final", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1", "--wait", "--wait-timeout", "100ms"},
			func(n *fakeNode) { n.finality = &rpc.Finality{}; n.finalPolls = 1 << 30 },
			"error: transaction ID is in block 4 but was not final within 100ms; finality may be stalled: see `poscli finality`, and check it with `poscli tx show ID`"},
		{"wait stage without =", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1", "--wait", "included"}, nil,
			"error: --wait takes its stage with '=': --wait=included (see 'poscli tx transfer --help')"},
		{"wait bad stage", []string{"tx", "transfer", "--key", "alice", "--to", "bob", "--amount", "1", "--wait=soon"}, nil,
			`error: invalid argument "soon" for "-w, --wait" flag: must be final or included, got "soon" (see 'poscli tx transfer --help')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node.mu.Lock()
			node.refuse, node.pendingPolls, node.submitted = nil, 0, nil
			node.finality, node.finalPolls = nil, 0
			node.exchange = chain.ExchangePolicy{Open: true}
			node.mu.Unlock()
			if tc.setup != nil {
				node.mu.Lock()
				tc.setup(node)
				node.mu.Unlock()
			}
			e := newTestEnv(t, node.URL)
			e.addKey(t, "alice", alicePriv, "")
			e.addKey(t, "bob", bobPriv, "")
			if code := e.main(tc.args...); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			got := e.normalize(e.errOut.String())
			if txs := node.submittedTxs(); len(txs) == 1 {
				got = strings.ReplaceAll(got, txs[0].ID().String(), "ID")
			}
			if got != tc.want+"\n" {
				t.Errorf("\n got %q\nwant %q", got, tc.want+"\n")
			}
			if tc.setup == nil && len(node.submittedTxs()) != 0 {
				t.Errorf("a transaction was sent")
			}
		})
	}
}

func TestTxUnreachable(t *testing.T) {
	node := newFakeNode(t)
	url := node.URL
	node.Close()
	e := newTestEnv(t, url)
	e.addKey(t, "alice", alicePriv, "")
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1"); code != 1 {
		t.Fatal("exit 0")
	}
	want := "error: node not reachable at " + url + " — is posd running? (connection refused; set --node or POSCLI_NODE to use another node)\n"
	if e.errOut.String() != want {
		t.Errorf("got %q\nwant %q", e.errOut.String(), want)
	}
}

func TestTxWaitOnTerminal(t *testing.T) {
	node := newFakeNode(t)
	node.pendingPolls = 3
	e := newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "")
	e.f.IO.ErrIsTerminal = true
	if code := e.main("tx", "stake", "--key", "alice", "--amount", "1", "--wait"); code != 0 {
		t.Fatalf("exit 1: %s", e.errOut.String())
	}
	errOut := e.errOut.String()
	if !strings.Contains(errOut, "note: the node does not report finality; waiting until the transaction is in a block\n") ||
		!strings.Contains(errOut, "waiting for ") || !strings.HasSuffix(errOut, "\r\x1b[K\x1b[32m✓ Committed in block 4 after 0s\x1b[0m\n") {
		t.Errorf("stderr %q", errOut)
	}
	if !strings.Contains(e.out.String(), "height    4\n") {
		t.Errorf("stdout lacks the height:\n%s", e.out.String())
	}
}

func TestTxOptionsParsed(t *testing.T) {
	e := newTestEnv(t, "")
	var got *TxSendOptions
	cmd := NewCmdTxTransfer(e.f, func(o *TxSendOptions) error { got = o; return nil })
	if err := e.run(cmd, "-k", "k.pem", "--to", "bob", "--amount", "7", "--fee", "2", "-w", "--wait-timeout", "5s"); err != nil {
		t.Fatal(err)
	}
	if got.Type != chain.TxTransfer || got.Key != "k.pem" || got.To != "bob" || got.Amount != 7 || got.Fee != 2 || got.Wait != WaitFinal || got.WaitTimeout.String() != "5s" {
		t.Errorf("options %+v", got)
	}
	var stake *TxSendOptions
	if err := e.run(NewCmdTxStake(e.f, func(o *TxSendOptions) error { stake = o; return nil }), "--amount", "3"); err != nil {
		t.Fatal(err)
	}
	if stake.Type != chain.TxStake || stake.Key != "default" || stake.To != "" {
		t.Errorf("stake options %+v", stake)
	}
	if err := e.run(NewCmdTxStake(e.f, nil), "--amount", "3", "--to", "bob"); err == nil || !strings.Contains(err.Error(), "unknown flag: --to") {
		t.Errorf("stake accepted --to: %v", err)
	}
	var blocks *BlocksOptions
	if err := e.run(NewCmdBlocks(e.f, func(o *BlocksOptions) error { blocks = o; return nil }), "--from", "0", "-n", "3"); err != nil {
		t.Fatal(err)
	}
	if blocks.From == nil || *blocks.From != 0 || blocks.Limit != 3 {
		t.Errorf("blocks options %+v", blocks)
	}
	var cfg *NodeConfigOptions
	if err := e.run(NewCmdNodeConfig(e.f, func(o *NodeConfigOptions) error { cfg = o; return nil }), "--block-interval", "2s"); err != nil {
		t.Fatal(err)
	}
	if cfg.BlockSize != nil || cfg.BlockInterval == nil || cfg.BlockInterval.String() != "2s" || cfg.PoolLimit != nil {
		t.Errorf("node config options %+v", cfg)
	}
}

// TestPrecheck: the pre-checks read the transaction-type table and the
// genesis through chain's typed errors, and say each refusal in the CLI's
// terms; a transaction the rules accept passes.
func TestPrecheck(t *testing.T) {
	key := keystore.FromPrivateKey(alicePriv)
	acc := rpc.Account{Address: alice, Balance: 100, Stake: 50, Nonce: 2}
	open := &chain.Genesis{ChainID: testChainID, Exchange: chain.ExchangePolicy{Open: true}}
	closed := &chain.Genesis{ChainID: testChainID, Exchange: chain.ExchangePolicy{Authorities: []chain.Address{carol}}}
	minFee := &chain.Genesis{ChainID: testChainID, Exchange: chain.ExchangePolicy{Open: true}, MinFee: 5}
	for _, tc := range []struct {
		name   string
		g      *chain.Genesis
		typ    chain.TxType
		amount uint64
		fee    uint64
		want   string // "" passes
	}{
		{"transfer ok", open, chain.TxTransfer, 99, 1, ""},
		{"transfer amount+fee", open, chain.TxTransfer, 100, 1, "insufficient balance: have 100, need 101 (amount 100 + fee 1, key alice)"},
		{"stake amount+fee", open, chain.TxStake, 95, 6, "insufficient balance: have 100, need 101 (amount 95 + fee 6, key alice)"},
		{"exchange fee only", open, chain.TxExchange, 1000, 101, "insufficient balance: have 100, need 101 (fee 101, key alice)"},
		{"exchange big amount ok", open, chain.TxExchange, 1 << 40, 0, ""},
		{"unstake stake", open, chain.TxUnstake, 51, 0, "insufficient stake: have 50, need 51 (key alice)"},
		{"unstake fee", open, chain.TxUnstake, 50, 101, "insufficient balance: have 100, need 101 (fee 101, key alice)"},
		{"overflow", open, chain.TxTransfer, ^uint64(0), 1, "--amount 18446744073709551615 + --fee 1 overflows"},
		{"exchange not allowed", closed, chain.TxExchange, 1, 0,
			"exchange not allowed: this network lets only the authorities in its genesis EXCHANGE, and key alice (" + string(alice) + ") is not one"},
		{"fee too low", minFee, chain.TxTransfer, 1, 4, "--fee 4 is below this network's min_fee of 5: pass --fee 5 or more"},
		{"fee at min", minFee, chain.TxTransfer, 1, 5, ""},
		{"wrong chain", &chain.Genesis{ChainID: "other", Exchange: chain.ExchangePolicy{Open: true}}, chain.TxTransfer, 1, 0,
			`cannot build a valid transaction: wrong_chain: chain_id "posd-test", this network is "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := chain.Transaction{Type: tc.typ, ChainID: testChainID, To: bob, Amount: tc.amount, Fee: tc.fee, Nonce: 3}
			if tc.typ == chain.TxStake || tc.typ == chain.TxUnstake {
				tx.To = alice
			}
			key.SignTx(&tx)
			err := precheck(&TxSendOptions{Key: "alice"}, tc.g, &tx, acc)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestSubmitErrorHints: the node's codes are matched as chain's and the
// pool's typed errors; each gets its hint, and the code and message stay.
func TestSubmitErrorHints(t *testing.T) {
	for code, hint := range map[string]string{
		"bad_nonce":            "; another transaction from this key may have been sent meanwhile, try again",
		"nonce_gap":            "; another transaction from this key may have been sent meanwhile, try again",
		"already_known":        "; nothing new was sent",
		"wrong_chain":          "; is --node the network you meant?",
		"pool_full":            "; try again later",
		"unavailable":          "; try again later",
		"exchange_not_allowed": "; this network lets only its genesis authorities EXCHANGE",
		"insufficient_funds":   "",
	} {
		err := submitError(&client.APIError{Status: 422, Code: code, Message: "why"})
		if want := "the node refused the transaction: " + code + ": why" + hint; err.Error() != want {
			t.Errorf("%s: got %q, want %q", code, err, want)
		}
	}
	plain := errors.New("connection reset")
	if err := submitError(plain); err != plain {
		t.Errorf("a transport error was rewritten: %v", err)
	}
	unauth := &client.APIError{Status: 401, Code: "unauthorized", Message: "token"}
	if err := submitError(unauth); err != unauth {
		t.Errorf("unauthorized was rewritten: %v", err)
	}
}
