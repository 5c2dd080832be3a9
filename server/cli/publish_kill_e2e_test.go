package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// writeRelationFoldSet writes a form set to dir: versions 1 to 3 are the
// built-in forms (the ones generate publishes), version 4 maps a person's
// relation "spouse" to "sibling" and "sibling" to "other" (a record
// migrated twice would turn a spouse into "other") and renames the
// household's members to household_size (so that every batch of records
// migrates something visible).
func writeRelationFoldSet(tb testing.TB, dir string) {
	tb.Helper()
	for _, v := range []string{"1", "2", "3", "4"} {
		if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, v := range []string{"1", "2", "3"} {
		builtIn := filepath.Join("..", "..", "schema", "forms", v)
		entries, err := os.ReadDir(builtIn)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(builtIn, e.Name()))
			if err != nil {
				tb.Fatal(err)
			}
			writeFile(tb, filepath.Join(dir, v), e.Name(), string(b))
			if v != "3" || e.Name() == schema.VersionFile {
				continue
			}
			edit := func(field string, fn func(fd map[string]any)) {
				var form map[string]any
				if err := json.Unmarshal(b, &form); err != nil {
					tb.Fatal(err)
				}
				found := false
				for _, f := range form["fields"].([]any) {
					if fd := f.(map[string]any); fd["name"] == field {
						fn(fd)
						found = true
					}
				}
				if !found {
					tb.Fatalf("%s has no field %s", e.Name(), field)
				}
				out, err := json.MarshalIndent(form, "", "  ")
				if err != nil {
					tb.Fatal(err)
				}
				b = out
			}
			switch e.Name() {
			case schema.RegistriesFile:
				// The registries state the renamed field under its new name.
				b = []byte(strings.ReplaceAll(string(b), `"states": "members"`, `"states": "household_size"`))
			case "household.json":
				edit("members", func(fd map[string]any) { fd["name"] = "household_size" })
			case "person.json":
				edit("relation", func(fd map[string]any) {
					var values []any
					for _, v := range fd["values"].([]any) {
						if v != "spouse" {
							values = append(values, v)
						}
					}
					fd["values"] = values
					if vl, ok := fd["value_labels"].(map[string]any); ok {
						delete(vl, "spouse")
					}
				})
			}
			writeFile(tb, filepath.Join(dir, "4"), e.Name(), string(b))
		}
	}
	writeFile(tb, filepath.Join(dir, "4"), schema.VersionFile, `{"version": 4, "published": "2027-01-15", "title": {"en": "test"},
	 "migrations": [{"op": "map", "entity": "person", "field": "relation", "values": {"spouse": "sibling", "sibling": "other"}},
	                {"op": "rename", "entity": "household", "field": "members", "to": "household_size"}]}`)
}

// storedRecord is a record's row as the test reads it from the file.
type storedRecord struct {
	entity  string
	version int64
	fields  map[string]json.RawMessage
}

// readRecords reads every record of the database at path, by id.
func readRecords(tb testing.TB, db *sql.DB) map[string]storedRecord {
	tb.Helper()
	rows, err := db.Query(`SELECT id, entity, version, fields FROM records`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedRecord{}
	for rows.Next() {
		var id, fields string
		var r storedRecord
		if err := rows.Scan(&id, &r.entity, &r.version, &fields); err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal([]byte(fields), &r.fields); err != nil {
			tb.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func setting(tb testing.TB, db *sql.DB, name string) string {
	tb.Helper()
	var v string
	if err := db.QueryRow(`SELECT value FROM settings WHERE name = ?`, name).Scan(&v); err != nil && err != sql.ErrNoRows {
		tb.Fatal(err)
	}
	return v
}

func checksumOf(tb testing.TB, path string) syncproto.Checksum {
	tb.Helper()
	r, err := sqlite.OpenReader(context.Background(), path, sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	sum, _, err := r.Checksum(context.Background(), syncproto.Actor{AllRegions: true})
	if err != nil {
		tb.Fatal(err)
	}
	return sum
}

// TestKilledDuringPublicationMigratesEachRecordOnce SIGKILLs the real
// binary while serve --forms migrates the stored records of a generated
// data set (published in the built-in version 3) to a new version 4, once
// some batches are committed and others are not. At the kill each record
// is in v3 or in v4, whole; the restart resumes, and then every record is
// migrated exactly once (a spouse became a sibling, not "other"), at its
// version, the checksum unchanged, and the server serves version 4.
func TestKilledDuringPublicationMigratesEachRecordOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a data set and runs the binary")
	}
	data, set := t.TempDir(), t.TempDir()
	writeRelationFoldSet(t, set)
	cat, err := schema.LoadCatalog(os.DirFS(set), ".")
	if err != nil {
		t.Fatal(err)
	}
	cli(t, "", "generate", "--data", data, "--households", "6000", "--seed", "7")
	path := filepath.Join(data, sqlite.FileName)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := readRecords(t, db)
	sumBefore := checksumOf(t, path)
	spouses := 0
	for _, r := range before {
		if string(r.fields["relation"]) == `"spouse"` {
			spouses++
		}
	}
	if len(before) < 10000 || spouses == 0 {
		t.Fatalf("generated %d records, %d spouses: too few for a migration that takes a while", len(before), spouses)
	}

	// Serve on v1–v4 and kill it once a batch is committed.
	cmd := exec.Command(fieldsyncBinary(t), "serve", "--addr", "127.0.0.1:0", "--data", data, "--forms", set, "--log-format", "text")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for setting(t, db, "records_migration") == "" {
		select {
		case err := <-exited:
			t.Fatalf("serve exited before the kill (%v): the migration finished before a batch was seen:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no migration batch committed in 60 s:\n%s", stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-exited
	if strings.Contains(stderr.String(), "fieldsync serving") {
		t.Fatalf("killed after the migration, not during it:\n%s", stderr.String())
	}

	// At the kill: each record in one version, whole — those up to the
	// last committed batch in v4, the others in v3 —, some in each.
	var progress struct {
		To    int    `json:"to"`
		After string `json:"after"`
	}
	if err := json.Unmarshal([]byte(setting(t, db, "records_migration")), &progress); err != nil || progress.To != 4 {
		t.Fatalf("the migration's progress after the kill: %+v %v", progress, err)
	}
	if v := setting(t, db, "records_schema_version"); v != "3" {
		t.Fatalf("records_schema_version %q after the kill", v)
	}
	renamed := map[string][2]string{"household": {"members", "household_size"}}
	inV3, inV4 := 0, 0
	for id, r := range readRecords(t, db) {
		names, ok := renamed[r.entity]
		_, old := r.fields[names[0]]
		_, migrated := r.fields[names[1]]
		switch {
		case !ok || !old && !migrated:
			// Nothing tells the versions apart.
		case old && !migrated && id > progress.After:
			inV3++
		case migrated && !old && id <= progress.After:
			inV4++
		default:
			t.Fatalf("%s %s (last migrated %s) is half migrated or in the wrong batch: %s", r.entity, id, progress.After, r.fields)
		}
	}
	t.Logf("killed with %d households in v3, %d in v4", inV3, inV4)
	if inV3 == 0 || inV4 == 0 {
		t.Fatalf("killed at %d households in v3, %d in v4: not mid-migration", inV3, inV4)
	}

	// The restart completes it, and serves.
	srv := startBinary(t, data, "--forms", set)
	resp, err := http.Get(srv.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if v := setting(t, db, "records_schema_version"); v != "4" || setting(t, db, "records_migration") != "" {
		t.Fatalf("after the restart: records in %q, migration %q", v, setting(t, db, "records_migration"))
	}
	after := readRecords(t, db)
	if len(after) != len(before) {
		t.Fatalf("%d records before, %d after", len(before), len(after))
	}
	for id, old := range before {
		want, _, err := cat.UpRecord(3, old.entity, old.fields)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		got := after[id]
		if got.version != old.version {
			t.Errorf("%s: version %d → %d", id, old.version, got.version)
		}
		if !reflect.DeepEqual(got.fields, want) {
			t.Fatalf("%s (%s) is not migrated exactly once:\nwas  %s\nis   %s\nwant %s", id, old.entity, old.fields, got.fields, want)
		}
	}
	if sum := checksumOf(t, path); sum != sumBefore {
		t.Errorf("checksum %+v → %+v", sumBefore, sum)
	}
	srv.kill(t)
}
