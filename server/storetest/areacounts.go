package storetest

import (
	"database/sql"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// PushAreaFixture pushes 12 households over three villages (two of one
// township, one of another county), three in four with a water
// inspection: the writes a store's test of its area sums' migration keeps
// sums of (4 township and county rows, 3 village rows).
func PushAreaFixture(t testing.TB, p *syncproto.PushService) {
	t.Helper()
	d := NewDevice("admin")
	for i := 0; i < 12; i++ {
		hh := uuid.NewString()
		village := []string{SouthVillage, "500240107202", NorthVillage}[i%3]
		changes := []syncproto.Change{Household(hh, village, T0)}
		if i%4 != 0 {
			changes = append(changes, WaterInspection(uuid.NewString(), hh, T0))
		}
		d.Push(t, p, changes...)
	}
}

// CountRow is one row of a store's sums as a migration test compares
// them: the area, its counters decoded, and two integer columns.
type CountRow struct {
	Area   string
	Counts map[string]int
	Extra  [2]int64
}

// ReadCountRows reads the rows of query (area, counters' JSON, two
// integers) from db, failing the test on any error.
func ReadCountRows(t testing.TB, db *sql.DB, query string) []CountRow {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []CountRow
	for rows.Next() {
		var r CountRow
		var doc string
		if err := rows.Scan(&r.Area, &doc, &r.Extra[0], &r.Extra[1]); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(doc), &r.Counts); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
