package daemon

import (
	"errors"
	"slices"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/internal/testkit"
)

// verifiedSigs is a txSigs that has verified exactly the signatures of
// the transactions in it.
type verifiedSigs map[chain.Hash]chain.Signature

func (verifiedSigs) VerifyTxs([]chain.Transaction, []error) {}
func (v verifiedSigs) Cached(tx *chain.Transaction) bool {
	sig, ok := v[tx.ID()]
	return ok && sig == tx.Signature
}

// TestRelayOf: what of a gossiped message goes on. Each case is a message
// of four transfers, its admission outcome per transfer (nil: ready), and
// whether the message goes on whole (relay = ready + the known ones) or
// only its ready part.
func TestRelayOf(t *testing.T) {
	k := testkit.Named("relayer")
	msg := make([]chain.Transaction, 4)
	for i := range msg {
		msg[i] = testkit.Transfer(k, testkit.Named("payee").Addr, 1, 0, uint64(i+1))
	}
	resigned := msg[0]
	resigned.Signature[0] ^= 1 // same id, a signature nobody verified
	verified := verifiedSigs{}
	for i := range msg {
		verified[msg[i].ID()] = msg[i].Signature
	}
	known := errors.Join(mempool.ErrAlreadyKnown)
	committed := &chain.RuleError{Code: chain.ErrBadNonce.Code, Message: "nonce 1 already used"}
	gap := &chain.RuleError{Code: mempool.ErrNonceGap.Code}
	// queued and promotes are not errors: markers of an admitted
	// transaction that stayed queued, or that is ready and made the
	// sender's two later nonces (not in the message) ready too.
	queued, promotes := errors.New("queued"), errors.New("promotes")
	tests := []struct {
		name  string
		msg   []chain.Transaction
		errs  []error
		whole bool // else only what is ready
	}{
		{"all ready", msg, []error{nil, nil, nil, nil}, true},
		{"one committed, verified", msg, []error{committed, nil, nil, nil}, true},
		{"one known, one committed, verified", msg, []error{committed, known, nil, nil}, true},
		{"more known than ready", msg, []error{committed, committed, committed, nil}, false},
		{"a committed one whose signature was not verified", []chain.Transaction{resigned, msg[1], msg[2], msg[3]}, []error{committed, nil, nil, nil}, false},
		{"a gap besides", msg, []error{committed, nil, nil, gap}, false},
		{"nothing ready", msg, []error{committed, known, committed, known}, false},
		{"one queued behind a gap", msg, []error{committed, nil, nil, queued}, false},
		{"more known than ready of its own, two promoted besides", msg, []error{committed, committed, committed, promotes}, false},
		{"one known, two promoted besides", msg, []error{committed, nil, nil, promotes}, true},
	}
	// promoted are later nonces the message made ready, not in it.
	promoted := []chain.Transaction{
		testkit.Transfer(k, testkit.Named("payee").Addr, 1, 0, 5),
		testkit.Transfer(k, testkit.Named("payee").Addr, 1, 0, 6),
	}
	h := p2pHandler{sigs: verified}
	for _, tc := range tests {
		var ready []chain.Transaction
		errs := slices.Clone(tc.errs)
		for i, err := range errs {
			switch err {
			case nil:
				ready = append(ready, tc.msg[i])
			case queued:
				errs[i] = nil
			case promotes:
				errs[i] = nil
				ready = append(ready, tc.msg[i])
				ready = append(ready, promoted...)
			}
		}
		relay := h.relayOf(tc.msg, ready, errs)
		want := ready
		if tc.whole {
			want = slices.Concat(tc.msg, promoted)
			if !slices.Contains(tc.errs, promotes) {
				want = tc.msg
			}
		}
		if len(relay) != len(want) {
			t.Errorf("%s: relay of %d, want %d", tc.name, len(relay), len(want))
			continue
		}
		in := map[chain.Transaction]bool{}
		for _, tx := range relay {
			in[tx] = true
		}
		for _, tx := range want {
			if !in[tx] {
				t.Errorf("%s: nonce %d not relayed", tc.name, tx.Nonce)
			}
		}
	}
}
