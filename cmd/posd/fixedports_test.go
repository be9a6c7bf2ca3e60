package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoTestUsesTheDefaultPorts: a test that binds the default ports
// (API 5001.., P2P 10001..) fails beside a running `make devnet` and may
// write into the user's network. Every test takes free ports instead; this
// scan keeps it so. It also refuses tests that point a node at ~/.posd.
func TestNoTestUsesTheDefaultPorts(t *testing.T) {
	fixed := regexp.MustCompile(`(?i)(api-port|p2p-port)"?\s*[,=]\s*"?(500[0-9]|1000[0-9])\b|(APIPort|P2PPort)\s*:\s*(500[0-9]|1000[0-9])\b|Listen\w*\([^)]*:(500[0-9]|1000[0-9])"`)
	home := regexp.MustCompile(`UserHomeDir\(\)|"~/\.posd|"~/\.poscli`)
	self := "fixedports_test.go"
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") || d.Name() == self {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if fixed.MatchString(line) {
				t.Errorf("%s:%d binds a default port: %s", path, i+1, strings.TrimSpace(line))
			}
			if home.MatchString(line) {
				t.Errorf("%s:%d uses the user's home: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
