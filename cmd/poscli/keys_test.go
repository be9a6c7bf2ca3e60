package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

func TestKeygen(t *testing.T) {
	e := newTestEnv(t, "http://127.0.0.1:1")
	if err := e.run(NewCmdKeygen(e.f, nil)); err != nil {
		t.Fatal(err)
	}
	dir := keystore.Dir{Path: filepath.Join(e.home, "keys")}
	info, err := dir.Info("default")
	if err != nil {
		t.Fatalf("keygen made no key named default: %v", err)
	}
	want := "name       default\naddress    " + string(info.Address) + "\nfile       " + info.Path + "\nencrypted  no\n"
	if e.out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", e.out.String(), want)
	}
	if st, err := os.Stat(info.Path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", st.Mode(), err)
	}

	// JSON, encrypted with the passphrase from the environment.
	e.out = &syncBuffer{}
	e.f.IO.Out = e.out
	e.f.Globals.Output = "json"
	e.env["POSCLI_PASSPHRASE"] = "pw"
	if err := e.run(NewCmdKeygen(e.f, nil), "alice", "--encrypt"); err != nil {
		t.Fatal(err)
	}
	checkJSON(t, e.out.String())
	var k keyJSON
	if err := json.Unmarshal([]byte(e.out.String()), &k); err != nil || k.Name != "alice" || !k.Encrypted || !k.Address.Valid() {
		t.Fatalf("json %s (%v)", e.out.String(), err)
	}
	if _, err := keystore.Load(k.File, nil); !errors.Is(err, keystore.ErrPassphraseRequired) {
		t.Errorf("the key is not encrypted: %v", err)
	}
	if key, err := keystore.Load(k.File, []byte("pw")); err != nil || key.Address() != k.Address {
		t.Errorf("the key does not open with its passphrase: %v", err)
	}
}

func TestKeygenPassphrasePrompt(t *testing.T) {
	e := newTestEnv(t, "")
	e.f.IO.InIsTerminal = true
	answers := []string{"one", "two"}
	e.f.ReadSecret = func(_ context.Context, prompt string) (string, error) {
		a := answers[0]
		answers = answers[1:]
		return a, nil
	}
	if code := e.main("keygen", "bob", "--encrypt"); code != 1 {
		t.Fatal("created with mismatched passphrases")
	}
	if e.errOut.String() != "error: the passphrases do not match; nothing was created\n" {
		t.Errorf("got %q", e.errOut.String())
	}
	if _, err := os.Stat(filepath.Join(e.home, "keys", "bob.pem")); !os.IsNotExist(err) {
		t.Errorf("a key file was written")
	}

	answers = []string{"same", "same"}
	e.errOut = &syncBuffer{}
	e.f.IO.ErrOut = e.errOut
	if code := e.main("keygen", "bob", "--encrypt"); code != 0 {
		t.Fatalf("exit 1: %s", e.errOut.String())
	}
	if _, err := keystore.Load(filepath.Join(e.home, "keys", "bob.pem"), []byte("same")); err != nil {
		t.Error(err)
	}
}

func TestKeygenErrors(t *testing.T) {
	e := newTestEnv(t, "")
	e.addKey(t, "alice", alicePriv, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keygen", "alice"}, "error: key alice already exists in <home>/keys: choose another name"},
		{[]string{"keygen", "../x"}, `error: "../x" is not a key name: use 1 to 64 of A-Z a-z 0-9 . _ - not starting with '.'`},
		{[]string{"keygen", "new", "--encrypt"}, "error: --encrypt needs a passphrase: pass --passphrase-file FILE, set POSCLI_PASSPHRASE, pipe it on stdin or run on a terminal to be asked"},
		{[]string{"keygen", "new", "--passphrase-file", "/nonexistent/pass"}, "error: cannot read passphrase file: open /nonexistent/pass: no such file or directory"},
		{[]string{"keygen", "a", "b"}, `error: poscli keygen takes at most one key name, got unexpected "b" (see 'poscli keygen --help')`},
		{[]string{"keys", "show", "nobody"}, "error: key nobody not found in <home>/keys, run `poscli keygen nobody` (or pass --home)"},
		{[]string{"keys", "export", "nobody"}, "error: key nobody not found in <home>/keys, run `poscli keygen nobody` (or pass --home)"},
		{[]string{"keys", "export"}, "error: poscli keys export needs a key name (see 'poscli keys export --help')"},
		{[]string{"keys", "import", "bob", "/nonexistent.pem"}, "error: key file /nonexistent.pem not found"},
		{[]string{"keys", "import", "alice", "/nonexistent.pem"}, "error: key alice already exists in <home>/keys: choose another name"},
	} {
		e.errOut = &syncBuffer{}
		e.f.IO.ErrOut = e.errOut
		if code := e.main(tc.args...); code != 1 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		if got := e.normalize(e.errOut.String()); got != tc.want+"\n" {
			t.Errorf("%v\n got %q\nwant %q", tc.args, got, tc.want+"\n")
		}
	}
}

func TestKeysListShowGolden(t *testing.T) {
	e := newTestEnv(t, "")
	e.addKey(t, "alice", alicePriv, "")
	e.addKey(t, "bob", bobPriv, "hunter2")
	for _, format := range []string{"table", "json"} {
		e.out = &syncBuffer{}
		e.f.IO.Out = e.out
		e.f.Globals.Output = format
		if err := e.run(NewCmdKeysList(e.f, nil)); err != nil {
			t.Fatal(err)
		}
		if format == "json" {
			checkJSON(t, e.out.String())
		}
		golden(t, "keys_list."+format+".golden", e.normalize(e.out.String()))

		for _, name := range []string{"alice", "bob"} {
			e.out = &syncBuffer{}
			e.f.IO.Out = e.out
			if err := e.run(NewCmdKeysShow(e.f, nil), name); err != nil {
				t.Fatal(err)
			}
			golden(t, "keys_show_"+name+"."+format+".golden", e.normalize(e.out.String()))
		}
	}
	pub := hex.EncodeToString(bobPriv.Public().(ed25519.PublicKey))
	if data, _ := os.ReadFile("testdata/keys_show_bob.json.golden"); !strings.Contains(string(data), pub) {
		t.Errorf("keys show of an encrypted key lacks its public key")
	}
}

func TestKeysExportImport(t *testing.T) {
	src := newTestEnv(t, "")
	src.addKey(t, "alice", alicePriv, "")
	src.addKey(t, "bob", bobPriv, "hunter2")
	if err := src.run(NewCmdKeysExport(src.f, nil), "alice"); err != nil {
		t.Fatal(err)
	}
	pemData := src.out.String()
	if !strings.HasPrefix(pemData, "-----BEGIN PRIVATE KEY-----\n") {
		t.Fatalf("export: %q", pemData)
	}
	file := filepath.Join(t.TempDir(), "alice.pem")
	os.WriteFile(file, []byte(pemData), 0o600)

	dst := newTestEnv(t, "")
	if err := dst.run(NewCmdKeysImport(dst.f, nil), "a2", file); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dst.out.String(), "address    "+string(alice)+"\n") {
		t.Errorf("import output:\n%s", dst.out.String())
	}

	// An encrypted key, exported as JSON, imported with its passphrase.
	src.out = &syncBuffer{}
	src.f.IO.Out = src.out
	src.f.Globals.Output = "json"
	if err := src.run(NewCmdKeysExport(src.f, nil), "bob"); err != nil {
		t.Fatal(err)
	}
	var ex keyExportJSON
	if err := json.Unmarshal([]byte(src.out.String()), &ex); err != nil || !ex.Encrypted || ex.Name != "bob" {
		t.Fatalf("export json %s %v", src.out.String(), err)
	}
	bobFile := filepath.Join(t.TempDir(), "bob.pem")
	os.WriteFile(bobFile, []byte(ex.PEM), 0o600)
	passFile := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(passFile, []byte("wrong\n"), 0o600)
	if code := dst.main("keys", "import", "b2", bobFile, "--passphrase-file", passFile); code != 1 {
		t.Fatal("imported with a wrong passphrase")
	}
	if got := dst.errOut.String(); got != "error: wrong passphrase for key file "+bobFile+"\n" {
		t.Errorf("got %q", got)
	}
	os.WriteFile(passFile, []byte("hunter2\n"), 0o600)
	dst.out = &syncBuffer{}
	dst.f.IO.Out = dst.out
	dst.f.Globals.Output = "json"
	if code := dst.main("-o", "json", "keys", "import", "b2", bobFile, "--passphrase-file", passFile); code != 0 {
		t.Fatalf("import: %s", dst.errOut.String())
	}
	var k keyJSON
	if err := json.Unmarshal([]byte(dst.out.String()), &k); err != nil || k.Address != bob || !k.Encrypted {
		t.Errorf("import json %s (%v)", dst.out.String(), err)
	}
	if a, _ := resolveAddress("b2", dst.f.Keys(), "--to"); a != bob {
		t.Errorf("imported key does not resolve: %q", a)
	}
	if a, _ := resolveAddress(strings.ToUpper(string(bob)), dst.f.Keys(), "--to"); a != chain.Address(bob) {
		t.Errorf("upper-case address does not resolve: %q", a)
	}
}
