package console_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// postImport posts the console's import form as a browser does:
// multipart, the session's CSRF token (csrf: the token sent), the source,
// the file and, when not empty, a mapping file.
func (v *visitor) postImport(csrf, source, name string, file []byte, mapping string) (*http.Response, string) {
	v.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.WriteField("csrf", csrf)
	w.WriteField("source", source)
	part, _ := w.CreateFormFile("file", name)
	part.Write(file)
	if mapping != "" {
		mp, _ := w.CreateFormFile("mapping", "mapping.json")
		io.WriteString(mp, mapping)
	}
	w.Close()
	req, err := http.NewRequest(http.MethodPost, v.ts.URL+"/console/imports", &b)
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := v.http.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(body)); m != nil {
		v.csrf = m[1]
	}
	return resp, string(body)
}

// shown is the number a page shows in the element with the id.
func shown(body, id string) string {
	i := strings.Index(body, `id="`+id+`">`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(`id="`+id+`">`):]
	return rest[:strings.IndexByte(rest, '<')]
}

// TestImportScreen: a supervisor picks a source (labelled) and uploads a
// file with its own Chinese headers and a mapping file; the screen shows
// the rows read and the diff against the source's last import, a changed
// file its added, changed and removed rows, and a file with bad rows every
// bad row by line and column with "nothing was imported" — through the
// same import as POST /v1/imports (the store holds exactly the versions
// the screen reported, by the supervisor). Past imports are listed per
// source. Without the CSRF token nothing is imported; a field worker and
// a viewer get no screen and no nav entry.
func TestImportScreen(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "dept", syncproto.RoleViewer, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	resp, body := v.do("GET", "/console/imports", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `enctype="multipart/form-data"`) ||
		!strings.Contains(body, `<option value="poverty_registry">全国防返贫监测信息系统（建档立卡）`) || !strings.Contains(body, `<option value="disability">残疾人证信息`) {
		t.Fatalf("import page: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `href="/console/imports" aria-current="page"`) {
		t.Error("the nav has no current imports entry")
	}
	const mapping = `{"columns": {"农户编码": "registration_no", "所属村代码": "village", "户主名字": "head_name", "人口数": "members"}}`
	first := "农户编码,所属村代码,户主名字,人口数\nR1,500240107201,谭明华,4\nR2,500240107201,冉秀英,3\n"
	resp, body = v.postImport(v.csrf, "poverty_registry", "县里导出.csv", []byte(first), mapping)
	if resp.StatusCode != http.StatusOK || shown(body, "imp-rows") != "2" || shown(body, "imp-added") != "2" || shown(body, "imp-changed") != "0" {
		t.Fatalf("first import: %d rows %q added %q\n%s", resp.StatusCode, shown(body, "imp-rows"), shown(body, "imp-added"), body)
	}
	second := "农户编码,所属村代码,户主名字,人口数\nR1,500240107201,谭明华,5\nR3,500240107201,秦良玉,2\n"
	resp, body = v.postImport(v.csrf, "poverty_registry", "县里导出2.csv", []byte(second), mapping)
	if resp.StatusCode != http.StatusOK || shown(body, "imp-rows") != "2" || shown(body, "imp-added") != "1" || shown(body, "imp-changed") != "1" || shown(body, "imp-removed") != "1" {
		t.Fatalf("second import: %d\n%s", resp.StatusCode, body)
	}
	for _, past := range []string{"<td>县里导出.csv</td>", "<td>县里导出2.csv</td>"} {
		if !strings.Contains(body, past) {
			t.Errorf("the past imports lack %s", past)
		}
	}
	bad := "户编号,村,户主姓名,家庭人口\nR1,500240107201,谭明华,4\nR2,500240107201,冉秀英,四\nR4,5002401,秦良玉,2\n"
	resp, body = v.postImport(v.csrf, "poverty_registry", "bad.csv", []byte(bad), "")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "没有导入任何内容") ||
		!strings.Contains(body, "2 bad rows: nothing of the file was imported") ||
		!strings.Contains(body, `<th scope="row">line 3, column 4</th><td>members must be a whole number</td>`) ||
		!strings.Contains(body, `<th scope="row">line 4, column 2</th><td>village must be a 12-digit division code</td>`) {
		t.Fatalf("bad rows: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, "冉秀英") {
		t.Error("the refusal repeats a cell of the file")
	}
	resp, body = v.postImport(v.csrf, "poverty_registry", "own.csv", []byte(first), `{"columns": {"农户编码": "household_no"}}`)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `<th scope="row">mapping.columns.农户编码</th>`) {
		t.Fatalf("a bad mapping: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ = v.postImport("", "poverty_registry", "other.csv", []byte("registration_no,village,head_name\nR9,500240107201,x\n"), ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d", resp.StatusCode)
	}
	imps, err := ts.Store.RegistryImports(t.Context(), "")
	if err != nil || len(imps) != 2 || imps[1].Version != 2 || imps[1].ImportedBy != "sup" || imps[1].FileName != "县里导出2.csv" ||
		imps[1].Added != 1 || imps[1].Changed != 1 || imps[1].Removed != 1 {
		t.Fatalf("imports stored: %+v %v", imps, err)
	}
	for _, who := range []string{"worker", "dept"} {
		o := newVisitor(t, ts)
		o.signIn(who, nil)
		if resp, _ := o.do("GET", "/console/imports", nil, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s opens the import screen: %d", who, resp.StatusCode)
		}
		if _, page := o.do("GET", "/console/devices", nil, nil); strings.Contains(page, `href="/console/imports"`) {
			t.Errorf("%s's nav offers the import screen", who)
		}
		if resp, _ := o.postImport(o.csrf, "poverty_registry", "x.csv", []byte(first), mapping); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s imports: %d", who, resp.StatusCode)
		}
	}
	if imps, _ := ts.Store.RegistryImports(t.Context(), ""); len(imps) != 2 {
		t.Errorf("%d imports after the refused posts", len(imps))
	}
}
