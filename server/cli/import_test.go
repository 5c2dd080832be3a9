package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// demoRegistry is a registry file of the demo (fixtures/registries).
func demoRegistry(name string) string {
	return filepath.Join("..", "..", "fixtures", "registries", name)
}

// TestImportCommand: fieldsync import reads a file of the demo (Chinese
// headers, a byte-order mark) and says what it did; the same file again
// changes nothing; a mapping file maps other headers; a file with bad rows
// imports nothing and names each by its line and column.
func TestImportCommand(t *testing.T) {
	data := t.TempDir()
	if out, err := runCLI(t, "admin-password-1\n", "user", "add", "--create", "--data", data, "--name", "admin", "--role", "admin"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	out, err := runCLI(t, "", "import", "--data", data, "--source", "poverty_registry", demoRegistry("poverty_registry.csv"))
	if err != nil || !strings.Contains(out, "poverty_registry: import 1 of poverty_registry.csv") || !strings.Contains(out, "301 rows, 301 added, 0 changed, 0 removed") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "import: 301 rows") {
		t.Errorf("no progress line on standard error:\n%s", out)
	}
	out, err = runCLI(t, "", "import", "--data", data, "--source", "poverty_registry", demoRegistry("poverty_registry.csv"))
	if err != nil || !strings.Contains(out, "the file equals import 1") {
		t.Fatalf("the same file again: %v\n%s", err, out)
	}
	mapping := writeFile(t, t.TempDir(), "mapping.json", `{"columns": {"HH": "registration_no", "VIL": "village", "NAME": "head_name"}}`)
	list := writeFile(t, t.TempDir(), "list.csv", "HH,VIL,NAME,extra\nR1,500240107201,谭明华,x\n")
	out, err = runCLI(t, "", "import", "--data", data, "--source", "subsistence_allowance", "--mapping", mapping, list)
	if err == nil || !strings.Contains(err.Error(), "no column maps to case_no") {
		t.Errorf("a mapping without the key: %v\n%s", err, out)
	}
	mapping = writeFile(t, t.TempDir(), "mapping.json", `{"columns": {"HH": "case_no", "VIL": "village", "NAME": "head_name"}}`)
	if out, err = runCLI(t, "", "import", "--data", data, "--source", "subsistence_allowance", "--mapping", mapping, list); err != nil || !strings.Contains(out, "1 rows, 1 added") {
		t.Errorf("with a mapping: %v\n%s", err, out)
	}
	bad := writeFile(t, t.TempDir(), "bad.csv", "户编号,村,户主姓名,家庭人口\nR1,500240107201,谭明华,4\nR2,500240107201,冉秀英,四\n")
	_, err = runCLI(t, "", "import", "--data", data, "--source", "poverty_registry", bad)
	if err == nil || !strings.Contains(err.Error(), "1 bad row: nothing of the file was imported\n  line 3, column 4: members must be a whole number") {
		t.Errorf("bad rows: %v", err)
	}
	out, _ = runCLI(t, "", "import", "--data", data, "--source", "poverty_registry", demoRegistry("poverty_registry.csv"))
	if !strings.Contains(out, "the file equals import 1") {
		t.Errorf("after a failed import the latest is not the first: %s", out)
	}
}

// TestImportOf100000RowsInBoundedMemory imports 100,000 rows: the heap
// stays flat (rows are written as they are read, in one transaction), far
// below what holding the rows would take.
func TestImportOf100000RowsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 rows")
	}
	data := t.TempDir()
	if out, err := runCLI(t, "admin-password-1\n", "user", "add", "--create", "--data", data, "--name", "admin", "--role", "admin"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	path := filepath.Join(t.TempDir(), "big.csv")
	writeRegistry(t, path, 100_000)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	out, err := runCLI(t, "", "import", "--data", data, "--source", "poverty_registry", path)
	close(stop)
	<-done
	if err != nil || !strings.Contains(out, "100000 rows, 100000 added") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap in use: %d MB before, peak %d MB (+%d MB)", base.HeapInuse>>20, peak.Load()>>20, grew>>20)
	// The rows as a map each would be over 100 MB.
	if grew > 40<<20 {
		t.Errorf("the heap grew by %d MB importing 100,000 rows", grew>>20)
	}
}

// writeRegistry writes a poverty registry of n rows in the demo's columns.
func writeRegistry(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "registration_no,village,head_name,members,category,status")
	for i := range n {
		fmt.Fprintf(w, "5002401072%02d%06d,5002401072%02d,户主%d,%d,低保户,未脱贫\n", i%90+10, i, i%90+10, i, i%7+1)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// user add --department takes a department of the forms and user list
// shows it; an unknown one is refused with the list.
func TestUserDepartment(t *testing.T) {
	data := t.TempDir()
	out, err := runCLI(t, "a-long-password-1\n", "user", "add", "--create", "--data", data, "--name", "li.jiao", "--role", "supervisor", "--scope", "500240", "--department", "education")
	if err != nil || !strings.Contains(out, "department education") {
		t.Fatalf("user add --department: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "", "user", "list", "--data", data); err != nil || !strings.Contains(out, "education") {
		t.Errorf("user list: %v\n%s", err, out)
	}
	_, err = runCLI(t, "a-long-password-1\n", "user", "add", "--data", data, "--name", "li.jiao", "--role", "supervisor", "--scope", "500240", "--department", "schools")
	if err == nil || !strings.Contains(err.Error(), `unknown department "schools" (the forms declare poverty_alleviation, housing`) {
		t.Errorf("an unknown department: %v", err)
	}
}
