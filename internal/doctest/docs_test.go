package doctest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// docs are the walk-throughs that run: file (from the repository root) →
// script name.
var docs = []struct{ file, name string }{
	{"README.md", "readme"},
	{"docs/EXPERIMENTS.md", "experiments"},
	{"docs/ATTACKS.md", "attacks"},
	{"cmd/poscli/README.md", "poscli-readme"},
}

// tools are the programs the walk-throughs call besides posd and poscli.
var tools = []string{"bash", "jq", "python3", "curl", "/usr/bin/time"}

const repoRoot = "../.."

// TestDocs runs every command of the docs' walk-throughs and compares what
// it prints with what the doc shows (docs/DOCTESTS.md). POSD_DOCTEST_SLOW=1
// also runs the commands marked slow; POSD_DOCTEST_ONLY=name (readme,
// experiments, attacks, poscli-readme) runs one doc.
func TestDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the doc walk-throughs take a minute or two")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("POSD_DOCTEST_TOOLS") == "require" {
				t.Fatalf("the doc walk-throughs need %s: %v", tool, err)
			}
			t.Skipf("the doc walk-throughs need %s, which is not installed (CI installs it)", tool)
		}
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/posd", "./cmd/poscli")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	scripts, work := t.TempDir(), t.TempDir()
	only := os.Getenv("POSD_DOCTEST_ONLY")
	for _, d := range docs {
		if only != "" && only != d.name {
			continue
		}
		md, err := os.ReadFile(filepath.Join(repoRoot, d.file))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Parse(d.file, string(md))
		if err != nil {
			t.Fatal(err)
		}
		e := Env{Work: filepath.Join(work, "script-"+d.name), Ports: map[string]string{}, Slow: os.Getenv("POSD_DOCTEST_SLOW") == "1"}
		for _, dec := range Decades(blocks) {
			e.Ports[dec] = freeDecade(t)
		}
		script, err := Script(blocks, e)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(scripts, d.name+".txtar"), []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	absRepo, _ := filepath.Abs(repoRoot)
	updateAll = os.Getenv("POSD_DOCTEST_UPDATE") == "all"
	if os.Getenv("POSD_DOCTEST_UPDATE") == "1" || updateAll {
		updates = map[string]string{}
		t.Cleanup(func() { applyUpdates(t) }) // after the scripts, which run in parallel subtests
	}
	testscript.Run(t, testscript.Params{
		Dir: scripts,
		// Every difference in one run, not only the first.
		ContinueOnError: true,
		WorkdirRoot:     work,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			env.Setenv("DOCTEST_REPO", absRepo)
			marker := randomHex()
			env.Setenv("DOCTEST_PROCS", marker)
			env.Defer(func() { killMarked(marker) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"doccmp":  cmdDoccmp,
			"waitapi": cmdWaitAPI,
		},
	})
}

// cmdDoccmp compares the last command's output with the doc's:
// doccmp MODE WANTFILE FILE:LINE.
func cmdDoccmp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: doccmp exact|fuzzy|rows wantfile doc.md:line")
	}
	e := Env{Work: ts.Getenv("WORK"), Ports: ParsePorts(ts.Getenv("DOCTEST_PORTS"))}
	got := e.Unrewrite(ts.ReadFile("stdout"))
	err := Compare(Mode(args[0]), ts.ReadFile(args[1]), got)
	if updates != nil && (updateAll || err != nil && Mode(args[0]) == Exact) {
		updatesMu.Lock()
		updates[args[2]] = got
		updatesMu.Unlock()
		ts.Logf("%s: the doc will be updated", args[2])
		return
	}
	if err != nil {
		ts.Fatalf("%v", err)
	}
}

// With POSD_DOCTEST_UPDATE=1 the exact outputs that differ are written
// into the docs (as -update does for golden files): doc.md:line → output.
// POSD_DOCTEST_UPDATE=all writes the fuzzy ones too, for a walk-through
// whose figures are to come from one new run (the prose then needs reading).
var (
	updatesMu sync.Mutex
	updates   map[string]string
	updateAll bool
)

// applyUpdates replaces, in each doc, the output shown under a command
// with what it printed.
func applyUpdates(t *testing.T) {
	byFile := map[string]map[int]string{}
	for where, out := range updates {
		i := strings.LastIndex(where, ":")
		line, _ := strconv.Atoi(where[i+1:])
		if byFile[where[:i]] == nil {
			byFile[where[:i]] = map[int]string{}
		}
		byFile[where[:i]][line] = out
	}
	for file, outs := range byFile {
		path := filepath.Join(repoRoot, file)
		md, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Parse(file, string(md))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(md), "\n")
		// Bottom up, so that earlier line numbers stay right.
		var cmds []Command
		for _, b := range blocks {
			for _, c := range b.Commands {
				if _, ok := outs[c.Line]; ok {
					cmds = append(cmds, c)
				}
			}
		}
		for i := len(cmds) - 1; i >= 0; i-- {
			c := cmds[i]
			start := c.Line + strings.Count(c.Text, "\n") // 0-based index of the first output line
			old := len(splitLines(c.Output))
			repl := splitLines(outs[c.Line])
			lines = append(lines[:start], append(repl, lines[start+old:]...)...)
		}
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %d outputs in %s", len(cmds), file)
	}
}

// cmdWaitAPI waits until each node answers GET /v1/status with at least
// -peers peers: waitapi -peers N -log FILE PORT...
func cmdWaitAPI(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 5 || args[0] != "-peers" || args[2] != "-log" {
		ts.Fatalf("usage: waitapi -peers N -log FILE PORT...")
	}
	peers, _ := strconv.Atoi(args[1])
	logFile := ts.MkAbs(args[3])
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for _, p := range args[4:] {
		url := "http://127.0.0.1:" + p + "/v1/status"
		for {
			var st struct {
				Peers int `json:"peers"`
			}
			resp, err := client.Get(url)
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK && st.Peers >= peers {
					break
				}
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logFile)
				if len(log) > 4000 {
					log = log[len(log)-4000:]
				}
				ts.Fatalf("%s did not answer with %d peers in 90s (last: %v, %d peers); its log ends:\n%s", url, peers, err, st.Peers, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

var (
	decadesMu sync.Mutex
	decades   = map[int]bool{}
)

// freeDecade finds ten consecutive ports, D0 to D9, that nothing on this
// machine holds (TCP and UDP: libp2p listens on both), below the usual
// range of ephemeral ports, and that no other script of this run got.
func freeDecade(t *testing.T) string {
	decadesMu.Lock()
	defer decadesMu.Unlock()
	for range 1000 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		d := 2000 + (int(b[0])<<8|int(b[1]))%1200
		if decades[d] {
			continue
		}
		free := true
		for i := 0; i < 10 && free; i++ {
			addr := fmt.Sprintf("127.0.0.1:%d", d*10+i)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				free = false
				break
			}
			l.Close()
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				free = false
				break
			}
			u.Close()
		}
		if free {
			decades[d] = true
			return strconv.Itoa(d)
		}
	}
	t.Fatal("no ten free consecutive ports found")
	return ""
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// killMarked kills what a script left running (a node the doc starts with
// "&" inside a command, which the script cannot track): every process whose
// environment holds this script's DOCTEST_PROCS marker.
func killMarked(marker string) {
	want := []byte("DOCTEST_PROCS=" + marker + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err == nil && bytes.Contains(env, want) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestMakefileRecipes: the scripts run `make devnet` as the Makefile's
// recipe; this keeps the two in step.
func TestMakefileRecipes(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "devnet: build\n\t$(BIN)/posd devnet --nodes 3\n") {
		t.Fatal("the Makefile's devnet recipe changed: update makeRE's mapping in script.go")
	}
}
