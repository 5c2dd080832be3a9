package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/bench"
	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
)

// TestBenchOnPostgres runs fieldsync bench --store on a small database:
// generated into the URL's database, pushed, pulled and snapshotted on a
// copy of it, with the raw loops measured on PostgreSQL; afterwards only
// the generated database is left (the copy and the raw loops' databases
// are dropped).
func TestBenchOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a database and runs the server")
	}
	c := pgtest.Shared(t)
	store, drop, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.json")
	cli(t, "", "bench", "--store", store, "--households", "300", "--tablets", "2", "--sets", "2",
		"--changes", "20", "--raw-rows", "1000", "--snapshots", "ndjson", "--open-loop=false", "--json", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Push.Changes != 2*2*20 || r.Push.ChangesPerSec <= 0 || r.RawUpsertNormal <= 0 || r.RawUpsertFull <= 0 ||
		r.RawReadRows <= 0 || r.PullRows < 300 || r.DBBytes <= 0 {
		t.Fatalf("figures missing: %+v", r)
	}
	if len(r.Snapshots) != 1 || r.Snapshots[0].Rows != 300 {
		t.Fatalf("snapshots: %+v", r.Snapshots)
	}
	conn, err := pgx.Connect(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	base, _ := baseDatabase(store)
	var left []string
	rows, err := conn.Query(context.Background(), `SELECT datname FROM pg_database WHERE datname LIKE $1`, base+"%")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		left = append(left, n)
	}
	if len(left) != 1 || left[0] != base {
		t.Fatalf("databases left after the run: %s", strings.Join(left, ", "))
	}
}
