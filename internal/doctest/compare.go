package doctest

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	ageRE    = regexp.MustCompile(`\b[0-9]+[smhd] ago\b|\bjust now\b`)
	barRE    = regexp.MustCompile(`[█▏▎▍▌▋▊▉]+`)
	hexRE    = regexp.MustCompile(`[0-9a-f]*[0-9][0-9a-f]*`)
	shortRE  = regexp.MustCompile(`[0-9a-f]+…[0-9a-f]*`) // 3f2a…91bc, 930037b285…
	numRunRE = regexp.MustCompile(`[-+−]?#(?:[.,]#)*`)
	spaceRE  = regexp.MustCompile(`\s+`)
)

// Normalize is a line as fuzzy comparison sees it: every run of digits and
// lowercase hex holding a digit is "#" (signs, decimal points and
// thousands separators included), bars and "3s ago"/"just now" vanish, and
// spacing collapses. The words, the punctuation and the order remain: a
// changed message changes the normalized line.
func Normalize(line string) string {
	line = ageRE.ReplaceAllString(line, "")
	line = barRE.ReplaceAllString(line, "")
	line = shortRE.ReplaceAllString(line, "#…")
	line = hexRE.ReplaceAllString(line, "#")
	line = numRunRE.ReplaceAllString(line, "#")
	return strings.TrimSpace(spaceRE.ReplaceAllString(line, " "))
}

// Compare checks the output a command printed against the doc's, in mode m.
// Blank lines at the end do not count: in a transcript they separate one
// command's output from the next prompt.
func Compare(m Mode, want, got string) error {
	want, got = trimBlankEnd(want), trimBlankEnd(got)
	switch m {
	case Exact:
		if want == got {
			return nil
		}
		return fmt.Errorf("output differs from the doc (exact):\n%s", diffLines(want, got))
	case Fuzzy:
		w, g := splitLines(want), splitLines(got)
		if len(w) != len(g) {
			return fmt.Errorf("the doc shows %d lines, the command printed %d (fuzzy):\n%s", len(w), len(g), diffLines(want, got))
		}
		for i := range w {
			if Normalize(w[i]) != Normalize(g[i]) {
				return fmt.Errorf("line %d differs beyond numbers and hashes (fuzzy):\n  doc: %s\n  got: %s\n  (normalized %q vs %q)", i+1, w[i], g[i], Normalize(w[i]), Normalize(g[i]))
			}
		}
		return nil
	case Rows:
		w, g := splitLines(want), splitLines(got)
		if len(w) == 0 || len(g) == 0 {
			if len(w) == len(g) {
				return nil
			}
			return fmt.Errorf("the doc shows %d lines, the command printed %d (rows):\n%s", len(w), len(g), diffLines(want, got))
		}
		if Normalize(w[0]) != Normalize(g[0]) {
			return fmt.Errorf("first line differs (rows):\n  doc: %s\n  got: %s", w[0], g[0])
		}
		// A row may also be like the first line: output whose every line
		// has one shape ("rank 0: ...", "rank 1: ...") shows one of them.
		shapes := map[string]bool{}
		for _, l := range w {
			shapes[Normalize(l)] = true
		}
		if len(w) > 1 && len(g) == 1 {
			return fmt.Errorf("the doc shows rows, the command printed none (rows):\n%s", got)
		}
		for _, l := range g[1:] {
			if !shapes[Normalize(l)] {
				return fmt.Errorf("a row is like no row of the doc (rows):\n  got: %s\n  doc:\n%s", l, want)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown comparison mode %q", m)
}

func trimBlankEnd(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return s + "\n"
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// diffLines shows how got differs from want, line by line: "-" lines
// the doc shows and the command did not print, "+" lines it printed
// instead (a longest-common-subsequence diff).
func diffLines(want, got string) string {
	w, g := splitLines(want), splitLines(got)
	var b strings.Builder
	if len(w)*len(g) > 4_000_000 {
		fmt.Fprintf(&b, "(%d lines against %d: too long to diff)\n", len(w), len(g))
		return b.String()
	}
	// lcs[i][j]: length of the longest common subsequence of w[i:] and g[j:].
	lcs := make([][]int, len(w)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(g)+1)
	}
	for i := len(w) - 1; i >= 0; i-- {
		for j := len(g) - 1; j >= 0; j-- {
			if w[i] == g[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			fmt.Fprintf(&b, "  %s\n", w[i])
			i++
			j++
		case j < len(g) && (i == len(w) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&b, "+ %s\n", g[j])
			j++
		default:
			fmt.Fprintf(&b, "- %s\n", w[i])
			i++
		}
	}
	if strings.HasSuffix(want, "\n") != strings.HasSuffix(got, "\n") {
		b.WriteString("(one ends in a newline, the other does not)\n")
	}
	return b.String()
}
