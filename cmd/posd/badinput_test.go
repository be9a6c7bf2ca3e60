package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// TestBadInputChangesNothing throws malformed, hostile and invalid requests
// at a real node: each gets its 4xx and code, and the chain, the accounts
// and the pool stay exactly as they were.
func TestBadInputChangesNothing(t *testing.T) {
	p := startPosd(t, t.TempDir(), freePort(t), "--genesis", "--chain-id", "bad")
	token := readToken(t, p.home)
	alice, _ := keystore.Generate()
	fund := p.sign(alice, chain.Transaction{Type: chain.TxExchange, To: alice.Address(), Amount: 100})
	p.submit(fund)
	p.waitCommitted(fund.ID())
	mallory, _ := keystore.Generate()

	valid := p.sign(alice, chain.Transaction{Type: chain.TxTransfer, To: mallory.Address(), Amount: 1})
	badSig := valid
	badSig.Signature[0] ^= 0x10 // well formed, does not verify
	noSig := valid
	noSig.Signature = chain.Signature{}
	// with is valid's JSON with field's text replaced: keys and signatures
	// are bytes in chain.Transaction, so malformed text exists only here.
	with := func(field, text string) []byte {
		var m map[string]any
		b, _ := json.Marshal(valid)
		json.Unmarshal(b, &m)
		m[field] = text
		b, _ = json.Marshal(m)
		return b
	}
	sigHex, keyHex := valid.Signature.String(), valid.PublicKey.String()
	replay := fund
	usedNonce := chain.Transaction{Type: chain.TxTransfer, ChainID: "bad", To: mallory.Address(), Amount: 1, Nonce: 1}
	alice.SignTx(&usedNonce)
	overdraft := p.sign(alice, chain.Transaction{Type: chain.TxTransfer, To: mallory.Address(), Amount: 1000})
	wrongChain := chain.Transaction{Type: chain.TxTransfer, ChainID: "other", To: mallory.Address(), Amount: 1, Nonce: 2}
	alice.SignTx(&wrongChain)
	zero := p.sign(alice, chain.Transaction{Type: chain.TxTransfer, To: mallory.Address()})
	stakeOther := p.sign(alice, chain.Transaction{Type: chain.TxStake, To: mallory.Address(), Amount: 1})
	gap := p.sign(alice, chain.Transaction{Type: chain.TxTransfer, To: mallory.Address(), Amount: 1})
	gap.Nonce += 1000
	alice.SignTx(&gap)

	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	huge := bytes.Repeat([]byte("x"), 9<<20)
	tests := []struct {
		name, method, path string
		body               []byte
		token              string
		status             int
		code               string
	}{
		{"malformed JSON", "POST", "/v1/txs", []byte(`{"type":`), "", 400, "bad_json"},
		{"wrong types", "POST", "/v1/txs", []byte(`{"type":"TRANSFER","amount":"5"}`), "", 400, "bad_json"},
		{"negative amount", "POST", "/v1/txs", []byte(`{"type":"TRANSFER","amount":-5}`), "", 400, "bad_json"},
		{"empty body", "POST", "/v1/txs", nil, "", 400, "bad_json"},
		{"huge body", "POST", "/v1/txs", huge, "", 413, "payload_too_large"},
		{"bad signature", "POST", "/v1/txs", js(badSig), "", 422, "bad_signature"},
		{"no signature", "POST", "/v1/txs", js(noSig), "", 422, "bad_signature"},
		{"non-hex signature", "POST", "/v1/txs", with("signature", "not hex"), "", 422, "bad_signature"},
		{"short signature", "POST", "/v1/txs", with("signature", sigHex[:126]), "", 422, "bad_signature"},
		{"upper-case signature", "POST", "/v1/txs", with("signature", strings.ToUpper(sigHex)), "", 422, "bad_signature"},
		{"non-hex public key", "POST", "/v1/txs", with("public_key", "xy"+keyHex[2:]), "", 422, "bad_public_key"},
		{"long public key", "POST", "/v1/txs", with("public_key", keyHex+"00"), "", 422, "bad_public_key"},
		{"no public key", "POST", "/v1/txs", with("public_key", ""), "", 422, "bad_public_key"},
		{"replay of a committed transaction", "POST", "/v1/txs", js(replay), "", 409, "already_known"},
		{"used nonce", "POST", "/v1/txs", js(usedNonce), "", 422, "bad_nonce"},
		{"overdraft", "POST", "/v1/txs", js(overdraft), "", 422, "insufficient_funds"},
		{"wrong chain", "POST", "/v1/txs", js(wrongChain), "", 422, "wrong_chain"},
		{"zero amount", "POST", "/v1/txs", js(zero), "", 422, "zero_amount"},
		{"stake to another", "POST", "/v1/txs", js(stakeOther), "", 422, "stake_not_self"},
		{"nonce gap", "POST", "/v1/txs", js(gap), "", 422, "nonce_gap"},
		{"original route, bad signature", "POST", "/transaction", js(map[string]any{"transaction": badSig}), "", 422, "bad_signature"},
		{"unknown route", "GET", "/v2/everything", nil, "", 404, "not_found"},
		{"wrong method", "DELETE", "/v1/status", nil, "", 405, "method_not_allowed"},
		{"unknown block", "GET", "/v1/blocks/999999", nil, "", 404, "not_found"},
		{"bad block id", "GET", "/v1/blocks/zz", nil, "", 400, "bad_request"},
		{"bad address", "GET", "/v1/accounts/nope", nil, "", 400, "bad_address"},
		{"bad limit", "GET", "/v1/blocks?limit=-1", nil, "", 400, "bad_request"},
		{"admin without token", "PUT", "/v1/config", []byte(`{"block_size":5}`), "", 401, "unauthorized"},
		{"admin with wrong token", "PUT", "/v1/config", []byte(`{"block_size":5}`), "wrong", 401, "unauthorized"},
		{"stake without token", "GET", "/stakes/5", nil, "", 401, "unauthorized"},
		{"pool limit without token", "GET", "/pool/limit/5", nil, "", 401, "unauthorized"},
		{"bad config value", "PUT", "/v1/config", []byte(`{"block_size":0}`), token, 400, "bad_request"},
	}
	var beforeAccounts []rpc.Account
	p.call("GET", "/v1/accounts", nil, "", &beforeAccounts)
	before := p.status()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.url+tc.path, bytes.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body rpc.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == nil {
				t.Fatalf("status %d, body is not a JSON error (%v)", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Fatalf("got %d %s (%s), want %d %s", resp.StatusCode, body.Error.Code, body.Error.Message, tc.status, tc.code)
			}
		})
	}
	var afterAccounts []rpc.Account
	p.call("GET", "/v1/accounts", nil, "", &afterAccounts)
	after := p.status()
	if after.Height != before.Height || after.HeadHash != before.HeadHash || after.Pending != 0 || after.BlockSize != before.BlockSize {
		t.Fatalf("state moved: before %+v after %+v", before, after)
	}
	if string(js(afterAccounts)) != string(js(beforeAccounts)) {
		t.Fatalf("accounts changed")
	}
	if code, _ := p.call("GET", "/healthz", nil, "", nil); code != 200 {
		t.Fatalf("node unhealthy after bad input: %d", code)
	}
	// And the valid transaction still goes through.
	p.submit(valid)
	p.waitCommitted(valid.ID())
}
