package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/poslab/posd/chain/rpc"
)

func TestRTTText(t *testing.T) {
	for _, c := range []struct {
		ms   float64
		want string
	}{
		{0, "-"}, // not measured: the field is absent
		{-1, "-"},
		{0.183, "0.18 ms"},
		{3.31, "3.3 ms"},
		{82.44, "82 ms"},
		{250.6, "251 ms"},
	} {
		if got := rttText(c.ms); got != c.want {
			t.Errorf("rttText(%v) = %q, want %q", c.ms, got, c.want)
		}
	}
}

func TestSortByRTT(t *testing.T) {
	peers := []rpc.Peer{{ID: "c"}, {ID: "b", RTTMs: 250}, {ID: "a"}, {ID: "d", RTTMs: 20.5}, {ID: "e", RTTMs: 80}, {ID: "f", RTTMs: 80}}
	sortByRTT(peers)
	var got []string
	for _, p := range peers {
		got = append(got, p.ID)
	}
	if s := strings.Join(got, ""); s != "defbac" {
		t.Fatalf("order %s, want defbac (nearest first, ties by id, unmeasured last)", s)
	}
}

// TestStatusWithoutPeers: a node that does not answer /v1/peers still gets
// its status shown, with a note on stderr and no peer list.
func TestStatusWithoutPeers(t *testing.T) {
	node := newFakeNode(t)
	node.noPeers = true
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			e := newTestEnv(t, node.URL)
			e.f.Globals.Output = format
			if err := e.run(NewCmdStatus(e.f, nil)); err != nil {
				t.Fatalf("error: %v (stderr %q)", err, e.errOut.String())
			}
			out := e.out.String()
			if !strings.Contains(e.errOut.String(), "peers unavailable: not_found") {
				t.Errorf("stderr %q: want the peers' failure", e.errOut.String())
			}
			if format == "table" {
				if !strings.Contains(out, "chain id") || strings.Contains(out, "RTT") {
					t.Errorf("output:\n%s", out)
				}
				return
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatal(err)
			}
			if _, ok := v["peer_list"]; ok || v["chain_id"] != testChainID {
				t.Errorf("json: %s", out)
			}
		})
	}
}
