package survey

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsOnlySchemaAndTheStandardLibrary holds the package to what its
// doc comment promises: domain code over the forms, importing package
// schema and the standard library only (not syncproto, no SQL, no HTTP), so
// that syncproto may import survey and never the reverse.
func TestImportsOnlySchemaAndTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{"database/sql": true, "net/http": true}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			std := !strings.Contains(strings.Split(path, "/")[0], ".")
			if (std && forbidden[path]) || (!std && path != "github.com/fieldsync/fieldsync/schema") {
				t.Errorf("%s imports %s: survey may import schema and the standard library only (no SQL, no HTTP)", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}
