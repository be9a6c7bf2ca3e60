package home

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestToken: the first call makes a private token, later calls read the
// same; an emptied token file is refused with what to do.
func TestToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := LoadOrCreateToken(dir)
	if err != nil || len(tok) != 64 {
		t.Fatalf("new token %q, %v", tok, err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	if again, err := LoadOrCreateToken(dir); err != nil || again != tok {
		t.Fatalf("second load %q, %v; want %q", again, err, tok)
	}
	if err := os.WriteFile(filepath.Join(dir, TokenFile), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "is empty: delete it") {
		t.Fatalf("empty token file: %v", err)
	}
}

// TestHomeFilesRefused: the files the tools read back say what is wrong
// with them.
func TestHomeFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, want string
		read                      func(dir string) error
	}{
		{"empty api.url", APIURLFile, "\n", "is empty", func(d string) error { _, err := ReadAPIURL(d); return err }},
		{"missing api.url", "", "", "no such file", func(d string) error { _, err := ReadAPIURL(d); return err }},
		{"bad settings.json", SettingsFile, "{", "delete it to start from the flags' settings", func(d string) error { _, _, err := ReadSettings(d); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.read(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	// No settings saved is no error.
	if _, ok, err := ReadSettings(t.TempDir()); ok || err != nil {
		t.Fatalf("ReadSettings of a fresh home: ok %v, err %v", ok, err)
	}
}
