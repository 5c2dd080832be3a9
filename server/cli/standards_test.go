package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// dataWithVersion1 is a data directory whose store published version 1
// of the built-in set alone: what a server ran before version 2.
func dataWithVersion1(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	if _, err := syncproto.OpenCatalog(context.Background(), store, schema.BuiltInThrough(1), time.Now()); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// TestFormsCheckWarnsOfAStricterRegionalValue: a version 2 whose
// standards.json gives a region a quantity above the national 35 L (a
// region may focus, not tighten) checks with a warning naming the file,
// the path and both values, and exits 0; a lower regional value warns of
// nothing.
func TestFormsCheckWarnsOfAStricterRegionalValue(t *testing.T) {
	set := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join("..", "..", "schema", "forms", "1"), filepath.Join("..", "..", "schema", "forms", "2"), set).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	std := filepath.Join(set, "2", schema.StandardsFile)
	b, err := os.ReadFile(std)
	if err != nil {
		t.Fatal(err)
	}
	regional := func(value string) {
		s := strings.Replace(string(b), `"value": 35, "classes": {"water_scarce": 20}}`,
			`"value": 35, "classes": {"water_scarce": 20}, "regional": [{"regions": ["50"], "value": `+value+`, "description": {"zh": "重庆", "en": "Chongqing"}}]}`, 1)
		if s == string(b) {
			t.Fatal("the quantity edition was not found in standards.json")
		}
		writeFile(t, filepath.Join(set, "2"), schema.StandardsFile, s)
	}
	data := dataWithVersion1(t)
	check := func() (string, error) {
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), Env{Args: []string{"forms", "check", set, "--data", data}, Stdout: &stdout, Stderr: &stderr})
		return stdout.String() + stderr.String(), err
	}

	regional("50")
	out, err := check()
	if err != nil {
		t.Fatalf("forms check failed on a warning: %v\n%s", err, out)
	}
	want := "warning: 2/standards.json: standards[0].editions[0].regional[0].regions[0]: water_quantity T/CHES 18-2018 in 50 is 50 L/person/day, stricter than the national value 35"
	if !strings.Contains(out, want) || !strings.Contains(out, "version 2: new") ||
		!strings.Contains(out, "    water_quantity (min, L/person/day): T/CHES 18-2018 from 2019-01-01") {
		t.Fatalf("forms check says:\n%s\nwant %q", out, want)
	}

	regional("30")
	if out, err := check(); err != nil || strings.Contains(out, "warning:") {
		t.Fatalf("a lower regional value: %v\n%s", err, out)
	}
}

// TestDeviceFieldsInALanguage: device fields --lang zh names each form by
// its Chinese title (GET /v1/schema serves the titles) and each field by
// its Chinese label; without --lang the forms' own title and label stay.
func TestDeviceFieldsInALanguage(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	tablet := filepath.Join(t.TempDir(), "tablet-a")
	if out, err := runCLI(t, apitest.TestPassword+"\n", "device", "login", "--dir", tablet, "--server", ts.URL, "--user", "worker"); err != nil {
		t.Fatalf("device login: %v\n%s", err, out)
	}
	zh, err := runCLI(t, "", "device", "fields", "--dir", tablet, "--lang", "zh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"water_inspection (农村饮水安全核查)", "housing_inspection (农村住房安全鉴定)", "household (农户)", "水质判定依据"} {
		if !strings.Contains(zh, want) {
			t.Errorf("device fields --lang zh does not say %q:\n%s", want, zh)
		}
	}
	plain, err := runCLI(t, "", "device", "fields", "--dir", tablet)
	if err != nil || !strings.Contains(plain, "water_inspection (Safe drinking-water inspection)") || strings.Contains(plain, "农村饮水安全核查") {
		t.Errorf("device fields without --lang: %v\n%s", err, plain)
	}
	if _, err := runCLI(t, "", "device", "fields", "--dir", tablet, "--lang", "fr"); err == nil {
		t.Error("device fields --lang fr passed")
	}
}
