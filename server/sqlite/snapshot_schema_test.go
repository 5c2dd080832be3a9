package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// schemaWithSchools is the v1 forms and one more, school, which v1 lacks.
func schemaWithSchools(t *testing.T) *schema.Schema {
	t.Helper()
	fsys := fstest.MapFS{"forms/school.json": {Data: []byte(`{"entity": "school", "title": "School",
		"scope_field": "village", "fields": [{"name": "village", "type": "division_code", "required": true,
		"policy": "manual", "label": "Village"}]}`)}}
	names, err := filepath.Glob("../../schema/forms/1/*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("v1 forms: %v %v", names, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		fsys["forms/"+filepath.Base(n)] = &fstest.MapFile{Data: b}
	}
	sch, err := schema.Load(fsys, "forms")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestSnapshotReadsTheQuerysSchema: the store keeps no schema of its own;
// a snapshot knows the entities of the schema its query carries (the
// server's), and the v1 forms when it carries none.
func TestSnapshotReadsTheQuerysSchema(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	all := syncproto.Actor{AllRegions: true}
	c := storetest.MustSnapshot(t, s, all, syncproto.SnapshotQuery{Schema: schemaWithSchools(t), Entities: []string{"school"}})
	if len(c.Rows) != 0 {
		t.Fatalf("rows of an empty entity: %+v", c.Rows)
	}
	err := s.Snapshot(context.Background(), all, syncproto.SnapshotQuery{Entities: []string{"school"}}, &storetest.Collected{})
	var se *syncproto.Error
	if !errors.As(err, &se) || se.Code != syncproto.EInvalid || len(se.Errors) != 1 || se.Errors[0].Path != "entities" {
		t.Fatalf("an entity v1 lacks, without a schema: %v", err)
	}
}
