package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/server/bench"
)

// fieldsync bench, at a toy size: it generates, logs in tablets, pushes
// (closed and open loop), pulls and snapshots, and reports figures that
// add up. (No figure is judged here: benchmarks are not tests.)
func TestBenchRunsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a database and runs the server")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "bench.json")
	cli(t, "", "bench", "--data", filepath.Join(dir, "data"), "--households", "300", "--tablets", "4", "--sets", "2",
		"--changes", "20", "--raw-rows", "2000", "--json", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Push.Changes != 4*2*20 || r.Push.ChangeSets != 4*2 || r.OpenLoop == nil || r.OpenLoop.Changes != 4*2*20 {
		t.Fatalf("pushed %+v, open loop %+v", r.Push, r.OpenLoop)
	}
	if r.Push.ChangesPerSec <= 0 || r.Push.P99ms <= 0 || r.RawUpsertNormal <= 0 || r.RawReadRows <= 0 || r.PullRows < 300 {
		t.Fatalf("figures missing: %+v", r)
	}
	if len(r.Snapshots) != 4 || r.Snapshots[0].Rows != 300 {
		t.Fatalf("snapshots: %+v", r.Snapshots)
	}
}
