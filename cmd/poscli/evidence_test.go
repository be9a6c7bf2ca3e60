package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// TestEvidenceCommand: the table shows pending and committed evidence, and
// -o json passes the node's fields through.
func TestEvidenceCommand(t *testing.T) {
	in, burned := uint64(13), uint64(20)
	list := []rpc.Evidence{
		{Height: 14, Forger: chain.Address(strings.Repeat("ab", 20)), Hashes: []chain.Hash{{1}, {2}}},
		{Height: 12, Forger: chain.Address(strings.Repeat("cd", 20)), Hashes: []chain.Hash{{3}, {4}}, IncludedIn: &in, Slashed: &burned},
	}
	node := newFakeNode(t)
	node.evidence = list

	e := newTestEnv(t, node.URL)
	if err := e.run(NewCmdEvidence(e.f, nil)); err != nil {
		t.Fatalf("error: %v (stderr %q)", err, e.errOut.String())
	}
	out := e.out.String()
	for _, want := range []string{"HEIGHT", "pending", "block 13", "20"} {
		if !strings.Contains(strings.ToUpper(out), strings.ToUpper(want)) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	e = newTestEnv(t, node.URL)
	e.f.Globals.Output = "json"
	if err := e.run(NewCmdEvidence(e.f, nil)); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(e.out.String()), &got); err != nil || len(got) != 2 {
		t.Fatalf("json: %v %s", err, e.out.String())
	}
	if _, ok := got[0]["included_in"]; ok {
		t.Error("pending evidence has included_in")
	}
	if got[1]["included_in"] != float64(13) || got[1]["slashed"] != float64(20) || got[1]["height"] != float64(12) {
		t.Errorf("committed evidence: %v", got[1])
	}
}
