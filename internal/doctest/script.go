package doctest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// DefaultDecades are the port decades of posd's and poscli's defaults (API
// 5001, P2P 10001): every script gets free stand-ins for them.
var DefaultDecades = []string{"500", "1000"}

var (
	// portRE finds a port in a command: after 127.0.0.1:, localhost: or a
	// port flag. Group 2 is its decade (all digits but the last), group 3
	// the last digit, or "$" where the shell supplies it (581$n).
	portRE  = regexp.MustCompile(`(127\.0\.0\.1:|localhost:|--api-port[ =]|--p2p-port[ =])([0-9]{3,4})([0-9]|\$)`)
	binRE   = regexp.MustCompile(`(^|[\s;&|(])bin/(posd|poscli)($|[\s;&|)])`)
	makeRE  = regexp.MustCompile(`^\s*make\s+([a-z]+)\s*(#.*)?$`)
	posdRE  = regexp.MustCompile(`(?:^|[\s;&|(=])posd\s+(devnet|start)\b([^&;|>]*)`)
	watchRE = regexp.MustCompile(`^\s*poscli\s+(?:.*\s)?watch\b`)
	flagRE  = func(name string) *regexp.Regexp {
		return regexp.MustCompile(`--` + name + `[ =]([0-9]+)`)
	}
	apiPortRE = flagRE("api-port")
	nodesRE   = flagRE("nodes")
	innerBgRE = regexp.MustCompile(`(^|[^&>])&([^&>]|$)`) // a "&" that is not "&&" or "2>&1"
	envRE     = regexp.MustCompile(`^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(.*)$`)
)

// Decades lists the port decades the blocks' commands use, defaults
// included, so that the caller can find a free stand-in for each.
func Decades(blocks []Block) []string {
	set := map[string]bool{}
	for _, d := range DefaultDecades {
		set[d] = true
	}
	add := func(s string) {
		for _, m := range portRE.FindAllStringSubmatch(s, -1) {
			set[m[2]] = true
		}
	}
	for _, b := range blocks {
		for _, c := range b.Commands {
			add(c.Text)
		}
		for _, s := range b.Directives.Setup {
			add(s)
		}
		for _, ss := range b.Directives.Before {
			for _, s := range ss {
				add(s)
			}
		}
	}
	var out []string
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Env is what a script is generated for.
type Env struct {
	Work  string            // the script's work directory ($WORK, also $HOME)
	Ports map[string]string // doc decade → free decade, e.g. "580" → "2713"
	Slow  bool              // run the commands marked slow too
}

// Rewrite makes a doc command runnable in the script's sandbox: bin/posd
// and bin/poscli are the binaries on PATH, each port is moved to its free
// stand-in (5801 → 27131 when decade 580 maps to 2713), and /tmp/ is the
// work directory's tmp/.
func (e Env) Rewrite(cmd string) string {
	cmd = binRE.ReplaceAllString(cmd, "${1}${2}${3}")
	cmd = portRE.ReplaceAllStringFunc(cmd, func(s string) string {
		m := portRE.FindStringSubmatch(s)
		if to, ok := e.Ports[m[2]]; ok {
			return m[1] + to + m[3]
		}
		return s
	})
	return strings.ReplaceAll(cmd, "/tmp/", e.Work+"/tmp/")
}

// Unrewrite maps what a command printed back to the doc's terms: ports to
// the doc's, the work directory's tmp/ to /tmp/, the work directory (the
// script's home) to ~.
func (e Env) Unrewrite(out string) string {
	for from, to := range e.Ports {
		re := regexp.MustCompile(`\b` + to + `([0-9])\b`)
		out = re.ReplaceAllString(out, from+"${1}")
	}
	out = strings.ReplaceAll(out, e.Work+"/tmp/", "/tmp/")
	return strings.ReplaceAll(out, e.Work, "~")
}

// port is the free stand-in of a doc port.
func (e Env) port(doc int) int {
	s := strconv.Itoa(doc)
	if to, ok := e.Ports[s[:len(s)-1]]; ok {
		p, _ := strconv.Atoi(to + s[len(s)-1:])
		return p
	}
	return doc
}

// Vars are the environment variables of every script: the home, and the
// defaults of posd and poscli moved to free ports.
func (e Env) Vars() []string {
	api := e.port(5001)
	return []string{
		"HOME=" + e.Work,
		"POSCLI_NODE=http://127.0.0.1:" + strconv.Itoa(api),
		"POSD_API_PORT=" + strconv.Itoa(api),
		"POSD_P2P_PORT=" + strconv.Itoa(e.port(10001)),
		"POSD_JOIN=http://127.0.0.1:" + strconv.Itoa(api),
		"POSD_MDNS=false", // scripts run side by side: no network finds another's
		"NO_COLOR=1",
		"PYTHONDONTWRITEBYTECODE=1", // the lottery's Python reference lives in the repository
		"DOCTEST_PORTS=" + e.portList(),
	}
}

func (e Env) portList() string {
	var l []string
	for from, to := range e.Ports {
		l = append(l, from+":"+to)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

// ParsePorts reads the DOCTEST_PORTS a script sets (doc decade:free decade,...).
func ParsePorts(s string) map[string]string {
	m := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if from, to, ok := strings.Cut(p, ":"); ok {
			m[from] = to
		}
	}
	return m
}

// network is a posd started in the background by the script.
type network struct {
	name  string
	ports []int
}

// Script generates the testscript (txtar) that runs a doc's blocks.
func Script(blocks []Block, e Env) (string, error) {
	var s, files strings.Builder
	s.WriteString("# Generated from the doc by internal/doctest; see docs/DOCTESTS.md.\n")
	for _, v := range e.Vars() {
		fmt.Fprintf(&s, "env %s\n", v)
	}
	s.WriteString("mkdir tmp\n")
	n := 0
	var running []network
	file := func(name, body string) error {
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") {
				return fmt.Errorf("a line looks like a txtar file marker: %q", l)
			}
		}
		fmt.Fprintf(&files, "-- %s --\n%s", name, body)
		if body != "" && !strings.HasSuffix(body, "\n") {
			files.WriteString("\n")
		}
		return nil
	}
	// run adds one command; want is nil for a command whose output is not compared.
	run := func(where, text string, want *string, mode Mode) error {
		n++
		text = e.Rewrite(text)
		bg := false
		if m := makeRE.FindStringSubmatch(text); m != nil {
			switch m[1] {
			case "build":
				text = "true # the doc test built the binaries: " + strings.TrimSpace(text)
			case "devnet":
				text = "posd devnet --nodes 3" // the Makefile's recipe (TestMakefileRecipes)
			default:
				return fmt.Errorf("%s: `make %s` cannot run inside a test: mark it illustrative", where, m[1])
			}
		}
		t := strings.TrimSpace(text)
		if strings.HasSuffix(t, "&") && !strings.HasSuffix(t, "&&") {
			bg, text = true, strings.TrimSuffix(t, "&")
		}
		pm := posdRE.FindStringSubmatch(text)
		longRunning := pm != nil && !innerBgRE.MatchString(text) || watchRE.MatchString(text)
		if longRunning {
			bg = true
		}
		var ports []int
		peers := 0
		if pm != nil {
			api := e.port(5001)
			if m := apiPortRE.FindStringSubmatch(pm[2]); m != nil {
				api, _ = strconv.Atoi(m[1])
			}
			nodes := 1
			if pm[1] == "devnet" {
				nodes = 3
				if m := nodesRE.FindStringSubmatch(pm[2]); m != nil {
					nodes, _ = strconv.Atoi(m[1])
				}
				peers = nodes - 1
			} else if !strings.Contains(pm[2], "--genesis") {
				peers = 1
			}
			for i := range nodes {
				ports = append(ports, api+i)
			}
			// A network on ports another holds replaces it, as a reader
			// stops one before starting the next.
			kept := running[:0]
			for _, r := range running {
				if overlaps(r.ports, ports) {
					fmt.Fprintf(&s, "kill -INT %s\nwait %s\n", r.name, r.name)
					continue
				}
				kept = append(kept, r)
			}
			running = kept
		}
		fmt.Fprintf(&s, "# %s\n", where)
		name := fmt.Sprintf("c%d", n)
		if bg {
			body := "source \"$WORK/.doctest/prelude.sh\"\nexec >\"$WORK/.doctest/" + name + ".log\" 2>&1\n"
			m := envRE.FindStringSubmatch(strings.TrimSpace(text))
			if m[1] != "" {
				body += "exec env " + m[1] + m[2] + "\n"
			} else {
				body += "exec " + m[2] + "\n"
			}
			if err := file(".doctest/"+name+".sh", body); err != nil {
				return err
			}
			fmt.Fprintf(&s, "exec bash .doctest/%s.sh &%s&\n", name, name)
			if pm != nil {
				running = append(running, network{name: name, ports: ports})
			}
		} else {
			body := "source \"$WORK/.doctest/prelude.sh\"\nexec 2>&1\n" + text + "\n__doctest_rc=$?\n__doctest_save\nexit $__doctest_rc\n"
			if err := file(".doctest/"+name+".sh", body); err != nil {
				return err
			}
			fmt.Fprintf(&s, "exec bash .doctest/%s.sh\n", name)
			if want != nil {
				if err := file(".doctest/"+name+".want", *want); err != nil {
					return err
				}
				fmt.Fprintf(&s, "doccmp %s .doctest/%s.want %s\n", mode, name, where)
			}
		}
		if pm != nil {
			fmt.Fprintf(&s, "waitapi -peers %d -log .doctest/%s.log", peers, name)
			for _, p := range ports {
				fmt.Fprintf(&s, " %d", p)
			}
			s.WriteString("\n")
		}
		return nil
	}
	for _, b := range blocks {
		where := func(c Command) string { return fmt.Sprintf("%s:%d", b.File, c.Line) }
		d := b.Directives
		if r := d.IllustrativeReason(0); r != "" || len(b.Commands) == 0 {
			fmt.Fprintf(&s, "# %s:%d: block illustrative: %s\n", b.File, b.Line, r)
			continue
		}
		for _, h := range d.Setup {
			if err := run(fmt.Sprintf("%s:%d (setup)", b.File, b.Line), h, nil, ""); err != nil {
				return "", err
			}
		}
		for i, c := range b.Commands {
			i++
			for _, h := range d.Before[i] {
				if err := run(where(c)+" (before)", h, nil, ""); err != nil {
					return "", err
				}
			}
			if r := d.IllustrativeReason(i); r != "" {
				fmt.Fprintf(&s, "# %s: illustrative: %s\n", where(c), r)
				continue
			}
			if r, ok := d.Slow[i]; ok && !e.Slow {
				fmt.Fprintf(&s, "# %s: slow (POSD_DOCTEST_SLOW=1 runs it): %s\n", where(c), r)
				continue
			}
			var want *string
			if b.Transcript {
				want = &c.Output
				// `$ cat F` shows a file the reader writes: the script writes it.
				if f, ok := strings.CutPrefix(strings.TrimSpace(c.Text), "cat "); ok && !strings.ContainsAny(f, " |;&<>$") {
					if err := file(".doctest/files/"+f, c.Output); err != nil {
						return "", err
					}
					fmt.Fprintf(&s, "cp .doctest/files/%s %s\n", f, f)
				}
			}
			text := c.Text
			for _, sub := range d.Subs[i] {
				if !strings.Contains(text, sub[0]) {
					return "", fmt.Errorf("%s: sub: the command has no %q", where(c), sub[0])
				}
				text = strings.ReplaceAll(text, sub[0], sub[1])
			}
			if err := run(where(c), text, want, d.ModeOf(i)); err != nil {
				return "", err
			}
		}
	}
	if err := file(".doctest/prelude.sh", prelude); err != nil {
		return "", err
	}
	if err := file(".doctest/state", ""); err != nil {
		return "", err
	}
	return s.String() + files.String(), nil
}

func overlaps(a, b []int) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// prelude starts every command: it restores the shell variables earlier
// commands set (as one terminal keeps them) and defines how to save them.
const prelude = `source "$WORK/.doctest/state"
__doctest_save() {
  local __v
  for __v in $(compgen -v); do
    case $__v in
      BASH*|COMP*|DIRSTACK|EUID|FUNCNAME|GROUPS|HIST*|HOSTNAME|HOSTTYPE|IFS|LINENO|MACHTYPE|OLDPWD|OPTERR|OPTIND|OSTYPE|PIPESTATUS|PPID|PS4|PWD|RANDOM|SECONDS|SHELLOPTS|SHLVL|SRANDOM|UID|EPOCHREALTIME|EPOCHSECONDS|_|__*) continue ;;
    esac
    declare -p "$__v" 2>/dev/null
  done > "$WORK/.doctest/state.new" && mv "$WORK/.doctest/state.new" "$WORK/.doctest/state"
}
`
