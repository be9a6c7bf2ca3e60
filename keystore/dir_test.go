package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestDirNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"A", true},
		{"node-1_backup.v2", true},
		{"a.", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{"../etc/passwd", false},
		{"a/b", false},
		{`a\b`, false},
		{"with space", false},
		{"tab\t", false},
		{"ümlaut", false},
		{"semi;colon", false},
		{"nul\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkName(tc.name)
			if (err == nil) != tc.ok {
				t.Fatalf("checkName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			}
			if tc.ok {
				return
			}
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("not ErrBadName: %v", err)
			}
			d := Dir{Path: t.TempDir()}
			if _, err := d.Create(tc.name, nil); !errors.Is(err, ErrBadName) {
				t.Errorf("Create: %v", err)
			}
			if _, err := d.Load(tc.name, nil); !errors.Is(err, ErrBadName) {
				t.Errorf("Load: %v", err)
			}
			if _, err := d.Info(tc.name); !errors.Is(err, ErrBadName) {
				t.Errorf("Info: %v", err)
			}
			if _, err := d.Export(tc.name); !errors.Is(err, ErrBadName) {
				t.Errorf("Export: %v", err)
			}
			if _, err := d.Import(tc.name, "x.pem", nil); !errors.Is(err, ErrBadName) {
				t.Errorf("Import: %v", err)
			}
			if entries, _ := os.ReadDir(d.Path); len(entries) != 0 {
				t.Errorf("a bad name left %d files", len(entries))
			}
		})
	}
}

func TestDirCreateLoad(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "keys")}
	k, err := d.Create("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Path() != filepath.Join(d.Path, "alice.pem") {
		t.Errorf("Path() = %q", k.Path())
	}
	if _, err := d.Create("alice", []byte("pw")); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	got, err := d.Load("alice", nil)
	if err != nil || got.Address() != k.Address() {
		t.Fatalf("Load: %v", err)
	}

	_, err = d.Load("bob", nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load missing: %v, want ErrNotFound", err)
	}
	checkOneLine(t, err, `"bob"`)
	checkOneLine(t, err, "poscli keygen bob")
	if _, err := d.Info("bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Info missing: %v", err)
	}
	if _, err := d.Export("bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Export missing: %v", err)
	}

	enc, err := d.Create("carol", []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load("carol", nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("Load encrypted without passphrase: %v", err)
	}
	if _, err := d.Load("carol", []byte("bad")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Load with wrong passphrase: %v", err)
	}
	got, err = d.Load("carol", []byte("pw"))
	if err != nil || got.Address() != enc.Address() {
		t.Fatalf("Load encrypted: %v", err)
	}
}

func TestDirList(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "keys")}
	if infos, err := d.List(); err != nil || len(infos) != 0 {
		t.Fatalf("List of a missing dir: %v, %v", infos, err)
	}
	want := map[string]*Key{}
	for _, c := range []struct{ name, pass string }{{"zed", ""}, {"alice", "pw"}, {"bob", ""}, {"a.b", "secret"}} {
		k, err := d.Create(c.name, []byte(c.pass))
		if err != nil {
			t.Fatal(err)
		}
		want[c.name] = k
	}
	// Clutter the listing must ignore, and an encrypted key without .pub.
	writeFile(t, d.Path, "notes.txt", []byte("hi"))
	writeFile(t, d.Path, ".hidden.pem", []byte("x"))
	os.Mkdir(filepath.Join(d.Path, "sub.pem"), 0o700)
	orphan := mustGenerate(t)
	writeFile(t, d.Path, "orphan.pem", mustEncode(t, orphan, "pw"))

	infos, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
	}
	if got := strings.Join(names, ","); got != "a.b,alice,bob,orphan,zed" {
		t.Fatalf("names %s", got)
	}
	for _, in := range infos {
		if in.Path != filepath.Join(d.Path, in.Name+".pem") {
			t.Errorf("%s: path %s", in.Name, in.Path)
		}
		if in.Name == "orphan" {
			if in.Address != "" || !in.Encrypted {
				t.Errorf("orphan: %+v, want encrypted with no address", in)
			}
			continue
		}
		k := want[in.Name]
		if in.Address != k.Address() {
			t.Errorf("%s: address %q, want %q", in.Name, in.Address, k.Address())
		}
		if wantEnc := in.Name == "alice" || in.Name == "a.b"; in.Encrypted != wantEnc {
			t.Errorf("%s: encrypted %v", in.Name, in.Encrypted)
		}
	}

	// Loading the orphan with its passphrase writes its .pub; then List knows it.
	if _, err := d.Load("orphan", []byte("pw")); err != nil {
		t.Fatal(err)
	}
	in, err := d.Info("orphan")
	if err != nil || in.Address != orphan.Address() {
		t.Fatalf("Info after Load: %+v, %v", in, err)
	}

	// A broken .pem is still listed, with no address.
	writeFile(t, d.Path, "broken.pem", []byte("not a key"))
	infos, err = d.List()
	if err != nil || len(infos) != 6 || infos[3].Name != "broken" || infos[3].Address != "" {
		t.Fatalf("List with a broken file: %+v, %v", infos, err)
	}
	if _, err := d.Info("broken"); !errors.Is(err, ErrNotAKey) {
		t.Fatalf("Info broken: %v", err)
	}

	js, _ := json.Marshal(infos[0])
	for _, key := range []string{`"name":`, `"address":`, `"path":`, `"encrypted":`} {
		if !bytes.Contains(js, []byte(key)) {
			t.Errorf("JSON %s lacks %s", js, key)
		}
	}
}

func TestDirImportExport(t *testing.T) {
	src := t.TempDir()
	d := Dir{Path: filepath.Join(t.TempDir(), "keys")}
	plain, secret := mustGenerate(t), mustGenerate(t)
	plainFile := writeFile(t, src, "plain.pem", append([]byte("comment line\n"), mustEncode(t, plain, "")...))
	secretPEM := mustEncode(t, secret, "pw")
	secretFile := writeFile(t, src, "secret.pem", secretPEM)

	in, err := d.Import("p", plainFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.Address != plain.Address() || in.Encrypted || in.Name != "p" {
		t.Fatalf("Import plain: %+v", in)
	}

	if _, err := d.Import("s", secretFile, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("Import encrypted without passphrase: %v", err)
	} else {
		checkOneLine(t, err, secretFile)
	}
	if _, err := d.Import("s", secretFile, []byte("no")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Import with wrong passphrase: %v", err)
	}
	in, err = d.Import("s", secretFile, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if in.Address != secret.Address() || !in.Encrypted {
		t.Fatalf("Import encrypted: %+v", in)
	}
	if _, err := d.Import("s", plainFile, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("Import over an existing name: %v", err)
	}
	junk := writeFile(t, src, "junk.pem", []byte("junk"))
	if _, err := d.Import("j", junk, nil); !errors.Is(err, ErrNotAKey) {
		t.Fatalf("Import junk: %v", err)
	} else {
		checkOneLine(t, err, junk)
	}
	if _, err := d.Import("m", filepath.Join(src, "missing.pem"), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Import missing file: %v", err)
	}

	// Export gives the stored bytes: the encrypted one unchanged.
	out, err := d.Export("s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, secretPEM) {
		t.Fatal("Export of an imported encrypted key differs from the original")
	}
	if _, err := DecodePEM(out, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("exported key is not encrypted: %v", err)
	}
	out, err = d.Export("p")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("comment")) {
		t.Error("Import kept the text around the key")
	}
	k, err := DecodePEM(out, nil)
	if err != nil || k.Address() != plain.Address() {
		t.Fatalf("exported plain key: %v", err)
	}

	if runtime.GOOS != "windows" {
		st, _ := os.Stat(filepath.Join(d.Path, "s.pem"))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("imported key mode %v", st.Mode().Perm())
		}
	}
	// The imported encrypted key lists with its address.
	infos, _ := d.List()
	if len(infos) != 2 || infos[1].Address != secret.Address() {
		t.Fatalf("List: %+v", infos)
	}
}

func TestDirResolve(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	d := Dir{Path: filepath.Join(cwd, "keys")}
	writeFile(t, cwd, "here.pem", []byte("x"))
	for _, tc := range []struct{ in, want string }{
		{"alice", filepath.Join(d.Path, "alice.pem")},
		{"here.pem", "here.pem"},                            // exists: a path
		{"gone.pem", filepath.Join(d.Path, "gone.pem.pem")}, // no such file: a name
		{"./gone.pem", "./gone.pem"},                        // a separator: a path
		{"/abs/key.pem", "/abs/key.pem"},
		{"sub/key", "sub/key"},
	} {
		if got := d.Resolve(tc.in); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
