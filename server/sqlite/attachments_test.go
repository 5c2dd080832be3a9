package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/fieldsync/fieldsync/syncproto"
)

// TestAttachmentRefsBackfilled: a database written before migration 7
// gets the photo references of its existing records when it is opened.
func TestAttachmentRefsBackfilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	db, err := sql.Open("sqlite", fileURI(path))
	if err != nil {
		t.Fatal(err)
	}
	fsys, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	insert := `INSERT INTO records (id, entity, version, village, fields, meta, seq, created_at, updated_at, updated_by, updated_device)
		VALUES (?, ?, 1, ?, ?, '{}', ?, '', '', 'x', 'x')`
	for i, r := range []struct{ id, entity, village, fields string }{
		{"h1", "housing_inspection", "500240107201", `{"photos":["` + a + `","` + b + `"]}`},
		{"w1", "water_inspection", "150422103202", `{"photos":["` + b + `"]}`},
		{"w2", "water_inspection", "150422103202", `{"photos":null}`},
		{"hh", "household", "500240107201", `{"head_name":"x"}`},
	} {
		if _, err := db.Exec(insert, r.id, r.entity, r.village, r.fields, i+1); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	south := syncproto.Actor{Scope: []string{"500240"}}
	north := syncproto.Actor{Scope: []string{"150422"}}
	for _, c := range []struct {
		actor syncproto.Actor
		hash  string
		want  syncproto.PhotoAccess
	}{
		{south, a, syncproto.PhotoAccess{InScope: true, Referenced: true}},
		{north, a, syncproto.PhotoAccess{Referenced: true}},
		{north, b, syncproto.PhotoAccess{InScope: true, Referenced: true}},
		{south, b, syncproto.PhotoAccess{InScope: true, Referenced: true}},
		{syncproto.Actor{AllRegions: true}, strings.Repeat("c", 64), syncproto.PhotoAccess{}},
	} {
		got, err := s.PhotoAccess(ctx, c.actor, c.hash)
		if err != nil || got != c.want {
			t.Errorf("%v %s…: %+v %v, want %+v", c.actor.Scope, c.hash[:4], got, err, c.want)
		}
	}
}
