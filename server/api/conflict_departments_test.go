package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// fieldWorkerOf adds a field worker of a department in the south village's
// township and logs them in on a new device.
func fieldWorkerOf(t *testing.T, ts *apitest.Server, name, department string) worker {
	t.Helper()
	ts.AddUser(t, name, syncproto.RoleFieldWorker, "500240107")
	u, err := ts.Store.User(t.Context(), name)
	if err != nil || u == nil {
		t.Fatal(u, err)
	}
	u.Department = department
	if err := ts.Store.PutUser(t.Context(), *u); err != nil {
		t.Fatal(err)
	}
	d := storetest.NewDevice(name)
	return worker{d, ts.Login(t, name, d.Actor.DeviceID)}
}

// worker is a field worker's device and token.
type worker struct {
	*storetest.Device
	token string
}

// TestConflictQueueNamesBothDepartments: two field workers of different
// departments edit one household's members from the same version; the
// conflict queue (JSON, CSV, XLSX) names the incoming side's department
// and the stored value's.
func TestConflictQueueNamesBothDepartments(t *testing.T) {
	ts := apitest.MustServe(t)
	edu := fieldWorkerOf(t, ts, "edu.worker", "education")
	civ := fieldWorkerOf(t, ts, "civil.worker", "civil_affairs")
	push := func(d worker, ch syncproto.Change) {
		t.Helper()
		resp, body := ts.DoAs(t, d.token, http.MethodPost, "/v1/sync/push", "application/json", mustJSON(t, d.Changeset(ch)))
		if resp.StatusCode != 200 {
			t.Fatalf("push: %d %s", resp.StatusCode, body)
		}
	}
	h := uuid.NewString()
	push(edu, storetest.Household(h, storetest.SouthVillage, storetest.T0))
	push(edu, storetest.Upsert("household", h, 1, storetest.T0.Add(time.Minute), map[string]any{"members": 6}))
	push(civ, storetest.Upsert("household", h, 1, storetest.T0.Add(2*time.Minute), map[string]any{"members": 7}))

	admin := ts.Login(t, "admin", apitest.AdminDevice)
	var queue struct {
		Conflicts []struct {
			Field            string `json:"field"`
			User             string `json:"user"`
			Department       string `json:"department"`
			StoredDepartment string `json:"stored_department"`
		} `json:"conflicts"`
	}
	getReport(t, ts, admin, "/v1/conflicts?state=open", &queue)
	if len(queue.Conflicts) != 1 {
		t.Fatalf("conflicts %+v, want one", queue.Conflicts)
	}
	if c := queue.Conflicts[0]; c.Field != "members" || c.User != "civil.worker" || c.Department != "civil_affairs" || c.StoredDepartment != "education" {
		t.Fatalf("conflict %+v: want the incoming side civil_affairs, the stored education", c)
	}
	rows := csvTable(t, getTable(t, ts, admin, "/v1/conflicts?format=csv&state=open", export.FormatCSV, ""))
	if len(rows) != 2 {
		t.Fatalf("CSV rows %q", rows)
	}
	if in, st := rows[1][column(t, rows[0], "department")], rows[1][column(t, rows[0], "stored_department")]; in != "civil_affairs" || st != "education" {
		t.Errorf("CSV departments %q, %q", in, st)
	}
	_, sheets, _ := xlsxSheets(t, getTable(t, ts, admin, "/v1/conflicts?format=xlsx&state=open", export.FormatXLSX, ""))
	if x := sheets["conflicts"]; len(x) != 2 || x[1][column(t, x[0], "department")] != "civil_affairs" ||
		x[1][column(t, x[0], "stored_department")] != "education" {
		t.Errorf("XLSX conflicts %q", x)
	}
}
