package main

import (
	"strings"
	"testing"
)

func TestParseByzantine(t *testing.T) {
	m, err := parseByzantine([]string{"2=equivocate", " 3 = offline"}, 4)
	if err != nil || m[2] != "equivocate" || m[3] != "offline" || len(m) != 2 {
		t.Fatalf("got %v, %v", m, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"equivocate", "want N=BEHAVIOUR"},
		{"x=equivocate", "want N=BEHAVIOUR"},
		{"5=equivocate", "nodes 1 to 4"},
		{"0=offline", "nodes 1 to 4"},
		{"2=teleport", "unknown behaviour"},
	} {
		if _, err := parseByzantine([]string{tc.in}, 4); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error with %q", tc.in, err, tc.want)
		}
	}
	if _, err := parseByzantine([]string{"2=offline", "2=grind"}, 4); err == nil {
		t.Error("a node given twice was accepted")
	}
}

// TestByzantineFlags: both commands take --byzantine and --lab.
func TestByzantineFlags(t *testing.T) {
	start := NewCmdStart(nil)
	devnet := NewCmdDevnet(nil)
	for _, name := range []string{"byzantine", "lab"} {
		if start.Flags().Lookup(name) == nil || devnet.Flags().Lookup(name) == nil {
			t.Errorf("--%s missing on start or devnet", name)
		}
	}
}
