package doctest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A Block is a fenced code block of a markdown file that shows commands:
// a ```sh (bash, shell, console) block, or any fenced block with a line
// starting with "$ " (a transcript: commands and the output each printed).
type Block struct {
	File       string
	Line       int // 1-based line of the opening fence
	Transcript bool
	Commands   []Command
	Directives Directives
}

// A Command is one command of a block, as shown, and the output shown
// under it (transcripts only; sh blocks show none and are not compared).
type Command struct {
	Line   int    // 1-based line in the file
	Text   string // without the "$ " prompt; continuation lines joined by "\n"
	Output string // the lines under it up to the next prompt, each ending in "\n"
}

// Mode says how a command's output is compared with the doc's.
type Mode string

const (
	Exact Mode = "exact" // byte for byte (after mapping ports and paths back)
	Fuzzy Mode = "fuzzy" // numbers, hex, bars, ages and spacing may differ
	Rows  Mode = "rows"  // the first line fuzzy; every later line like one of the doc's lines (fuzzy), as many as come
)

// Directives are what an HTML comment <!-- doctest ... --> just above a
// block says about it. Command numbers are 1-based within the block.
type Directives struct {
	Illustrative map[int]string // command → why it does not run; 0: the whole block
	Slow         map[int]string // command → why it runs only with POSD_DOCTEST_SLOW=1
	Modes        map[int]Mode   // command → mode; 0: every command of the block
	Setup        []string       // hidden commands run before the block's first
	Before       map[int][]string
	// Subs replace, in a command, a value the doc copied from an earlier
	// output of its own run (a hash, an address) with shell text that reads
	// it in this run: command → [old, new] pairs.
	Subs map[int][][2]string
}

// ModeOf is the comparison mode of command i (1-based).
func (d Directives) ModeOf(i int) Mode {
	if m, ok := d.Modes[i]; ok {
		return m
	}
	if m, ok := d.Modes[0]; ok {
		return m
	}
	return Exact
}

// IllustrativeReason says why command i is not run, or "" if it is.
func (d Directives) IllustrativeReason(i int) string {
	if r, ok := d.Illustrative[0]; ok {
		return r
	}
	return d.Illustrative[i]
}

var (
	fenceRE     = regexp.MustCompile("^(`{3,})\\s*([A-Za-z0-9_-]*)")
	directiveRE = regexp.MustCompile(`^([a-z]+)((?:\s+[0-9]+(?:\s*,\s*[0-9]+)*)?)\s*(?::\s*(.*))?$`)
)

// shellInfo are the info strings of blocks whose every line is a command.
var shellInfo = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// Parse reads the command blocks of a markdown file, with their directives.
// A directive comment must be followed by a fenced block (blank lines
// between are allowed).
func Parse(file, md string) ([]Block, error) {
	lines := strings.Split(md, "\n")
	var blocks []Block
	var pending *Directives
	pendingLine := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "<!-- doctest") {
			// The comment may span lines; collect up to "-->".
			text := strings.TrimPrefix(trimmed, "<!--")
			start := i
			for !strings.Contains(text, "-->") {
				i++
				if i >= len(lines) {
					return nil, fmt.Errorf("%s:%d: doctest comment without -->", file, start+1)
				}
				text += "\n" + lines[i]
			}
			text = strings.TrimSpace(text[:strings.Index(text, "-->")])
			d, err := parseDirectives(strings.TrimPrefix(text, "doctest"))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", file, start+1, err)
			}
			if pending != nil {
				return nil, fmt.Errorf("%s:%d: two doctest comments before one block", file, start+1)
			}
			pending, pendingLine = &d, start+1
			continue
		}
		m := fenceRE.FindStringSubmatch(trimmed)
		if m == nil {
			if trimmed != "" && pending != nil {
				return nil, fmt.Errorf("%s:%d: doctest comment not followed by a code block", file, pendingLine)
			}
			continue
		}
		fence, info := m[1], m[2]
		open := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), fence); i++ {
			body = append(body, lines[i])
		}
		if i >= len(lines) {
			return nil, fmt.Errorf("%s:%d: unclosed code block", file, open+1)
		}
		b := Block{File: file, Line: open + 1}
		if pending != nil {
			b.Directives = *pending
		}
		var err error
		switch {
		case shellInfo[info]:
			b.Commands, err = shellCommands(body, open+2)
		case hasPrompt(body):
			b.Transcript = true
			b.Commands, err = transcriptCommands(body, open+2)
		default:
			if pending != nil {
				return nil, fmt.Errorf("%s:%d: doctest comment on a block without commands", file, pendingLine)
			}
			continue // text: a layout, log lines, error messages
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		if err := b.Directives.check(len(b.Commands)); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, pendingLine, err)
		}
		pending = nil
		blocks = append(blocks, b)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: doctest comment not followed by a code block", file, pendingLine)
	}
	return blocks, nil
}

func hasPrompt(body []string) bool {
	for _, l := range body {
		if strings.HasPrefix(l, "$ ") {
			return true
		}
	}
	return false
}

// shellCommands splits an sh block: each line is a command, "#" lines are
// comments, a line ending in "\" or inside open quotes goes on.
func shellCommands(body []string, firstLine int) ([]Command, error) {
	var cmds []Command
	for i := 0; i < len(body); i++ {
		l := body[i]
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		c := Command{Line: firstLine + i, Text: l}
		var err error
		if i, err = joinContinued(body, i, &c); err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// transcriptCommands splits a transcript: "$ " starts a command, the lines
// up to the next prompt are its output.
func transcriptCommands(body []string, firstLine int) ([]Command, error) {
	var cmds []Command
	for i := 0; i < len(body); i++ {
		l := body[i]
		if !strings.HasPrefix(l, "$ ") {
			if len(cmds) == 0 {
				return nil, fmt.Errorf("%d: output before the first command", firstLine+i)
			}
			cmds[len(cmds)-1].Output += l + "\n"
			continue
		}
		c := Command{Line: firstLine + i, Text: strings.TrimPrefix(l, "$ ")}
		var err error
		if i, err = joinContinued(body, i, &c); err != nil {
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// joinContinued appends to c the lines of body after line i that its
// text continues on, and returns the index of the last line it took.
func joinContinued(body []string, i int, c *Command) (int, error) {
	for continues(c.Text) {
		i++
		if i >= len(body) {
			return i, fmt.Errorf("%d: command runs past the end of its block", c.Line)
		}
		c.Text += "\n" + body[i]
	}
	return i, nil
}

// continues reports whether a command goes on on the next line: a final
// backslash or pipe, or a quote still open.
func continues(s string) bool {
	t := strings.TrimRight(s, " \t")
	if strings.HasSuffix(t, "\\") || strings.HasSuffix(t, "|") {
		return true
	}
	var quote rune
	escaped := false
	prev := ' '
	for _, r := range s {
		atWordStart := prev == ' ' || prev == '\t'
		prev = r
		switch {
		case escaped:
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			}
		case r == '\\':
			escaped = true
		case quote == '"':
			if r == '"' {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && atWordStart:
			return false // the rest is a comment
		}
	}
	return quote != 0
}

var directiveNames = map[string]bool{
	"illustrative": true, "slow": true, "fuzzy": true, "rows": true, "exact": true, "setup": true, "before": true, "sub": true,
}

// parseDirectives reads the body of a doctest comment: directives separated
// by newlines or ";", each "name [N,M...][: value]".
func parseDirectives(s string) (Directives, error) {
	d := Directives{
		Illustrative: map[int]string{}, Slow: map[int]string{}, Modes: map[int]Mode{}, Before: map[int][]string{},
		Subs: map[int][][2]string{},
	}
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), ":"))
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		// setup and before carry shell text, which may hold ";": one per line.
		if strings.HasPrefix(l, "setup") || strings.HasPrefix(l, "before") || strings.HasPrefix(l, "sub") {
			parts = append(parts, l)
			continue
		}
		// ";" separates directives; in a reason it is text.
		for i, p := range strings.Split(l, ";") {
			if f := strings.Fields(p); i > 0 && (len(f) == 0 || !directiveNames[strings.TrimRight(f[0], ":")]) {
				parts[len(parts)-1] += ";" + p
				continue
			}
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		m := directiveRE.FindStringSubmatch(p)
		if m == nil {
			return d, fmt.Errorf("bad doctest directive %q", p)
		}
		name, value := m[1], strings.TrimSpace(m[3])
		nums := []int{0}
		if strings.TrimSpace(m[2]) != "" {
			nums = nums[:0]
			for _, f := range strings.Split(m[2], ",") {
				n, _ := strconv.Atoi(strings.TrimSpace(f))
				if n < 1 {
					return d, fmt.Errorf("doctest directive %q: commands are numbered from 1", p)
				}
				nums = append(nums, n)
			}
		}
		switch name {
		case "illustrative", "slow":
			if value == "" {
				return d, fmt.Errorf("doctest directive %q: say why", p)
			}
			for _, n := range nums {
				if name == "slow" {
					d.Slow[n] = value
				} else {
					d.Illustrative[n] = value
				}
			}
		case "fuzzy", "rows", "exact":
			for _, n := range nums {
				d.Modes[n] = Mode(name)
			}
		case "setup":
			if value == "" || nums[0] != 0 {
				return d, fmt.Errorf("doctest directive %q: want \"setup: COMMAND\"", p)
			}
			d.Setup = append(d.Setup, value)
		case "before":
			if value == "" || nums[0] == 0 || len(nums) != 1 {
				return d, fmt.Errorf("doctest directive %q: want \"before N: COMMAND\"", p)
			}
			d.Before[nums[0]] = append(d.Before[nums[0]], value)
		case "sub":
			old, repl, ok := strings.Cut(value, " => ")
			if !ok || nums[0] == 0 || strings.TrimSpace(old) == "" {
				return d, fmt.Errorf("doctest directive %q: want \"sub N[,M]: OLD => NEW\"", p)
			}
			for _, n := range nums {
				d.Subs[n] = append(d.Subs[n], [2]string{strings.TrimSpace(old), strings.TrimSpace(repl)})
			}
		default:
			return d, fmt.Errorf("unknown doctest directive %q", name)
		}
	}
	return d, nil
}

// check refuses directives that name commands the block does not have.
func (d Directives) check(n int) error {
	for _, m := range []map[int]string{d.Illustrative, d.Slow} {
		for i := range m {
			if i > n {
				return fmt.Errorf("doctest directive names command %d of a block of %d", i, n)
			}
		}
	}
	for i := range d.Modes {
		if i > n {
			return fmt.Errorf("doctest directive names command %d of a block of %d", i, n)
		}
	}
	for i := range d.Subs {
		if i > n {
			return fmt.Errorf("doctest directive names command %d of a block of %d", i, n)
		}
	}
	for i := range d.Before {
		if i > n {
			return fmt.Errorf("doctest directive names command %d of a block of %d", i, n)
		}
	}
	return nil
}
