package server

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/fieldsync/fieldsync"

// listed is what go list says of one package.
type listed struct {
	ImportPath   string
	Imports      []string // direct, of the package's own files
	Deps         []string // transitive, of the package's own files
	TestImports  []string
	XTestImports []string
}

// packages lists every package of the module, as the go command sees it.
func packages(t *testing.T) []listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []listed
	dec := json.NewDecoder(out)
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// TestImportRules holds the layout's cut (README, "Layout"):
//   - only server/api imports echo (its tests too; no other package's code
//     or tests do);
//   - the domain — schema/... and syncproto/... but the tablet client
//     (syncproto/client, which speaks HTTP and keeps an SQLite outbox) —
//     depends on no database/sql, net/http or echo, even indirectly;
//   - server/bench imports no database/sql and depends on no store package:
//     it reaches data through the store contract and the client.
func TestImportRules(t *testing.T) {
	const echo = "github.com/labstack/echo/v4"
	api := module + "/server/api"
	stores := []string{module + "/server/sqlite", module + "/server/postgres"}
	checked := map[string]bool{}
	for _, p := range packages(t) {
		if !under(p.ImportPath, api) {
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if under(imp, echo) {
					t.Errorf("%s imports %s: echo stays in server/api", p.ImportPath, imp)
				}
			}
		}
		if (under(p.ImportPath, module+"/schema") || under(p.ImportPath, module+"/syncproto")) &&
			!under(p.ImportPath, module+"/syncproto/client") {
			checked["domain"] = true
			for _, dep := range p.Deps {
				if dep == "database/sql" || dep == "net/http" || under(dep, echo) {
					t.Errorf("%s depends on %s: the domain is pure", p.ImportPath, dep)
				}
			}
		}
		if p.ImportPath == module+"/server/bench" {
			checked["bench"] = true
			if slices.Contains(p.Imports, "database/sql") {
				t.Errorf("server/bench imports database/sql: it reaches data through the store contract")
			}
			for _, dep := range p.Deps {
				for _, s := range stores {
					if under(dep, s) {
						t.Errorf("server/bench depends on %s: it reaches data through the store contract", dep)
					}
				}
			}
		}
	}
	if !checked["domain"] || !checked["bench"] {
		t.Fatalf("the rules checked nothing: %v", checked)
	}
}
