package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// runCLI runs a fieldsync command in this process and returns its
// standard output and its error (what main turns into the exit status).
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), Env{Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut})
	return out.String() + errOut.String(), err
}

// TestUserAddRefusesAMistypedData: user add into a directory without a
// database is an error and creates nothing (so export and backup of the
// typo also fail); --create makes the database.
func TestUserAddRefusesAMistypedData(t *testing.T) {
	typo := filepath.Join(t.TempDir(), "dta")
	_, err := runCLI(t, "worker-password\n", "user", "add", "--data", typo, "--name", "w", "--role", "field_worker", "--scope", "500240")
	if err == nil || !strings.Contains(err.Error(), "no fieldsync database in "+typo) {
		t.Fatalf("user add into a mistyped --data: %v", err)
	}
	if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("user add left %s behind: %v", typo, err)
	}
	if _, err := runCLI(t, "", "export", "--data", typo, "--entity", "household", "--out", filepath.Join(t.TempDir(), "x.ndjson")); err == nil {
		t.Fatal("export of a mistyped --data succeeded")
	}
	if _, err := runCLI(t, "", "backup", "--data", typo, "--out", filepath.Join(t.TempDir(), "b.db")); err == nil {
		t.Fatal("backup of a mistyped --data succeeded")
	}
	if out, err := runCLI(t, "worker-password\n", "user", "add", "--create", "--data", typo, "--name", "w", "--role", "field_worker", "--scope", "500240"); err != nil {
		t.Fatalf("user add --create: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(typo, sqlite.FileName)); err != nil {
		t.Fatalf("--create made no database: %v", err)
	}
}

// TestOperatorCommandsRefuseWhatTheyCannotDo: a scope that is no division
// level, a backup into a missing directory, a misspelt entity on the
// tablet: each is an error that says what is wrong.
func TestOperatorCommandsRefuseWhatTheyCannotDo(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	for _, scope := range []string{"5002401", "50024010", "500"} {
		_, err := runCLI(t, "worker-password\n", "user", "add", "--data", ts.Dir, "--name", "w2", "--role", "field_worker", "--scope", "500240107,"+scope)
		if err == nil || !strings.Contains(err.Error(), "--scope "+scope+": a region is a division code of 2 (province), 4 (prefecture), 6 (county), 9 (township) or 12 (village) digits") {
			t.Errorf("scope %s: %v", scope, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir", "b.db")
	if _, err := runCLI(t, "", "backup", "--data", ts.Dir, "--out", missing); err == nil ||
		!strings.Contains(err.Error(), "the directory "+filepath.Dir(missing)+" does not exist") {
		t.Errorf("backup into a missing directory: %v", err)
	}

	tablet := filepath.Join(t.TempDir(), "tablet-a")
	if out, err := runCLI(t, apitest.TestPassword+"\n", "device", "login", "--dir", tablet, "--server", ts.URL, "--user", "worker"); err != nil {
		t.Fatalf("device login: %v\n%s", err, out)
	}
	for _, cmd := range []string{"list", "fields"} {
		_, err := runCLI(t, "", "device", cmd, "--dir", tablet, "--entity", "househld")
		if err == nil || !strings.Contains(err.Error(), `--entity "househld" is not a form of this tablet's schema: use one of followup_visit, household, housing_inspection, person, water_inspection`) {
			t.Errorf("device %s --entity househld: %v", cmd, err)
		}
	}
}

// TestDeviceFieldsIsAReadableTable: every field line of device fields
// shows its policy, and no column is stretched by a form's region rules
// (the first column is as wide as the longest field name, not ~100).
func TestDeviceFieldsIsAReadableTable(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	tablet := filepath.Join(t.TempDir(), "tablet-a")
	if out, err := runCLI(t, apitest.TestPassword+"\n", "device", "login", "--dir", tablet, "--server", ts.URL, "--user", "worker"); err != nil {
		t.Fatalf("device login: %v\n%s", err, out)
	}
	out, err := runCLI(t, "", "device", "fields", "--dir", tablet)
	if err != nil {
		t.Fatal(err)
	}
	var fields int
	for _, line := range strings.Split(out, "\n") {
		cols := strings.Fields(line)
		if len(cols) < 5 || !strings.HasPrefix(line, "  ") || cols[0] == "FIELD" || cols[0] == "in" {
			continue
		}
		fields++
		if cols[0] == "head_name" && !strings.Contains(line, " lww ") {
			t.Errorf("head_name without its policy: %q", line)
		}
		if cols[0] == "grade" && !strings.Contains(line, " safety_first ") {
			t.Errorf("grade without its policy: %q", line)
		}
		if gap := strings.Index(line[2:], " "); gap > 30 {
			t.Errorf("the first column is %d wide: %q", gap, line)
		}
		if w := len(line) - len(strings.TrimLeft(line[2+len(cols[0]):], " ")) - 2 - len(cols[0]); w > 24 {
			t.Errorf("the field name is padded by %d: %q", w, line)
		}
	}
	if fields < 15 {
		t.Fatalf("only %d field lines:\n%s", fields, out)
	}
}

// TestUserAddWithTheSamePasswordKeepsSessions: user add for an existing
// user with the password unchanged (to narrow a scope) keeps its
// sessions, and the narrower scope holds at the next request; a new
// password ends them.
func TestUserAddWithTheSamePasswordKeepsSessions(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	tr := ts.LoginResponse(t, "li.na", apitest.TestPassword, uuid.NewString(), 200)
	if err := os.Chmod(ts.Dir, 0o700); err != nil { // a test server's directory is t.TempDir's 0755
		t.Fatal(err)
	}
	if out, err := runCLI(t, apitest.TestPassword+"\n", "user", "add", "--data", ts.Dir, "--name", "li.na", "--role", "field_worker", "--scope", "500240107"); err != nil {
		t.Fatalf("user add, same password: %v\n%s", err, out)
	}
	resp, body := ts.DoAs(t, tr.AccessToken, "GET", "/v1/sync/pull", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("pull after user add with the same password: %d %s", resp.StatusCode, body)
	}
	var page struct {
		Records []struct {
			Fields map[string]any `json:"fields"`
		} `json:"records"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Records {
		if v, ok := r.Fields["village"].(string); ok && !strings.HasPrefix(v, "500240107") {
			t.Fatalf("the narrowed scope did not hold: a record of village %s", v)
		}
	}
	if out, err := runCLI(t, "a brand new password\n", "user", "add", "--data", ts.Dir, "--name", "li.na", "--role", "field_worker", "--scope", "500240107"); err != nil {
		t.Fatalf("user add, new password: %v\n%s", err, out)
	}
	resp, body = ts.DoAs(t, tr.AccessToken, "GET", "/v1/sync/pull", "", nil)
	apitest.MustProblem(t, resp, body, 401)
}
