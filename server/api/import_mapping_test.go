package api_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// multipartImport is a multipart/form-data body with data as its part
// "file" and mapping (when not empty) as its part "mapping", the mapping
// first when mappingFirst.
func multipartImport(t *testing.T, name string, data []byte, mapping string, mappingFirst bool) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	writeMapping := func() {
		if mapping == "" {
			return
		}
		if err := w.WriteField("mapping", mapping); err != nil {
			t.Fatal(err)
		}
	}
	if mappingFirst {
		writeMapping()
	}
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	if !mappingFirst {
		writeMapping()
	}
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

// A county's own export: Chinese headers that no default mapping knows.
const ownHeadersCSV = "农户编码,所属村代码,户主名字,人口数,备注\n" +
	"R1,500240107201,谭明华,4,x\n" +
	"R2,500240107201,冉秀英,3,\n"

const ownHeadersMapping = `{"columns": {"农户编码": "registration_no", "所属村代码": "village", "户主名字": "head_name", "人口数": "members"}}`

// TestImportWithAnUploadedMapping: a file whose Chinese headers the
// source's default mapping does not know imports with a mapping uploaded
// beside it (the part "mapping", the JSON fieldsync import --mapping
// reads, before or after the file); without it the same file is refused.
func TestImportWithAnUploadedMapping(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	const imports = "/v1/imports?source=poverty_registry"
	ct, body := multipartImport(t, "own.csv", []byte(ownHeadersCSV), "", false)
	resp, out := ts.DoAs(t, admin, http.MethodPost, imports, ct, body)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(out), "no column maps to registration_no") {
		t.Fatalf("without a mapping: %d %s", resp.StatusCode, out)
	}
	ct, body = multipartImport(t, "own.csv", []byte(ownHeadersCSV), ownHeadersMapping, false)
	resp, out = ts.DoAs(t, admin, http.MethodPost, imports, ct, body)
	var imp struct {
		Version, Rows, Added int
		FileName             string `json:"file_name"`
	}
	if err := json.Unmarshal(out, &imp); resp.StatusCode != http.StatusOK || err != nil || imp.Version != 1 || imp.Rows != 2 || imp.Added != 2 || imp.FileName != "own.csv" {
		t.Fatalf("with a mapping: %d %s", resp.StatusCode, out)
	}
	rows := map[string]string{}
	if err := ts.Store.RegistryRows(t.Context(), syncproto.Actor{UserID: "admin", Role: syncproto.RoleAdmin, AllRegions: true}, func(r *syncproto.RegistryRow) error {
		rows[r.Key] = string(r.Fields["head_name"]) + " " + string(r.Fields["members"])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rows["R1"] != `"谭明华" 4` || rows["R2"] != `"冉秀英" 3` {
		t.Errorf("rows read by the mapping: %v", rows)
	}
	// The mapping before the file, on a changed file: the next version.
	ct, body = multipartImport(t, "own.csv", []byte(strings.Replace(ownHeadersCSV, ",4,", ",5,", 1)), ownHeadersMapping, true)
	resp, out = ts.DoAs(t, admin, http.MethodPost, imports, ct, body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"version":2`) || !strings.Contains(string(out), `"changed":1`) {
		t.Fatalf("mapping first: %d %s", resp.StatusCode, out)
	}
}

// TestImportRefusesABadMapping: every problem of an uploaded mapping is a
// problem document naming its path under body.mapping, and nothing is
// imported.
func TestImportRefusesABadMapping(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	for _, tc := range []struct {
		name, mapping string
		status        int
		paths         []string
	}{
		{"not JSON", `{"columns": `, 422, []string{"body.mapping"}},
		{"an array", `["农户编码"]`, 422, []string{"body.mapping"}},
		{"unknown member and no columns", `{"cols": {"农户编码": "registration_no"}}`, 422, []string{"body.mapping.cols", "body.mapping.columns"}},
		{"columns not an object", `{"columns": ["农户编码"]}`, 422, []string{"body.mapping.columns"}},
		{"a field that is no string", `{"columns": {"农户编码": 1, "所属村代码": "village"}}`, 422, []string{"body.mapping.columns.农户编码"}},
		{"a field the source lacks", `{"columns": {"农户编码": "household_no", "所属村代码": "village", "户主名字": "head_name", "人口数": "size"}}`, 422,
			[]string{"body.mapping.columns.人口数", "body.mapping.columns.农户编码"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := multipartImport(t, "own.csv", []byte(ownHeadersCSV), tc.mapping, false)
			resp, out := ts.DoAs(t, admin, http.MethodPost, "/v1/imports?source=poverty_registry", ct, body)
			var p struct {
				Detail string
				Errors []struct{ Path, Message string }
			}
			if err := json.Unmarshal(out, &p); err != nil || resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), out)
			}
			var paths []string
			for _, e := range p.Errors {
				paths = append(paths, e.Path)
			}
			if strings.Join(paths, " ") != strings.Join(tc.paths, " ") {
				t.Errorf("paths %v, want %v (%s)", paths, tc.paths, out)
			}
			if !strings.Contains(p.Detail, "nothing was imported") {
				t.Errorf("detail %q", p.Detail)
			}
		})
	}
	if imps, err := ts.Store.RegistryImports(t.Context(), ""); err != nil || len(imps) != 0 {
		t.Errorf("a bad mapping imported %+v (%v)", imps, err)
	}
}
