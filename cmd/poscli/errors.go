package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/poslab/posd/client"
	"github.com/poslab/posd/keystore"
)

// describe turns any error a command returns into the one line printed after
// "error: ": what went wrong and what to do about it.
func describe(err error) string {
	var ue *client.UnreachableError
	var ae *client.APIError
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &ue):
		return unreachable(ue)
	case errors.As(err, &ae) && err == error(ae):
		return apiMessage(ae)
	}
	return oneLine(err.Error())
}

func unreachable(ue *client.UnreachableError) string {
	cause := ue.Err
	var dns *net.DNSError
	var why string
	switch {
	case errors.Is(cause, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.As(cause, &dns):
		why = "unknown host " + dns.Name
	default:
		why = cause.Error()
	}
	return fmt.Sprintf("node not reachable at %s — is posd running? (%s; set --node or POSCLI_NODE to use another node)", ue.URL, why)
}

func apiMessage(ae *client.APIError) string {
	switch ae.Code {
	case "unauthorized":
		return "the node refused the admin token (unauthorized): pass the node's api.token with --token-file FILE or --node-home DIR"
	case "not_found":
		return "not found on the node: " + ae.Message
	}
	return fmt.Sprintf("the node answered HTTP %d: %s", ae.Status, ae.Error())
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// keyError explains a keystore error about the key ref (a name or a file),
// in dir.
func keyError(ref, dir string, err error) error {
	isFile := strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, filepath.Separator) || strings.HasSuffix(ref, ".pem")
	switch {
	case errors.Is(err, keystore.ErrNotFound) && isFile:
		return fmt.Errorf("key file %s not found", ref)
	case errors.Is(err, keystore.ErrNotFound):
		return fmt.Errorf("key %s not found in %s, run `poscli keygen %s` (or pass --home)", ref, dir, ref)
	case errors.Is(err, keystore.ErrWrongPassphrase):
		return fmt.Errorf("wrong passphrase for key %s", ref)
	case errors.Is(err, keystore.ErrPassphraseRequired):
		return fmt.Errorf("key %s is encrypted: pass --passphrase-file FILE, set POSCLI_PASSPHRASE or run on a terminal to be asked", ref)
	case errors.Is(err, keystore.ErrBadName):
		return fmt.Errorf("%q is not a key name: use 1 to 64 of A-Z a-z 0-9 . _ - not starting with '.'", ref)
	case errors.Is(err, keystore.ErrExists):
		return fmt.Errorf("key %s already exists in %s: choose another name", ref, dir)
	case errors.Is(err, keystore.ErrNotAKey), errors.Is(err, keystore.ErrNotEd25519), errors.Is(err, keystore.ErrUnsupportedEncryption):
		return fmt.Errorf("cannot read key %s: %v", ref, err)
	}
	return fmt.Errorf("key %s: %w", ref, err)
}
