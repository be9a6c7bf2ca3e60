package lab

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsFlowOneWay: the lab is used by the commands and the daemon,
// so it must import neither: imports flow one way, cmd →
// daemon/client/keystore/lab → chain.
func TestImportsFlowOneWay(t *testing.T) {
	const module = "github.com/poslab/posd/"
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if rest, ok := strings.CutPrefix(p, module); ok && (strings.HasPrefix(rest, "cmd/") || rest == "daemon" || strings.HasPrefix(rest, "daemon/")) {
				t.Errorf("%s imports %s", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 8 {
		t.Fatalf("only %d Go files found under lab/", files)
	}
}
