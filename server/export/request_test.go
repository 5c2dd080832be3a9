package export

import (
	"bufio"
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSnapshotRequestNamesTheParameters: a bad request is one EInvalid
// error whose paths are the parameters' own names (the API puts them under
// query., the command line turns them into flags), every bad one at once.
func TestSnapshotRequestNamesTheParameters(t *testing.T) {
	sch := schema.V1()
	codec := syncproto.NewCursorCodec([]byte("0123456789abcdef0123456789abcdef"))
	admin := syncproto.Actor{UserID: "a", Role: syncproto.RoleAdmin, AllRegions: true}
	for _, c := range []struct {
		name  string
		p     SnapshotParams
		paths []string
	}{
		{"csv without entity", SnapshotParams{Format: FormatCSV}, []string{"entity"}},
		{"unknown format and lang", SnapshotParams{Format: "pdf", Lang: "fr"}, []string{"lang", "format"}},
		{"geojson of inspections", SnapshotParams{Format: FormatGeoJSON, Entity: "water_inspection"}, []string{"entity"}},
		{"foreign cursor", SnapshotParams{Entity: "household", AsOf: "not-a-cursor"}, []string{"as_of"}},
	} {
		_, err := NewSnapshotRequest(sch, codec, admin, "", c.p)
		var se *syncproto.Error
		if !errors.As(err, &se) || se.Code != syncproto.EInvalid {
			t.Fatalf("%s: %v, want EInvalid", c.name, err)
		}
		var paths []string
		for _, fe := range se.Errors {
			paths = append(paths, fe.Path)
		}
		if !slices.Equal(paths, c.paths) {
			t.Errorf("%s: paths %v, want %v", c.name, paths, c.paths)
		}
	}
	req, err := NewSnapshotRequest(sch, codec, syncproto.Actor{Scope: []string{"500240107"}}, "", SnapshotParams{Format: FormatXLSX, Lang: "zh"})
	if err != nil || req.Lang != schema.LangZH || req.Entity != "" || req.FileName() != "fieldsync-snapshot-500240107.xlsx" {
		t.Fatalf("xlsx of every entity: %+v %v", req, err)
	}
}

// TestTableWriterCSVKeepsText: a CSV table starts with a byte-order mark
// and its header, keeps a long registration number text for spreadsheets
// (a leading tab) and leaves the rows of its other tables out.
func TestTableWriterCSVKeepsText(t *testing.T) {
	l := NewLabels(LangCodes, schema.V1())
	tables := []Table{
		{Key: "villages", Cols: []Column{l.Own("village", schema.TypeDivisionCode), l.FormField("household", "registration_no", schema.TypeText), l.Own("households", schema.TypeInteger)}},
		{Key: "areas", Cols: []Column{l.Own("area", schema.TypeText)}},
	}
	var buf bytes.Buffer
	tw, err := NewTableWriter(bufio.NewWriter(&buf), FormatCSV, l, tables, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	if err := tw.Row(0, "500240107201", "5002401072010001", 3); err != nil {
		t.Fatal(err)
	}
	if err := tw.Row(1, "not in this CSV"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Finish(); err != nil {
		t.Fatal(err)
	}
	want := "\uFEFFvillage,registration_no,households\r\n500240107201,\"\t5002401072010001\",3\r\n"
	if buf.String() != want || tw.CSVRows() != 1 {
		t.Fatalf("CSV %q (%d rows), want %q", buf.String(), tw.CSVRows(), want)
	}
}
