package chainmgr

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/poslab/posd/daemon/metrics"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/keystore"
)

// histCounts returns the sample count of every series of the histogram
// name in reg, keyed by its label values joined with "/" (labels in name
// order: outcome/path).
func histCounts(t *testing.T, reg prometheus.Gatherer, name string) map[string]uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for i, lp := range m.GetLabel() {
				if i > 0 {
					key += "/"
				}
				key += lp.GetValue()
			}
			out[key] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

// TestMetricsHooks: with Config.Metrics set, every import is timed under
// its path and outcome, and commits and elections are timed too.
func TestMetricsHooks(t *testing.T) {
	tc := newTestChain(t)
	met := metrics.New()
	tc.reopenWithMetrics(met.Chain)

	genesis := tc.m.Head()
	a := tc.block(tc.forger, genesis, 1)
	b := tc.block(tc.forger, genesis, 2) // same height: one of a, b loses the fork choice
	if err := tc.m.ProcessBlock(a); err != nil {
		t.Fatal(err)
	}
	loser := b
	switch err := tc.m.ProcessBlock(b); {
	case err == nil: // b's hash is lower: a reorg to b
		loser = a
	case errors.Is(err, ErrSideBlock):
	default:
		t.Fatal(err)
	}
	// One block more on the losing branch wins: a reorg.
	reorgs := tc.m.Stats().Reorgs
	if err := tc.m.ProcessBlock(tc.block(tc.forger, loser, 1)); err != nil {
		t.Fatal(err)
	}
	if tc.m.Stats().Reorgs != reorgs+1 {
		t.Fatalf("reorgs %d, want %d", tc.m.Stats().Reorgs, reorgs+1)
	}
	if err := tc.m.ProcessBlock(loser); !errors.Is(err, ErrKnownBlock) {
		t.Fatalf("known block: %v", err)
	}
	orphan := tc.block(tc.forger, tc.block(tc.forger, tc.m.Head(), 1), 1)
	if err := tc.m.ProcessBlock(orphan); !errors.Is(err, ErrUnknownParent) {
		t.Fatalf("orphan: %v", err)
	}
	stranger, _ := keystore.Generate()
	if err := tc.m.ProcessBlock(tc.block(stranger, tc.m.Head(), 1)); !IsPeerFault(err) {
		t.Fatalf("stranger's block: %v", err)
	}
	mustImport(t, tc.m, tc.chainOf(tc.m.Head(), 3, 1))

	imports := histCounts(t, met.Registry, "posd_block_import_duration_seconds")
	for key, least := range map[string]uint64{
		metrics.OutcomeMain + "/" + metrics.PathBlock:    2, // a (or b), the winning block
		metrics.OutcomeKnown + "/" + metrics.PathBlock:   1,
		metrics.OutcomeOrphan + "/" + metrics.PathBlock:  1,
		metrics.OutcomeInvalid + "/" + metrics.PathBlock: 1,
		metrics.OutcomeMain + "/" + metrics.PathRange:    1,
	} {
		if imports[key] < least {
			t.Errorf("imports %s: %d, want at least %d (all: %v)", key, imports[key], least, imports)
		}
	}
	// a, the switch to the other branch (plus b's if it won at once), the range.
	if c := histCounts(t, met.Registry, "posd_block_commit_duration_seconds")[""]; c < 3 {
		t.Errorf("commits timed: %d, want at least 3", c)
	}
	if c := histCounts(t, met.Registry, "posd_election_duration_seconds")[""]; c < 3 {
		t.Errorf("elections timed: %d, want at least 3", c)
	}
}

// reopenWithMetrics reopens the manager on the test store with met.
func (tc *testChain) reopenWithMetrics(met *metrics.Chain) {
	tc.t.Helper()
	if err := tc.m.Close(); err != nil {
		tc.t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(tc.dir, "chain.db"))
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := st.Init(tc.g); err != nil {
		tc.t.Fatal(err)
	}
	m, err := New(Config{Genesis: tc.g, Store: st, Metrics: met})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.m = m
	tc.t.Cleanup(func() { m.Close() })
}
