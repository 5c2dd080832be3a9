package server

import (
	"archive/zip"
	"bytes"
	"testing"
)

// TestSnapshotXLSXIsByteStable downloads the workbook of every entity at
// one as_of several times: the bytes must be the same each time, and its
// entries in name order (excelize alone wrote the streamed sheets in map
// order).
func TestSnapshotXLSXIsByteStable(t *testing.T) {
	ts := mustServe(t)
	admin := ts.login(t, "admin", adminDevice)
	pushSurvey(t, ts)
	resp, first := ts.snapshot(t, admin, "format=xlsx")
	asOf := resp.Header.Get(headerSnapshotCursor)
	pushSurvey(t, ts) // later changes: as_of must still give the same file
	for i := 0; i < 8; i++ {
		_, body := ts.snapshot(t, admin, "format=xlsx&as_of="+asOf)
		if i == 0 {
			first = body
			continue
		}
		if !bytes.Equal(body, first) {
			t.Fatalf("download %d differs from the first (%d and %d bytes)", i+1, len(body), len(first))
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(zr.File); i++ {
		if zr.File[i-1].Name >= zr.File[i].Name {
			t.Fatalf("entries out of order: %s before %s", zr.File[i-1].Name, zr.File[i].Name)
		}
	}
}
