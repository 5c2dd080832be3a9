package api_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

const registryCSV = "registration_no,village,head_name,members,category\n" +
	"R1,500240107201,谭明华,4,低保户\n" +
	"R2,500240107201,冉秀英,3,registered_poor\n"

// multipartFile is a multipart/form-data body with data as its part "file".
func multipartFile(t *testing.T, name string, data []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func xlsxOf(t *testing.T, rows [][]any) []byte {
	t.Helper()
	book := excelize.NewFile()
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := book.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := book.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// registryContract exercises POST /v1/imports and GET
// /v1/reports/reconciliation for TestOpenAPIResponses.
func registryContract(t *testing.T, doc *openapi3.T, k *contract) {
	ts := apitest.MustServe(t)
	rk := newContract(t, ts, doc)
	ts.AddUser(t, "sup.bairin", syncproto.RoleSupervisor, "150422")
	ts.AddUser(t, "worker.xituo", syncproto.RoleFieldWorker, "500240107")
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	far := ts.Login(t, "sup.bairin", uuid.NewString())
	worker := ts.Login(t, "worker.xituo", uuid.NewString())
	const imports = "/v1/imports?source=poverty_registry"
	rk.call(t, apiCall{name: "import csv", method: "POST", path: imports, token: admin, contentType: "text/csv", body: []byte(registryCSV), status: 200})
	ct, body := multipartFile(t, "list.xlsx", xlsxOf(t, [][]any{{"户编号", "村", "户主姓名", "家庭人口"}, {"R1", "500240107201", "谭明华", 5}}))
	rk.call(t, apiCall{name: "import xlsx, multipart", method: "POST", path: imports, token: admin, contentType: ct, body: body, status: 200})
	ct, body = multipartImport(t, "own.csv", []byte(ownHeadersCSV), ownHeadersMapping, false)
	rk.call(t, apiCall{name: "import, multipart with a mapping", method: "POST", path: imports, token: admin, contentType: ct, body: body, status: 200})
	ct, body = multipartImport(t, "own.csv", []byte(ownHeadersCSV), `{"columns": {"农户编码": "household_no"}}`, false)
	rk.call(t, apiCall{name: "import, a bad mapping", method: "POST", path: imports, token: admin, contentType: ct, body: body, status: 422})
	rk.call(t, apiCall{name: "import, bad rows", method: "POST", path: imports, token: admin, contentType: "text/csv", body: []byte("registration_no,village,head_name\nR1,5002401,x\n"), status: 422})
	rk.call(t, apiCall{name: "import, outside the region", method: "POST", path: imports, token: far, contentType: "text/csv", body: []byte(registryCSV), status: 422})
	rk.call(t, apiCall{name: "import, field worker", method: "POST", path: imports, token: worker, contentType: "text/csv", body: []byte(registryCSV), status: 403})
	rk.call(t, apiCall{name: "import, unknown source", method: "POST", path: "/v1/imports?source=census", token: admin, contentType: "text/csv", body: []byte(registryCSV), status: 404})
	rk.call(t, apiCall{name: "import, unknown parameter", method: "POST", path: imports + "&format=csv", token: admin, contentType: "text/csv", body: []byte(registryCSV), status: 400, invalid: true})
	rk.call(t, apiCall{name: "import, multipart without a boundary", method: "POST", path: imports, token: admin, contentType: "multipart/form-data", body: []byte("x"), status: 400, invalid: true})
	rk.call(t, apiCall{name: "import without token", method: "POST", path: imports, contentType: "text/csv", body: []byte(registryCSV), status: 401})
	const rec = "/v1/reports/reconciliation"
	rk.call(t, apiCall{name: "reconciliation", method: "GET", path: rec, token: admin, status: 200})
	rk.call(t, apiCall{name: "reconciliation, a county, csv", method: "GET", path: rec + "?region=500240&format=csv&lang=zh", token: admin, status: 200})
	rk.call(t, apiCall{name: "reconciliation, xlsx", method: "GET", path: rec + "?format=xlsx&lang=en", token: admin, status: 200})
	rk.call(t, apiCall{name: "reconciliation, other county", method: "GET", path: rec + "?region=500240", token: far, status: 403})
	rk.call(t, apiCall{name: "reconciliation, bad format", method: "GET", path: rec + "?format=pdf", token: admin, status: 422, invalid: true})
	rk.call(t, apiCall{name: "reconciliation, unknown parameter", method: "GET", path: rec + "?county=1", token: admin, status: 400, invalid: true})
	rk.call(t, apiCall{name: "reconciliation without token", method: "GET", path: rec, status: 401})
	plain := newContract(t, mustServeV1(t, nil), doc)
	plain.call(t, apiCall{name: "reconciliation, no registries declared", method: "GET", path: rec, token: plain.ts.Login(t, "admin", apitest.AdminDevice), status: 404})
	for _, from := range []*contract{plain, rk} {
		for op, codes := range from.seen {
			if k.seen[op] == nil {
				k.seen[op] = map[int]bool{}
			}
			for code := range codes {
				k.seen[op][code] = true
			}
		}
	}
}

// An import is atomic: a file with bad rows imports nothing and names
// each bad row by line and column, never by its value; a supervisor's row
// outside their region is a bad row; the same file twice makes one
// version; a changed file gives its diff.
func TestImportIsAtomicAndVersioned(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup.bairin", syncproto.RoleSupervisor, "150422")
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	far := ts.Login(t, "sup.bairin", uuid.NewString())
	post := func(token, csv string) (int, map[string]any) {
		resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/imports?source=poverty_registry", "text/csv", []byte(csv))
		var out map[string]any
		json.Unmarshal(body, &out)
		return resp.StatusCode, out
	}
	bad := "户编号,村,户主姓名,家庭人口,户类型\n" +
		"R1,500240107201,谭明华,4,低保户\n" +
		"R2,50024010,冉秀英,三,贫困\n" +
		"R3,500240107201,,2,\n" +
		"R1,500240107201,谭明华,4,\n"
	code, p := post(admin, bad)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("bad rows: %d %v", code, p)
	}
	var paths []string
	for _, e := range p["errors"].([]any) {
		m := e.(map[string]any)
		paths = append(paths, m["path"].(string)+": "+m["message"].(string))
	}
	got := strings.Join(paths, "\n")
	for _, w := range []string{"line 3, column 2: village must be a 12-digit division code", "line 3, column 4: members must be a whole number",
		"line 3, column 5: category must be one of", "line 4, column 3: head_name is required", "line 5: its key is the key of line 2 too"} {
		if !strings.Contains(got, w) {
			t.Errorf("errors lack %q:\n%s", w, got)
		}
	}
	if p["detail"] != "3 bad rows: nothing of the file was imported" {
		t.Errorf("detail = %v", p["detail"])
	}
	for _, secret := range []string{"冉秀英", "三", "贫困\""} {
		if strings.Contains(got, secret) {
			t.Errorf("an error repeats the cell value %q:\n%s", secret, got)
		}
	}
	if imps, _ := ts.Store.RegistryImports(t.Context(), ""); len(imps) != 0 {
		t.Fatalf("a file with bad rows made imports %+v", imps)
	}
	code, p = post(far, registryCSV)
	if code != http.StatusUnprocessableEntity || !strings.Contains(mustString(p), "line 2, column 2") || !strings.Contains(mustString(p), "village lies outside your region") {
		t.Errorf("outside the region: %d %v", code, p)
	}
	if code, p = post(admin, registryCSV); code != 200 || p["version"] != 1.0 || p["added"] != 2.0 {
		t.Fatalf("first import: %d %v", code, p)
	}
	if code, p = post(admin, registryCSV); code != 200 || p["version"] != 1.0 || p["same"] != true {
		t.Fatalf("the same file again: %d %v", code, p)
	}
	changed := "registration_no,village,head_name,members\nR1,500240107201,谭明华,5\nR3,500240107201,秦良玉,2\n"
	if code, p = post(admin, changed); code != 200 || p["version"] != 2.0 || p["added"] != 1.0 || p["changed"] != 1.0 || p["removed"] != 1.0 {
		t.Fatalf("a changed file: %d %v", code, p)
	}
	diff, err := ts.Store.RegistryDiff(t.Context(), "poverty_registry", 2)
	if err != nil || len(diff) != 3 {
		t.Fatalf("diff = %+v, %v", diff, err)
	}
}

func mustString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A disagreement between a registry and the field record opens one
// cross-department conflict in the supervisors' queue (never two, and
// never one the record's value already settles), leaves the record as the
// team wrote it until a supervisor resolves it through the resolve path,
// and the resolution is a version of the record whose history names the
// conflict with both values; the reconciliation then lists it no more.
func TestRegistryDisagreementOpensAConflict(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	h := uuid.NewString()
	cs := apitest.ValidChangeset()
	cs.Changes = []syncproto.Change{{Entity: "household", ID: h, Op: "upsert", At: "2026-11-19T08:00:00Z",
		Fields: map[string]json.RawMessage{"village": json.RawMessage(`"500240107201"`), "head_name": json.RawMessage(`"谭明华"`),
			"registration_no": json.RawMessage(`"R1"`), "members": json.RawMessage(`4`)}}}
	if resp, body := ts.PushJSON(t, cs); resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	importCSV := func(csv string) syncproto.RegistryImport {
		t.Helper()
		resp, body := ts.DoAs(t, admin, http.MethodPost, "/v1/imports?source=poverty_registry", "text/csv", []byte(csv))
		if resp.StatusCode != 200 {
			t.Fatalf("import: %d %s", resp.StatusCode, body)
		}
		var imp syncproto.RegistryImport
		json.Unmarshal(body, &imp)
		return imp
	}
	if imp := importCSV("registration_no,village,head_name,members\nR1,500240107201,谭明华,5\n"); imp.ConflictsOpened != 1 {
		t.Fatalf("first import opened %d conflicts, want 1", imp.ConflictsOpened)
	}
	if imp := importCSV("registration_no,village,head_name,members\nR1,500240107201,谭明华,5\nR9,500240107201,秦良玉,2\n"); imp.ConflictsOpened != 0 {
		t.Fatalf("another file with the same disagreement opened %d conflicts, want none", imp.ConflictsOpened)
	}
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/conflicts?state=open", "", nil)
	var list struct {
		Conflicts []struct {
			ID       string          `json:"conflict_id"`
			Record   string          `json:"record_id"`
			Field    string          `json:"field"`
			Stored   json.RawMessage `json:"stored"`
			Incoming json.RawMessage `json:"incoming"`
			Device   string          `json:"device"`
			User     string          `json:"user"`
		} `json:"conflicts"`
	}
	json.Unmarshal(body, &list)
	if resp.StatusCode != 200 || len(list.Conflicts) != 1 {
		t.Fatalf("open conflicts: %d %s", resp.StatusCode, body)
	}
	c := list.Conflicts[0]
	if c.Record != h || c.Field != "members" || string(c.Stored) != "4" || string(c.Incoming) != "5" ||
		c.Device != "registry:poverty_registry" || c.User != "department:poverty_alleviation" {
		t.Fatalf("conflict = %+v", c)
	}
	rec, _ := ts.Store.Record(t.Context(), h)
	if string(rec.Fields["members"]) != "4" {
		t.Fatalf("the record's members = %s before any decision, want the team's 4", rec.Fields["members"])
	}
	resp, body = ts.DoAs(t, admin, http.MethodPost, "/v1/conflicts/"+c.ID+"/resolve", "application/json", []byte(`{"choose": "incoming", "note": "counted again"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	rec, _ = ts.Store.Record(t.Context(), h)
	if string(rec.Fields["members"]) != "5" {
		t.Fatalf("after the decision members = %s, want 5", rec.Fields["members"])
	}
	hist, _ := ts.Store.History(t.Context(), h)
	last := hist[len(hist)-1]
	if !slices.Contains(last.ConflictIDs, c.ID) || string(last.Changes["members"].Before) != "4" || string(last.Changes["members"].After) != "5" {
		t.Errorf("the decision's history entry = %+v", last)
	}
	resp, body = ts.DoAs(t, admin, http.MethodGet, "/v1/reports/reconciliation", "", nil)
	var r reconciliationBody
	json.Unmarshal(body, &r)
	if resp.StatusCode != 200 || r.Totals.Disagreements != 0 {
		t.Errorf("after the decision: %d disagreements: %s", r.Totals.Disagreements, body)
	}
	if imp := importCSV("registration_no,village,head_name,members\nR1,500240107201,谭明华,5\n"); imp.ConflictsOpened != 0 {
		t.Errorf("after the decision an import opened %d conflicts", imp.ConflictsOpened)
	}
}

// A user's department is recorded with each change they make: the
// record's history names it beside the user.
func TestChangeLogRecordsTheDepartment(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "edu.worker", syncproto.RoleFieldWorker, "500240107")
	u, err := ts.Store.User(t.Context(), "edu.worker")
	if err != nil || u == nil {
		t.Fatal(u, err)
	}
	u.Department = "education"
	if err := ts.Store.PutUser(t.Context(), *u); err != nil {
		t.Fatal(err)
	}
	device := uuid.NewString()
	token := ts.Login(t, "edu.worker", device)
	h := uuid.NewString()
	cs := apitest.ValidChangeset()
	cs.DeviceID = device
	cs.Changes = []syncproto.Change{{Entity: "household", ID: h, Op: "upsert", At: "2026-11-19T08:00:00Z",
		Fields: map[string]json.RawMessage{"village": json.RawMessage(`"500240107201"`), "head_name": json.RawMessage(`"谭明华"`)}}}
	resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/sync/push", "application/json", mustJSON(t, cs))
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.DoAs(t, ts.Login(t, "admin", apitest.AdminDevice), http.MethodGet, "/v1/records/household/"+h+"/history", "", nil)
	var hist struct {
		Versions []struct {
			User       string `json:"user"`
			Department string `json:"department"`
		} `json:"versions"`
	}
	json.Unmarshal(body, &hist)
	if resp.StatusCode != 200 || len(hist.Versions) != 1 || hist.Versions[0].User != "edu.worker" || hist.Versions[0].Department != "education" {
		t.Fatalf("history: %d %s", resp.StatusCode, body)
	}
}

// A row matching two households (the same head name in one village, no
// registration number that settles it) is listed as ambiguous with both,
// and matched to neither; a viewer sees a person source's identity-card
// keys masked, a supervisor whole.
func TestReconciliationListsAmbiguousMatchesAndMasksIdentities(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	ts.AddUser(t, "viewer.civil", syncproto.RoleViewer, "500240")
	viewer := ts.Login(t, "viewer.civil", uuid.NewString())
	a, b := uuid.NewString(), uuid.NewString()
	cs := apitest.ValidChangeset()
	household := func(id, regNo string) syncproto.Change {
		return syncproto.Change{Entity: "household", ID: id, Op: "upsert", At: "2026-11-19T08:00:00Z",
			Fields: map[string]json.RawMessage{"village": json.RawMessage(`"500240107201"`), "head_name": json.RawMessage(`"谭明华"`),
				"registration_no": json.RawMessage(`"` + regNo + `"`)}}
	}
	cs.Changes = []syncproto.Change{household(a, "RA"), household(b, "RB")}
	if resp, body := ts.PushJSON(t, cs); resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	for source, csv := range map[string]string{
		"poverty_registry":  "registration_no,village,head_name\nRX,500240107201,谭明华\n",
		"medical_insurance": "id_card,village,name,insured\n500240199001011234,500240107201,谭小明,是\n",
	} {
		if resp, body := ts.DoAs(t, admin, http.MethodPost, "/v1/imports?source="+source, "text/csv", []byte(csv)); resp.StatusCode != 200 {
			t.Fatalf("import %s: %d %s", source, resp.StatusCode, body)
		}
	}
	read := func(token string) reconciliationBody {
		t.Helper()
		resp, body := ts.DoAs(t, token, http.MethodGet, "/v1/reports/reconciliation?region=500240", "", nil)
		var r reconciliationBody
		if err := json.Unmarshal(body, &r); resp.StatusCode != 200 || err != nil {
			t.Fatalf("reconciliation: %d %s", resp.StatusCode, body)
		}
		return r
	}
	r := read(admin)
	if len(r.Villages) != 1 || len(r.Villages[0].Ambiguous) != 1 {
		t.Fatalf("report: %+v", r)
	}
	am := r.Villages[0].Ambiguous[0]
	want := []string{a, b}
	slices.Sort(want)
	if am.Source != "poverty_registry" || am.Key != "RX" || am.By != syncproto.MatchHeadName || !slices.Equal(am.Households, want) {
		t.Errorf("ambiguous = %+v, want RX by head name with %v", am, want)
	}
	keyOf := func(r reconciliationBody) string {
		for _, b := range r.Villages[0].BlindSpots {
			if b.Source == "medical_insurance" {
				return b.Key
			}
		}
		return ""
	}
	if k := keyOf(r); k != "500240199001011234" {
		t.Errorf("a supervisor's key = %q", k)
	}
	if k := keyOf(read(viewer)); k == "" || strings.Contains(k, "19900101") {
		t.Errorf("a viewer's key = %q, want it masked", k)
	}
}
