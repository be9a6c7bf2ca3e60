package api

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardPeerRTT runs the dashboard's peer round-trip functions in
// Node.js: how an RTT reads, and that peers are listed nearest first with
// the unmeasured last.
func TestDashboardPeerRTT(t *testing.T) {
	nodejs, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node (Node.js) binary to run the dashboard's script")
	}
	src, err := dashboardFiles.ReadFile("dashboard/app.js")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for _, re := range []string{`(?s)\nfunction rttText\(.*?\n}\n`, `(?s)\nfunction byRTT\(.*?\n}\n`} {
		fn := regexp.MustCompile(re).Find(src)
		if fn == nil {
			t.Fatalf("app.js lacks %s", re)
		}
		script.Write(fn)
	}
	cases := []struct{ expr, want string }{
		{`rttText(undefined)`, `"rtt ?"`}, // not measured: the field is absent
		{`rttText(0)`, `"rtt ?"`},
		{`rttText(0.183)`, `"0.18 ms"`},
		{`rttText(3.25)`, `"3.3 ms"`},
		{`rttText(82.44)`, `"82 ms"`},
		{`rttText(250.6)`, `"251 ms"`},
		{`[{"id": "c"}, {"id": "b", "rtt_ms": 250}, {"id": "a"}, {"id": "d", "rtt_ms": 20.5}, {"id": "e", "rtt_ms": 80}].sort(byRTT).map(p => p.id).join("")`, `"debac"`},
	}
	for _, tc := range cases {
		fmt.Fprintf(&script, "console.log(JSON.stringify(%s));\n", tc.expr)
	}
	out, err := exec.Command(nodejs, "-e", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("node printed %d lines for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, tc := range cases {
		if lines[i] != tc.want {
			t.Errorf("%s = %s, want %s", tc.expr, lines[i], tc.want)
		}
	}
}
