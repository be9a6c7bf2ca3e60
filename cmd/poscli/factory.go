package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/poslab/posd/client"
	"github.com/poslab/posd/keystore"
)

// Defaults of the global flags.
const (
	defaultNode    = "http://127.0.0.1:5001"
	defaultTimeout = 10 * time.Second
	defaultPoll    = 500 * time.Millisecond
)

// IOStreams are the standard streams of one invocation and what is known
// about them. Tests use buffers and leave the terminal flags false.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	IsTerminal    bool // stdout is a terminal
	InIsTerminal  bool // stdin is a terminal
	ErrIsTerminal bool // stderr is a terminal

	ColorEnabled    bool // colour on stdout
	ErrColorEnabled bool // colour on stderr
}

// GlobalOptions are the values of the root command's persistent flags.
type GlobalOptions struct {
	Node    string
	Home    string
	Output  string // "table" or "json"
	NoColor bool
	Timeout time.Duration
}

// JSON reports whether -o json was asked for.
func (g *GlobalOptions) JSON() bool { return g.Output == "json" }

// KeysDir is the directory of named keys: <home>/keys.
func (g *GlobalOptions) KeysDir() string { return filepath.Join(g.Home, "keys") }

// Factory carries what commands need from the outside world, so that each
// command can run in a test without a process: streams, global options, the
// node client, the keystore, the clock, the environment.
type Factory struct {
	IO      *IOStreams
	Globals *GlobalOptions

	// Client returns a client for the node named by --node, with --timeout.
	Client func(...client.Option) (*client.Client, error)
	// Keys returns the keystore directory under --home.
	Keys func() keystore.Dir
	// Now is the clock (block ages, spinner).
	Now func() time.Time
	// Getenv reads the environment.
	Getenv func(string) string
	// ReadSecret reads a line from the terminal without echo, after printing
	// prompt on stderr. It is used only when stdin is a terminal.
	ReadSecret func(ctx context.Context, prompt string) (string, error)
	// PollInterval is how often --wait and watch's fallback poll the node.
	PollInterval time.Duration
	// Version is poscli's version.
	Version string
}

// NewFactory returns a factory on the given streams and environment with
// global options at their defaults (environment variables included).
func NewFactory(ios *IOStreams, getenv func(string) string) *Factory {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	f := &Factory{
		IO:           ios,
		Getenv:       getenv,
		Now:          time.Now,
		PollInterval: defaultPoll,
		Version:      versionString(),
	}
	f.Globals = &GlobalOptions{
		Node:    envOr(getenv, "POSCLI_NODE", defaultNode),
		Home:    envOr(getenv, "POSCLI_HOME", defaultHome()),
		Output:  "table",
		Timeout: defaultTimeout,
	}
	f.Client = func(extra ...client.Option) (*client.Client, error) {
		opts := append([]client.Option{
			client.WithTimeout(f.Globals.Timeout),
			client.WithUserAgent("poscli/" + f.Version),
		}, extra...)
		return client.New(f.Globals.Node, opts...), nil
	}
	f.Keys = func() keystore.Dir { return keystore.Dir{Path: f.Globals.KeysDir()} }
	return f
}

// SystemFactory is the factory of the real process.
func SystemFactory() *Factory {
	ios := &IOStreams{
		In:            os.Stdin,
		Out:           os.Stdout,
		ErrOut:        os.Stderr,
		IsTerminal:    isTerminal(os.Stdout),
		InIsTerminal:  isTerminal(os.Stdin),
		ErrIsTerminal: isTerminal(os.Stderr),
	}
	f := NewFactory(ios, os.Getenv)
	f.ReadSecret = func(ctx context.Context, prompt string) (string, error) {
		return readSecretTTY(ctx, os.Stdin, os.Stderr, prompt)
	}
	return f
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func defaultHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".poscli")
	}
	return ".poscli"
}

// setColor decides colour once the flags are known: only on a terminal, and
// neither --no-color nor NO_COLOR (any value) set.
func (f *Factory) setColor() {
	allowed := !f.Globals.NoColor && f.Getenv("NO_COLOR") == ""
	f.IO.ColorEnabled = allowed && f.IO.IsTerminal
	f.IO.ErrColorEnabled = allowed && f.IO.ErrIsTerminal
}

// readSecretTTY prompts on errOut and reads a line from the terminal in with
// echo turned off through stty(1); without stty the line is read as typed.
func readSecretTTY(ctx context.Context, in *os.File, errOut io.Writer, prompt string) (string, error) {
	fmt.Fprint(errOut, prompt)
	off := exec.Command("stty", "-echo")
	off.Stdin = in
	echoOff := off.Run() == nil
	restore := func() {
		if echoOff {
			on := exec.Command("stty", "echo")
			on.Stdin = in
			_ = on.Run()
		}
		fmt.Fprintln(errOut)
	}
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := readLine(in)
		ch <- result{line, err}
	}()
	select {
	case r := <-ch:
		restore()
		return r.line, r.err
	case <-ctx.Done():
		restore()
		return "", ctx.Err()
	}
}

// readLine reads bytes up to a newline, one at a time so that nothing after
// the line is consumed. The newline (and a "\r" before it) is dropped.
func readLine(r io.Reader) (string, error) {
	var sb strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(sb.String(), "\r"), nil
			}
			sb.WriteByte(buf[0])
			if sb.Len() > 4096 {
				return "", errors.New("line too long")
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && sb.Len() > 0 {
				return strings.TrimSuffix(sb.String(), "\r"), nil
			}
			return "", err
		}
	}
}

// readFirstLine returns the first line of a file, without its newline.
func readFirstLine(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	line, err := bufio.NewReader(io.LimitReader(fh, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
