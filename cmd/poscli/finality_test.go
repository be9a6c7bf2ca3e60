package main

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// fixtureFinality is a record on the fixture chain (lots = stake): block 1
// final, 2 justified by everyone, 3 voted by alice only (carol missing).
func fixtureFinality(stalled bool) *rpc.Finality {
	b := fixtureBlocks()
	cp := func(h uint64) chain.Checkpoint { return chain.Checkpoint{Height: h, Hash: b[h].Hash()} }
	aliceS := rpc.FinalityStaker{Address: alice, Stake: 50, Lots: 50}
	carolS := rpc.FinalityStaker{Address: carol, Stake: 150, Lots: 150}
	f := &rpc.Finality{Head: 3, EpochBlocks: 1, Justified: cp(2), Finalized: cp(1),
		Checkpoints: []rpc.CheckpointTally{
			{Height: 3, Hash: cp(3).Hash, Source: ptr(cp(2)), VotedLots: 50, TotalLots: 200, ThresholdLots: rpc.ThresholdLots(200),
				VotedStake: 50, TotalStake: 200, Voters: []rpc.FinalityStaker{aliceS}, Missing: []rpc.FinalityStaker{carolS}},
			{Height: 2, Hash: cp(2).Hash, Source: ptr(cp(1)), VotedLots: 200, TotalLots: 200, ThresholdLots: rpc.ThresholdLots(200),
				VotedStake: 200, TotalStake: 200, Justified: true, Voters: []rpc.FinalityStaker{carolS, aliceS}, Missing: []rpc.FinalityStaker{}},
		}}
	if stalled {
		f.Stalled = &rpc.FinalityStall{Behind: 2, MissingLots: 150, TotalLots: 200, MissingStake: 150, MissingPercent: 75, Missing: []rpc.FinalityStaker{carolS}}
	}
	return f
}

// TestFinalityGolden: finality, status and blocks on a node with finality,
// steady and stalled, as tables and JSON.
func TestFinalityGolden(t *testing.T) {
	cases := []struct {
		name    string
		stalled bool
		cmd     func(*Factory) *cobra.Command
		args    []string
	}{
		{"finality", false, func(f *Factory) *cobra.Command { return NewCmdFinality(f, nil) }, nil},
		{"finality_stalled", true, func(f *Factory) *cobra.Command { return NewCmdFinality(f, nil) }, nil},
		{"status_finality", false, func(f *Factory) *cobra.Command { return NewCmdStatus(f, nil) }, nil},
		{"status_stalled", true, func(f *Factory) *cobra.Command { return NewCmdStatus(f, nil) }, nil},
		{"blocks_finality", false, func(f *Factory) *cobra.Command { return NewCmdBlocks(f, nil) }, nil},
	}
	for _, tc := range cases {
		for _, format := range []string{"table", "json"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				node := newFakeNode(t)
				node.finality = fixtureFinality(tc.stalled)
				e := newTestEnv(t, node.URL)
				e.addKey(t, "alice", alicePriv, "")
				e.f.Globals.Output = format
				if err := e.run(tc.cmd(e.f), tc.args...); err != nil {
					t.Fatalf("error: %v (stderr %q)", err, e.errOut.String())
				}
				got := e.out.String()
				if format == "json" {
					checkJSON(t, got)
				}
				golden(t, tc.name+"."+format+".golden", e.normalize(got))
			})
		}
	}
}

// TestFinalityMarks: the loud lines and marks each command must show,
// checked apart from the goldens so that an -update cannot bless their loss.
func TestFinalityMarks(t *testing.T) {
	for _, tc := range []struct {
		stalled bool
		args    []string
		want    []string
		not     []string
	}{
		{false, []string{"finality"}, []string{"justified  2 ", "final      1 ", "(head 3, 2 behind)", "50/200 (25%)", "needs 84 more lots", "200/200 (100%)",
			"████████████████|████████", "██████░░░░░░░░░░|░░░░░░░░", "missing at checkpoint 3", carol.Short()}, []string{"STALLED"}},
		{true, []string{"finality"}, []string{"FINALITY STALLED: 75% of the stake's lots (150 of 200, stake 150) did not vote; final is 2 blocks behind the head"}, nil},
		{false, []string{"status"}, []string{"justified          2\n", "final              1 (2 behind the head)\n"}, []string{"STALLED"}},
		{true, []string{"status"}, []string{"FINALITY STALLED: 75%", "missing: " + carol.Short() + " stake 150 (150 lots)", "1 (2 behind the head), stalled"}, nil},
		{false, []string{"blocks"}, []string{"✓ final", "justified"}, nil},
	} {
		node := newFakeNode(t)
		node.finality = fixtureFinality(tc.stalled)
		e := newTestEnv(t, node.URL)
		if code := e.main(tc.args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, e.errOut.String())
		}
		out := e.out.String()
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v (stalled %v) lacks %q:\n%s", tc.args, tc.stalled, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("%v (stalled %v) has %q:\n%s", tc.args, tc.stalled, w, out)
			}
		}
		if tc.args[0] == "blocks" {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			// heights 0..3: 0 and 1 final, 2 justified, 3 neither
			for i, want := range []string{"✓ final", "✓ final", "justified", ""} {
				line := strings.TrimRight(lines[1+i], " ")
				if want == "" && (strings.HasSuffix(line, "final") || strings.HasSuffix(line, "justified")) || want != "" && !strings.HasSuffix(line, want) {
					t.Errorf("block %d: %q, want mark %q", i, line, want)
				}
			}
		}
	}
}

// TestFinalityOldNode: a node without finality: finality fails with exit
// 1 and says why; status and blocks show no finality at all.
func TestFinalityOldNode(t *testing.T) {
	node := newFakeNode(t)
	e := newTestEnv(t, node.URL)
	if code := e.main("finality"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got, want := e.normalize(e.errOut.String()), "error: the node at <node> does not report finality (a version before finality, or finality off)\n"; got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, args := range [][]string{{"status"}, {"blocks"}, {"status", "-o", "json"}} {
		e := newTestEnv(t, node.URL)
		if code := e.main(args...); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, no := range []string{"final", "justified"} {
			if strings.Contains(e.out.String(), no) {
				t.Errorf("%v on an old node shows %q:\n%s", args, no, e.out.String())
			}
		}
	}
}

// steppingClock reads 100 ms later at every call.
func steppingClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)) * 100 * time.Millisecond) }
}

// TestTxWaitFinal: --wait (alone) waits until final and reports both
// times; --wait=included stops at inclusion on the same node.
func TestTxWaitFinal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wait      string
		wantFinal bool
		minPolls  int
	}{
		{"final", "--wait", true, 2 + 3 + 1},
		{"final explicit", "--wait=final", true, 2 + 3 + 1},
		{"short flag", "-w", true, 2 + 3 + 1},
		{"old scripts: --wait=true", "--wait=true", true, 2 + 3 + 1},
		{"included", "--wait=included", false, 2 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := newFakeNode(t)
			node.finality = fixtureFinality(false)
			node.pendingPolls, node.finalPolls = 2, 3
			e := newTestEnv(t, node.URL)
			e.addKey(t, "alice", alicePriv, "")
			e.f.Now = steppingClock()
			if code := e.main("tx", "transfer", "--key", "alice", "--to", string(bob), "--amount", "1", tc.wait, "-o", "json"); code != 0 {
				t.Fatalf("exit %d: %s", code, e.errOut.String())
			}
			var res txResult
			if err := json.Unmarshal([]byte(e.out.String()), &res); err != nil {
				t.Fatal(err)
			}
			if res.Final != tc.wantFinal || res.Status != rpc.TxCommitted || res.IncludedAfterMs == nil || *res.IncludedAfterMs <= 0 {
				t.Fatalf("result %s", e.out.String())
			}
			if tc.wantFinal != (res.FinalAfterMs != nil) || res.FinalAfterMs != nil && *res.FinalAfterMs <= *res.IncludedAfterMs {
				t.Fatalf("final_after_ms in %s", e.out.String())
			}
			if polls := node.polledTxs(); tc.wantFinal && polls < tc.minPolls || !tc.wantFinal && polls != tc.minPolls {
				t.Errorf("%d polls, want %d", polls, tc.minPolls)
			}
			if strings.Contains(e.errOut.String(), "note:") {
				t.Errorf("a node with finality got the fallback note: %s", e.errOut.String())
			}
		})
	}
}

// TestTxWaitFinalOnTerminal: a terminal sees inclusion when it happens,
// then finality, each with its time; the table says both.
func TestTxWaitFinalOnTerminal(t *testing.T) {
	node := newFakeNode(t)
	node.finality = fixtureFinality(false)
	node.pendingPolls, node.finalPolls = 1, 2
	e := newTestEnv(t, node.URL)
	e.addKey(t, "alice", alicePriv, "")
	e.f.IO.ErrIsTerminal = true
	e.f.Now = steppingClock()
	if code := e.main("tx", "transfer", "--key", "alice", "--to", string(bob), "--amount", "1", "--wait"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut.String())
	}
	errOut := e.errOut.String()
	i, j := strings.Index(errOut, "✓ Committed in block 4 after "), strings.Index(errOut, "✓ Final in block 4 after ")
	if i < 0 || j < i || !strings.Contains(errOut[j:], "after inclusion)") || !strings.Contains(errOut, "to be final") {
		t.Errorf("stderr %q", errOut)
	}
	out := e.out.String()
	if !strings.Contains(out, "included  after ") || !strings.Contains(out, "final     yes, after ") {
		t.Errorf("stdout:\n%s", out)
	}
}

// TestThirdsBar: the line sits at 2/3 of the width; the fill follows the
// share, capped at the width.
func TestThirdsBar(t *testing.T) {
	for _, c := range []struct {
		voted, total uint64
		want         string
	}{
		{0, 0, "░░░░░░░░░"},
		{0, 3, "░░░░░░|░░░"},
		{2, 3, "██████|░░░"},
		{3, 3, "██████|███"},
		{9, 3, "██████|███"},
		{1, 9, "█░░░░░|░░░"},
	} {
		if got := thirdsBar(rpc.CheckpointTally{VotedLots: c.voted, TotalLots: c.total}, 9); got != c.want {
			t.Errorf("thirdsBar(%d/%d) = %q, want %q", c.voted, c.total, got, c.want)
		}
	}
}

// TestWaitFlagHelp: --wait reads as a flag with an optional stage, so
// "--wait" alone keeps its meaning and the help says which it is.
func TestWaitFlagHelp(t *testing.T) {
	e := newTestEnv(t, "")
	if code := e.main("tx", "transfer", "--help"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out := e.out.String(); !strings.Contains(out, "-w, --wait[=final]   ") || !strings.Contains(out, "--wait=included") {
		t.Errorf("help:\n%s", out)
	}
}
