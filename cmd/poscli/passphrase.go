package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/poslab/posd/keystore"
)

// passphraseEnv is the environment variable that holds a key's passphrase.
const passphraseEnv = "POSCLI_PASSPHRASE"

// passphraseSource finds a key's passphrase, in order: --passphrase-file,
// POSCLI_PASSPHRASE, a prompt without echo when stdin is a terminal, else a
// line of stdin.
type passphraseSource struct {
	IO         *IOStreams
	Getenv     func(string) string
	ReadSecret func(ctx context.Context, prompt string) (string, error)
	File       string // --passphrase-file
}

func newPassphraseSource(f *Factory) passphraseSource {
	return passphraseSource{IO: f.IO, Getenv: f.Getenv, ReadSecret: f.ReadSecret}
}

// fixed returns the passphrase given by file or environment, if any.
func (p passphraseSource) fixed() (string, bool, error) {
	if p.File != "" {
		line, err := readFirstLine(p.File)
		if err != nil {
			return "", false, fmt.Errorf("cannot read passphrase file: %v", err)
		}
		if line == "" {
			return "", false, fmt.Errorf("passphrase file %s is empty", p.File)
		}
		return line, true, nil
	}
	if p.Getenv != nil {
		if v := p.Getenv(passphraseEnv); v != "" {
			return v, true, nil
		}
	}
	return "", false, nil
}

func (p passphraseSource) prompt() bool { return p.IO.InIsTerminal && p.ReadSecret != nil }

// existing returns the passphrase of an encrypted key, or an error wrapping
// keystore.ErrPassphraseRequired when there is none to be had.
func (p passphraseSource) existing(ctx context.Context, keyRef string) ([]byte, error) {
	if s, ok, err := p.fixed(); err != nil || ok {
		return []byte(s), err
	}
	if p.prompt() {
		s, err := p.ReadSecret(ctx, fmt.Sprintf("Passphrase for key %s: ", keyRef))
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, keystore.ErrPassphraseRequired
		}
		return []byte(s), nil
	}
	if s, err := readLine(p.IO.In); err == nil && s != "" {
		return []byte(s), nil
	}
	return nil, keystore.ErrPassphraseRequired
}

// errNoNewPassphrase says how to give a passphrase to --encrypt.
var errNoNewPassphrase = errors.New("--encrypt needs a passphrase: pass --passphrase-file FILE, set POSCLI_PASSPHRASE, pipe it on stdin or run on a terminal to be asked")

// fresh returns the passphrase for a new key, asked twice on a terminal.
func (p passphraseSource) fresh(ctx context.Context, name string) ([]byte, error) {
	if s, ok, err := p.fixed(); err != nil || ok {
		return []byte(s), err
	}
	if p.prompt() {
		s, err := p.ReadSecret(ctx, fmt.Sprintf("Passphrase for new key %s: ", name))
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, errors.New("empty passphrase: a key is encrypted with a passphrase of at least one character")
		}
		again, err := p.ReadSecret(ctx, "Repeat the passphrase: ")
		if err != nil {
			return nil, err
		}
		if again != s {
			return nil, errors.New("the passphrases do not match; nothing was created")
		}
		return []byte(s), nil
	}
	if s, err := readLine(p.IO.In); err == nil && s != "" {
		return []byte(s), nil
	}
	return nil, errNoNewPassphrase
}
