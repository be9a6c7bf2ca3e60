package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// finalityFake is the fake node with a finality gadget: a record to
// serve (or an error) and finality events to publish.
type finalityFake struct {
	*fakeBackend
	fmu    sync.Mutex
	rec    rpc.Finality
	err    error
	evSubs map[int]chan rpc.FinalityEvent
	nextEv int
}

var (
	_ FinalityBackend = (*finalityFake)(nil)
	_ FinalityEvents  = (*finalityFake)(nil)
)

func newFinalityFake() *finalityFake {
	return &finalityFake{fakeBackend: newFake(), evSubs: map[int]chan rpc.FinalityEvent{}}
}

func (f *finalityFake) Finality() (rpc.Finality, error) {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	return f.rec, f.err
}

func (f *finalityFake) SubscribeFinality() (<-chan rpc.FinalityEvent, func()) {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	ch := make(chan rpc.FinalityEvent, 8)
	n := f.nextEv
	f.nextEv++
	f.evSubs[n] = ch
	return ch, func() {
		f.fmu.Lock()
		defer f.fmu.Unlock()
		delete(f.evSubs, n)
	}
}

func (f *finalityFake) finalitySubscribers() int {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	return len(f.evSubs)
}

func (f *finalityFake) publishFinality(ev rpc.FinalityEvent) {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	for _, ch := range f.evSubs {
		ch <- ev
	}
}

func stakers(n int) []rpc.FinalityStaker {
	out := make([]rpc.FinalityStaker, n)
	for i := range out {
		out[i] = rpc.FinalityStaker{Address: chain.Address(fmt.Sprintf("%040x", i)), Stake: uint64(100 - i), Lots: 1}
	}
	return out
}

// TestFinalityRoute: GET /v1/finality answers the backend's record,
// bounded, or 501 not_supported when the node has no finality.
func TestFinalityRoute(t *testing.T) {
	big := rpc.Finality{Head: 20, EpochBlocks: 1, Justified: chain.Checkpoint{Height: 11}, Finalized: chain.Checkpoint{Height: 10},
		Stalled: &rpc.FinalityStall{Behind: 10, Missing: stakers(40)}}
	for h := uint64(20); h > 10; h-- {
		big.Checkpoints = append(big.Checkpoints, rpc.CheckpointTally{Height: h, TotalLots: 40, ThresholdLots: 27, Voters: stakers(40), VotersMore: 1})
	}
	for _, tc := range []struct {
		name    string
		backend Backend
		status  int
		code    string
		check   func(t *testing.T, f rpc.Finality)
	}{
		{name: "no finality backend", backend: newFake(), status: 501, code: "not_supported"},
		{name: "finality off", backend: func() Backend { f := newFinalityFake(); f.err = fmt.Errorf("off: %w", ErrNotSupported); return f }(), status: 501, code: "not_supported"},
		{name: "backend fails", backend: func() Backend { f := newFinalityFake(); f.err = errors.New("disk"); return f }(), status: 500, code: "internal"},
		{name: "genesis only: lists are empty, never null", backend: newFinalityFake(), status: 200, check: func(t *testing.T, f rpc.Finality) {
			if f.Checkpoints == nil || len(f.Checkpoints) != 0 {
				t.Errorf("checkpoints %v, want []", f.Checkpoints)
			}
		}},
		{name: "bounded", backend: func() Backend { f := newFinalityFake(); f.rec = big; return f }(), status: 200, check: func(t *testing.T, f rpc.Finality) {
			if len(f.Checkpoints) != rpc.MaxFinalityCheckpoints || f.Checkpoints[0].Height != 20 {
				t.Fatalf("%d checkpoints from %d, want %d from 20", len(f.Checkpoints), f.Checkpoints[0].Height, rpc.MaxFinalityCheckpoints)
			}
			c := f.Checkpoints[0]
			if len(c.Voters) != rpc.MaxFinalityStakers || c.VotersMore != 40-rpc.MaxFinalityStakers+1 {
				t.Errorf("voters %d more %d", len(c.Voters), c.VotersMore)
			}
			if c.Missing == nil {
				t.Error("missing is null")
			}
			if len(f.Stalled.Missing) != rpc.MaxFinalityStakers || f.Stalled.MissingMore != 40-rpc.MaxFinalityStakers {
				t.Errorf("stalled missing %d more %d", len(f.Stalled.Missing), f.Stalled.MissingMore)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(NewHandler(Options{Backend: tc.backend}))
			defer srv.Close()
			r := do(t, srv.URL, "GET", "/v1/finality", "", "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" {
				if e := decode[rpc.ErrorBody](t, r.body); e.Error == nil || e.Error.Code != tc.code {
					t.Fatalf("body %s, want code %s", r.body, tc.code)
				}
				return
			}
			tc.check(t, decode[rpc.Finality](t, r.body))
		})
	}
	// The caps wrote nothing into the backend's record.
	if len(big.Checkpoints[0].Voters) != 40 || len(big.Stalled.Missing) != 40 {
		t.Fatal("the API changed the backend's record")
	}
}

// TestFinalityEvents: "justified" and "finalized" reach /v1/events
// subscribers, summary or not, between blocks; an unknown type is not
// sent; the backend subscription ends with the last stream.
func TestFinalityEvents(t *testing.T) {
	f := newFinalityFake()
	srv := httptest.NewServer(NewHandler(Options{Backend: f}))
	defer srv.Close()
	for _, path := range []string{"/v1/events", "/v1/events?summary=1"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			readEvent(t, br) // the opening comment
			waitFor(t, "the finality subscription", func() bool { return f.finalitySubscribers() == 1 })
			cp := chain.Checkpoint{Height: 5, Hash: f.blocks[5].Hash()}
			f.publishFinality(rpc.FinalityEvent{Type: "bogus", Checkpoint: cp, Time: 1})
			f.publishFinality(rpc.FinalityEvent{Type: rpc.EventJustified, Checkpoint: cp, Time: 2})
			f.publish(f.blocks[6])
			f.publishFinality(rpc.FinalityEvent{Type: rpc.EventFinalized, Checkpoint: cp, Time: 3})
			var got []string
			for len(got) < 3 {
				c, ev, data := readEvent(t, br)
				if c != "" {
					continue
				}
				if ev == "block" {
					got = append(got, "block")
					continue
				}
				got = append(got, ev+" "+data)
			}
			want := []string{
				`justified {"checkpoint":{"height":5,"hash":"` + cp.Hash.String() + `"},"time":2}`,
				"block",
				`finalized {"checkpoint":{"height":5,"hash":"` + cp.Hash.String() + `"},"time":3}`,
			}
			// Blocks and finality events come from two channels: their
			// relative order is not promised, each one's own order is.
			if strings.Join(filter(got, "block"), "\n") != strings.Join(filter(want, "block"), "\n") || len(got) != 3 {
				t.Fatalf("events\n%s\nwant (in any interleaving)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			cancel()
			waitFor(t, "the finality subscription to end", func() bool { return f.finalitySubscribers() == 0 })
		})
	}
}

func filter(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
