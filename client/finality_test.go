package client

import (
	"context"
	"github.com/poslab/posd/internal/testkit"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// TestFinality: the record decodes; a node without finality is
// IsNotSupported; status fields flow through.
func TestFinality(t *testing.T) {
	rec := rpc.Finality{Head: 9, EpochBlocks: 1, Finalized: chain.Checkpoint{Height: 7, Hash: chain.Hash{7}},
		Checkpoints: []rpc.CheckpointTally{{Height: 9, VotedLots: 2, TotalLots: 3, ThresholdLots: 3, Missing: []rpc.FinalityStaker{{Address: bob, Stake: 10, Lots: 1}}}}}
	fin, h := uint64(7), chain.Hash{7}
	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/finality": reply(200, rec),
		"GET /v1/status":   reply(200, rpc.Status{Height: 9, FinalizedHeight: &fin, FinalizedHash: &h, FinalityStalled: &rpc.FinalityStall{MissingPercent: 40}}),
	})
	got, err := New(s.URL).Finality(context.Background())
	if err != nil || got.Finalized.Height != 7 || len(got.Checkpoints) != 1 || got.Checkpoints[0].Missing[0].Address != bob {
		t.Fatalf("Finality = %+v, %v", got, err)
	}
	st, err := New(s.URL).Status(context.Background())
	if err != nil || !st.HasFinality() || *st.FinalizedHeight != 7 || st.FinalityStalled == nil || st.FinalityStalled.MissingPercent != 40 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	old := newServer(t, map[string]http.HandlerFunc{"GET /v1/finality": apiErr(501, "not_supported", "no finality")})
	if _, err := New(old.URL).Finality(context.Background()); !IsNotSupported(err) {
		t.Fatalf("Finality on an old node: %v", err)
	}
}

// TestWaitTxStages: included is called once, when the transaction is
// first committed, and the wait ends only when it is final.
func TestWaitTxStages(t *testing.T) {
	tx := testkit.Transfer(testkit.Alice, bob, 5, 1, 1)
	id := tx.ID()
	var calls atomic.Int32
	s := newServer(t, map[string]http.HandlerFunc{
		"GET /v1/txs/{id}": func(w http.ResponseWriter, r *http.Request) {
			switch n := calls.Add(1); {
			case n == 1:
				reply(200, rpc.TxInfo{ID: id, Status: rpc.TxPending})(w, r)
			case n <= 4:
				reply(200, rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(uint64(4))})(w, r)
			default:
				reply(200, rpc.TxInfo{ID: id, Status: rpc.TxCommitted, Height: ptr(uint64(4)), Final: true})(w, r)
			}
		},
	})
	var included []uint64
	info, err := New(s.URL).WaitTxStages(context.Background(), id, time.Millisecond, func(i rpc.TxInfo) { included = append(included, *i.Height) })
	if err != nil || !info.Final || calls.Load() != 5 {
		t.Fatalf("WaitTxStages = %+v, %v after %d polls", info, err, calls.Load())
	}
	if len(included) != 1 || included[0] != 4 {
		t.Fatalf("included called with %v, want once with 4", included)
	}
	// WaitTx still ends at inclusion.
	calls.Store(0)
	if info, err := New(s.URL).WaitTx(context.Background(), id, time.Millisecond); err != nil || info.Final || calls.Load() != 2 {
		t.Fatalf("WaitTx = %+v, %v after %d polls", info, err, calls.Load())
	}
	calls.Store(0)
	if info, err := New(s.URL).WaitTxFinal(context.Background(), id, time.Millisecond); err != nil || !info.Final {
		t.Fatalf("WaitTxFinal = %+v, %v", info, err)
	}
}
