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

// writeSourceFoldSet writes a form set to dir: version 1 is the built-in
// forms, version 2 maps water_inspection.source "well" to "spring" and
// "spring" to "cistern" (a record migrated twice would turn a well into a
// cistern), renames reliability_pct to reliability_percent and the
// household's members to household_size (so that every batch of records,
// households first, migrates something).
func writeSourceFoldSet(tb testing.TB, dir string) {
	tb.Helper()
	builtIn := filepath.Join("..", "..", "schema", "forms", "1")
	for _, v := range []string{"1", "2"} {
		if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	entries, err := os.ReadDir(builtIn)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(builtIn, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, filepath.Join(dir, "1"), e.Name(), string(b))
		switch e.Name() {
		case schema.VersionFile:
			continue
		case "household.json":
			out := strings.Replace(string(b), `{"name": "members",`, `{"name": "household_size",`, 1)
			if out == string(b) {
				tb.Fatal("the household form has no members field to rename")
			}
			b = []byte(out)
		case "water_inspection.json":
			var w map[string]any
			if err := json.Unmarshal(b, &w); err != nil {
				tb.Fatal(err)
			}
			delete(w, "standards") // keyed by v1 field names; not what this test is about
			for _, f := range w["fields"].([]any) {
				fd := f.(map[string]any)
				switch fd["name"] {
				case "reliability_pct":
					fd["name"] = "reliability_percent"
				case "source":
					fd["values"] = []any{"piped", "spring", "cistern", "surface", "trucked"}
					delete(fd["value_labels"].(map[string]any), "well")
				}
			}
			out, err := json.MarshalIndent(w, "", "  ")
			if err != nil {
				tb.Fatal(err)
			}
			b = out
		}
		writeFile(tb, filepath.Join(dir, "2"), e.Name(), string(b))
	}
	writeFile(tb, filepath.Join(dir, "2"), schema.VersionFile, `{"version": 2, "published": "2027-01-15", "title": {"en": "test"},
	 "migrations": [{"op": "map", "entity": "water_inspection", "field": "source", "values": {"well": "spring", "spring": "cistern"}},
	                {"op": "rename", "entity": "water_inspection", "field": "reliability_pct", "to": "reliability_percent"},
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
// data set to a new version 2, once some batches are committed and others
// are not. At the kill each record is in v1 or in v2, whole; the restart
// resumes, and then every record is migrated exactly once (a well became
// a spring, not a cistern), at its version, the checksum unchanged, and
// the server serves version 2.
func TestKilledDuringPublicationMigratesEachRecordOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a data set and runs the binary")
	}
	data, set := t.TempDir(), t.TempDir()
	writeSourceFoldSet(t, set)
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
	wells := 0
	for _, r := range before {
		if string(r.fields["source"]) == `"well"` {
			wells++
		}
	}
	if len(before) < 10000 || wells == 0 {
		t.Fatalf("generated %d records, %d wells: too few for a migration that takes a while", len(before), wells)
	}

	// Serve on v1–v2 and kill it once a batch is committed.
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
	// last committed batch in v2, the others in v1 —, some in each.
	var progress struct {
		To    int    `json:"to"`
		After string `json:"after"`
	}
	if err := json.Unmarshal([]byte(setting(t, db, "records_migration")), &progress); err != nil || progress.To != 2 {
		t.Fatalf("the migration's progress after the kill: %+v %v", progress, err)
	}
	if v := setting(t, db, "records_schema_version"); v != "" && v != "1" {
		t.Fatalf("records_schema_version %q after the kill", v)
	}
	renamed := map[string][2]string{"household": {"members", "household_size"}, "water_inspection": {"reliability_pct", "reliability_percent"}}
	inV1, inV2 := 0, 0
	for id, r := range readRecords(t, db) {
		names, ok := renamed[r.entity]
		_, old := r.fields[names[0]]
		_, migrated := r.fields[names[1]]
		switch {
		case !ok || !old && !migrated:
			// Nothing tells the versions apart.
		case old && !migrated && id > progress.After:
			inV1++
		case migrated && !old && id <= progress.After:
			inV2++
		default:
			t.Fatalf("%s %s (last migrated %s) is half migrated or in the wrong batch: %s", r.entity, id, progress.After, r.fields)
		}
	}
	t.Logf("killed with %d records in v1, %d in v2", inV1, inV2)
	if inV1 == 0 || inV2 == 0 {
		t.Fatalf("killed at %d records in v1, %d in v2: not mid-migration", inV1, inV2)
	}

	// The restart completes it, and serves.
	srv := startBinary(t, data, "--forms", set)
	resp, err := http.Get(srv.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	if v := setting(t, db, "records_schema_version"); v != "2" || setting(t, db, "records_migration") != "" {
		t.Fatalf("after the restart: records in %q, migration %q", v, setting(t, db, "records_migration"))
	}
	after := readRecords(t, db)
	if len(after) != len(before) {
		t.Fatalf("%d records before, %d after", len(before), len(after))
	}
	for id, old := range before {
		want, _, err := cat.UpRecord(1, old.entity, old.fields)
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
