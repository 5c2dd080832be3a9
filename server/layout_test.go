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

// matches reports whether path is the forbidden f: a package of the
// standard library exactly (database/sql, not database/sql/driver, which
// google/uuid implements), any other with the packages below it.
func matches(path, f string) bool {
	if first, _, _ := strings.Cut(f, "/"); !strings.Contains(first, ".") {
		return path == f
	}
	return under(path, f)
}

// rule forbids a package (and those below it) some imports: imports are
// checked against the package's own files, deps against everything it
// builds on.
type rule struct {
	pkg, why      string
	imports, deps []string
	except        []string // packages below pkg the rule does not cover
}

// TestImportRules holds the layout's cut (README, "Layout"), one rule a
// row. A package path in a rule covers the packages below it.
func TestImportRules(t *testing.T) {
	const echo = "github.com/labstack/echo/v4"
	m := func(p string) string { return module + "/" + p }
	stores := []string{m("server/sqlite"), m("server/postgres")}
	adapters := append([]string{m("server/cli"), m("server/bench"), m("server/apitest"), echo, "database/sql"}, stores...)
	rules := []rule{
		{pkg: m("schema"), why: "the domain is pure", deps: []string{"database/sql", "net/http", echo, m("server")}},
		{pkg: m("schema/survey"), why: "survey reads the forms and nothing else", imports: []string{m("syncproto")}},
		{pkg: m("syncproto"), why: "the domain is pure", deps: []string{"database/sql", "net/http", echo, m("server")},
			except: []string{m("syncproto/client")}},
		{pkg: m("server/api"), why: "api is the HTTP adapter over the store contract",
			imports: append([]string{m("server/cli"), m("server/bench"), m("server/apitest"), "database/sql"}, stores...)},
		{pkg: m("server/console"), why: "the console works over the services and the store contract, as api does",
			imports: append([]string{m("server/api"), m("server/cli"), m("server/bench"), m("server/apitest"), "database/sql"}, stores...)},
		{pkg: m("server/export"), why: "export writes rows it is given", imports: append([]string{"net/http"}, adapters...)},
		{pkg: m("server/bench"), why: "bench reaches data through the store contract and the client",
			imports: []string{"database/sql", echo}, deps: stores},
		{pkg: m("server/sqlite"), why: "a store serves the domain, not the adapters",
			imports: []string{m("server/api"), m("server/cli"), m("server/export"), m("server/bench"), echo}},
		{pkg: m("server/postgres"), why: "a store serves the domain, not the adapters",
			imports: []string{m("server/api"), m("server/cli"), m("server/export"), m("server/bench"), m("server/sqlite"), echo}},
		{pkg: m("server/storetest"), why: "the contract suite is the same for every store", imports: stores},
	}
	pkgs := packages(t)
	covered := map[string]int{}
	for _, p := range pkgs {
		// echo stays in server/api: no other package's code or tests import it.
		if !under(p.ImportPath, m("server/api")) {
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if under(imp, echo) {
					t.Errorf("%s imports %s: echo stays in server/api", p.ImportPath, imp)
				}
			}
		}
		// The command line is wired together by main alone; the harness is
		// for tests alone.
		for _, imp := range p.Imports {
			if imp == m("server/cli") && p.ImportPath != m("server/cmd/fieldsync") {
				t.Errorf("%s imports server/cli: only main does", p.ImportPath)
			}
			if imp == m("server/apitest") {
				t.Errorf("%s imports server/apitest outside its tests", p.ImportPath)
			}
		}
		for _, r := range rules {
			if !under(p.ImportPath, r.pkg) || slices.ContainsFunc(r.except, func(e string) bool { return under(p.ImportPath, e) }) {
				continue
			}
			covered[r.pkg]++
			for _, imp := range p.Imports {
				for _, f := range r.imports {
					if matches(imp, f) {
						t.Errorf("%s imports %s: %s", p.ImportPath, imp, r.why)
					}
				}
			}
			for _, dep := range p.Deps {
				for _, f := range r.deps {
					if matches(dep, f) {
						t.Errorf("%s depends on %s: %s", p.ImportPath, dep, r.why)
					}
				}
			}
		}
	}
	for _, r := range rules {
		if covered[r.pkg] == 0 {
			t.Errorf("no package %s: the rule checks nothing", r.pkg)
		}
	}
}
