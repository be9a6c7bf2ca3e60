package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fatih/color"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/poslab/posd/chain"
)

// writeJSON writes v as indented JSON with a final newline. HTML characters
// are not escaped: the output is for people and jq, not for browsers.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON (watch's stream).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// nonNil returns s, or an empty slice for nil, so JSON says [] and not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ColorScheme colours text when enabled and returns it unchanged otherwise.
type ColorScheme struct{ enabled bool }

func (cs ColorScheme) paint(s string, attrs ...color.Attribute) string {
	if !cs.enabled || s == "" {
		return s
	}
	c := color.New(attrs...)
	c.EnableColor()
	return c.Sprint(s)
}

// Green marks success.
func (cs ColorScheme) Green(s string) string { return cs.paint(s, color.FgGreen) }

// Red marks errors.
func (cs ColorScheme) Red(s string) string { return cs.paint(s, color.FgRed) }

// Yellow marks warnings.
func (cs ColorScheme) Yellow(s string) string { return cs.paint(s, color.FgYellow) }

// Bold is for labels.
func (cs ColorScheme) Bold(s string) string { return cs.paint(s, color.Bold) }

// Faint is for secondary text.
func (cs ColorScheme) Faint(s string) string { return cs.paint(s, color.Faint) }

// Mine highlights the user's own keys.
func (cs ColorScheme) Mine(s string) string { return cs.paint(s, color.FgCyan, color.Bold) }

// ColorScheme is the colour scheme of stdout.
func (s *IOStreams) ColorScheme() ColorScheme { return ColorScheme{s.ColorEnabled} }

// ErrColorScheme is the colour scheme of stderr.
func (s *IOStreams) ErrColorScheme() ColorScheme { return ColorScheme{s.ErrColorEnabled} }

// table renders rows with tablewriter in a plain, borderless style: upper
// case headers, columns two spaces apart, no trailing spaces.
type table struct {
	w       io.Writer
	headers []string
	rows    [][]string
}

func newTable(w io.Writer, headers ...string) *table { return &table{w: w, headers: headers} }

func (t *table) Append(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) Render() error {
	var buf bytes.Buffer
	tbl := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "  ", Overwrite: true}),
	)
	headers := make([]any, len(t.headers))
	for i, h := range t.headers {
		headers[i] = strings.ToUpper(h)
	}
	tbl.Header(headers...)
	for _, r := range t.rows {
		row := make([]any, len(r))
		for i, c := range r {
			if c == "" {
				c = " " // keep empty cells from collapsing
			}
			row[i] = c
		}
		if err := tbl.Append(row...); err != nil {
			return err
		}
	}
	if err := tbl.Render(); err != nil {
		return err
	}
	return writeTrimmed(t.w, buf.String())
}

// writeTrimmed writes text with the trailing blanks of each line removed.
func writeTrimmed(w io.Writer, text string) error {
	var sb strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		nl := strings.HasSuffix(line, "\n")
		sb.WriteString(strings.TrimRight(line, " \t\n"))
		if nl {
			sb.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// fields prints label/value pairs, labels aligned: the detail view of one
// object (status, account, block, tx). Values are never shortened.
type fields struct {
	cs    ColorScheme
	pairs [][2]string
}

func (f *fields) Add(label, value string) { f.pairs = append(f.pairs, [2]string{label, value}) }

func (f *fields) Write(w io.Writer) error {
	width := 0
	for _, p := range f.pairs {
		width = max(width, len(p[0]))
	}
	var sb strings.Builder
	for _, p := range f.pairs {
		pad := strings.Repeat(" ", width-len(p[0])+2)
		sb.WriteString(strings.TrimRight(f.cs.Bold(p[0])+pad+p[1], " "))
		sb.WriteByte('\n')
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// u64 formats an amount.
func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// shortHash shortens a hash for tables: its first 10 hex characters and "…".
func shortHash(h chain.Hash) string { return h.String()[:10] + "…" }

// yesNo formats a boolean for tables.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// formatTime formats a unix-milliseconds timestamp in the clock's zone,
// with its age relative to now.
func formatTime(ms int64, now time.Time) string {
	t := time.UnixMilli(ms).In(now.Location())
	return t.Format("2006-01-02 15:04:05 MST") + " (" + age(t, now) + ")"
}

// age says how long ago t was: "5s ago", "3m ago", "2h ago", "4d ago".
func age(t, now time.Time) string {
	d := now.Sub(t)
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, " ahead"
	}
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s" + suffix
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m" + suffix
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h" + suffix
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d" + suffix
}

// formatMs formats milliseconds as a duration ("2s", "1.5s", "250ms").
func formatMs(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

// percent formats a share in [0,1] as "62.50%".
func percent(share float64) string { return fmt.Sprintf("%.2f%%", 100*share) }

// bar draws share (0..1) as up to width full blocks, with an eighth block
// for the remainder; any positive share gets at least a sliver.
func bar(share float64, width int) string {
	if share <= 0 || math.IsNaN(share) {
		return ""
	}
	share = min(share, 1)
	eighths := int(math.Round(share * float64(width) * 8))
	if eighths == 0 {
		eighths = 1
	}
	partial := []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}
	return strings.Repeat("█", eighths/8) + partial[eighths%8]
}

// ownKeys maps the addresses of the keystore's keys to their names.
type ownKeys map[chain.Address]string

// label shows an address in a table: shortened, highlighted with the key's
// name when it is one of the user's keys.
func (k ownKeys) label(a chain.Address, cs ColorScheme) string {
	if a == "" {
		return "-"
	}
	if name, ok := k[a]; ok {
		return cs.Mine(a.Short() + " (" + name + ")")
	}
	return a.Short()
}

// full shows an address in a detail view: complete, with the key's name.
func (k ownKeys) full(a chain.Address, cs ColorScheme) string {
	if a == "" {
		return "-"
	}
	if name, ok := k[a]; ok {
		return cs.Mine(string(a) + " (" + name + ")")
	}
	return string(a)
}
