package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// NorthHousing is a housing inspection valid in the north (it records
// heating and insulation) with photos.
func NorthHousing(id, household string, photos ...string) syncproto.Change {
	return storetest.Upsert("housing_inspection", id, 0, storetest.T0, map[string]any{"household_id": household,
		"grade": "D", "inspected_on": "2026-11-20", "heating_insulation": "inadequate", "photos": photos})
}

// SouthHousing is a housing inspection valid in the south with photos.
func SouthHousing(id, household string, photos ...string) syncproto.Change {
	ch := storetest.HousingInspection(id, household, "D", storetest.T0)
	b, _ := json.Marshal(photos)
	ch.Fields["photos"] = b
	return ch
}

// SeedDemo loads the demo data set through the push path, as `fieldsync
// seed` does.
func SeedDemo(tb testing.TB, ts *Server) {
	tb.Helper()
	ctx := context.Background()
	l := &fixtures.Loader{Service: ts.Push, Name: "demo", BatchSize: 500}
	if err := fixtures.Demo(func(ch syncproto.Change) error { return l.Add(ctx, ch) }); err != nil {
		tb.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
}

// TestPNG is a real PNG of noise (it does not compress), about 3·w·w bytes.
func TestPNG(t testing.TB, w int, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, w, w))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// StoredRecordPhotos are the photo digests the stored record id references.
func StoredRecordPhotos(t *testing.T, ts *Server, id string) []string {
	t.Helper()
	r, err := ts.Store.Record(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	_ = json.Unmarshal(r.Fields["photos"], &out)
	return out
}

// StoredGrade is the stored housing inspection's grade.
func StoredGrade(t *testing.T, ts *Server, id string) string {
	t.Helper()
	r, err := ts.Store.Record(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return string(r.Fields["grade"])
}
