package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSnapshotIsOnePointInTime takes snapshots while another goroutine
// pushes change sets without pause. Each change set adds three households
// and names itself in a counter household, so a snapshot must hold, for the
// change set the counter names, that one and every earlier one whole and no
// later one; and the same records and versions as the state rebuilt later
// at its cursor.
func TestSnapshotIsOnePointInTime(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup.south", syncproto.RoleSupervisor, "500240")
	sup := ts.Login(t, "sup.south", uuid.NewString())
	dev := storetest.NewDevice("admin")
	counter := uuid.NewString()
	base := []syncproto.Change{storetest.Upsert("household", counter, 0, storetest.T0,
		map[string]any{"village": storetest.SouthVillage, "head_name": "batch-0"})}
	for i := 0; i < 50; i++ {
		base = append(base, storetest.Upsert("household", uuid.NewString(), 0, storetest.T0,
			map[string]any{"village": storetest.SouthVillage, "head_name": fmt.Sprintf("基础户%d", i)}))
	}
	ts.MustPush(t, dev.Changeset(base...))

	token := ts.Login(t, "admin", dev.Actor.DeviceID)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var pushed int
	var pushErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= 500; i++ {
			select {
			case <-stop:
				return
			default:
			}
			changes := []syncproto.Change{storetest.Upsert("household", counter, 1, storetest.T0,
				map[string]any{"head_name": fmt.Sprintf("batch-%d", i)})}
			for k := 0; k < 3; k++ {
				changes = append(changes, storetest.Upsert("household", uuid.NewString(), 0, storetest.T0,
					map[string]any{"village": storetest.SouthVillage, "head_name": fmt.Sprintf("户%d-%d", i, k),
						"registration_no": fmt.Sprintf("B%04d-%d", i, k)}))
			}
			b, _ := json.Marshal(dev.Changeset(changes...))
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/sync/push", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := ts.Client().Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("push %d: status %d", i, resp.StatusCode)
				}
			}
			if err != nil {
				pushErr = err
				return
			}
			pushed = i
		}
	}()

	type taken struct {
		cursor  string
		records map[string]syncproto.Record
	}
	var snaps []taken
	for len(snaps) < 8 {
		resp, body := ts.Snapshot(t, sup, "entity=household")
		snaps = append(snaps, taken{resp.Header.Get("X-Snapshot-Cursor"), apitest.NDJSONRecords(t, body)})
		time.Sleep(15 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if pushErr != nil {
		t.Fatal(pushErr)
	}

	points := map[string]bool{}
	for _, sn := range snaps {
		var last int
		if _, err := fmt.Sscanf(string(sn.records[counter].Fields["head_name"]), `"batch-%d"`, &last); err != nil {
			t.Fatalf("counter %s: %v", sn.records[counter].Fields["head_name"], err)
		}
		perBatch := map[int]int{}
		for _, r := range sn.records {
			var i, k int
			if _, err := fmt.Sscanf(string(r.Fields["registration_no"]), `"B%04d-%d"`, &i, &k); err == nil {
				perBatch[i]++
			}
		}
		for i, n := range perBatch {
			if n != 3 || i > last {
				t.Fatalf("snapshot at %s (counter batch %d) holds %d households of change set %d", sn.cursor, last, n, i)
			}
		}
		if len(perBatch) != last || len(sn.records) != 51+3*last {
			t.Fatalf("snapshot at batch %d: %d change sets, %d records", last, len(perBatch), len(sn.records))
		}
		points[sn.cursor] = true

		// The state rebuilt at the cursor from the change log is the same.
		resp, body := ts.Snapshot(t, sup, "entity=household&as_of="+url.QueryEscape(sn.cursor))
		if got := resp.Header.Get("X-Snapshot-Cursor"); got != sn.cursor {
			t.Fatalf("as_of answered at %s, want %s", got, sn.cursor)
		}
		rebuilt := apitest.NDJSONRecords(t, body)
		if len(rebuilt) != len(sn.records) {
			t.Fatalf("at %s: %d records then, %d rebuilt", sn.cursor, len(sn.records), len(rebuilt))
		}
		for id, r := range sn.records {
			if rb := rebuilt[id]; rb.Version != r.Version || string(rb.Fields["head_name"]) != string(r.Fields["head_name"]) {
				t.Fatalf("record %s at %s: %+v then, %+v rebuilt", id, sn.cursor, r, rb)
			}
		}
	}
	if len(points) < 2 || pushed == 0 {
		t.Fatalf("the snapshots saw %d points while %d change sets were pushed", len(points), pushed)
	}
	// At rest, a snapshot holds what a pull of everything holds.
	_, body := ts.Snapshot(t, sup, "entity=household")
	pulled, _ := storetest.PullAll(t, ts.Store, syncproto.Actor{Scope: []string{"500240"}}, syncproto.Cursor{}, 500)
	if got := apitest.NDJSONRecords(t, body); len(got) != len(pulled) || len(got) != 51+3*pushed {
		t.Fatalf("snapshot %d records, pull %d, pushed %d change sets", len(got), len(pulled), pushed)
	}
}

// surveyFixture is a small survey with Chinese names, every field type and
// the cases of the GeoJSON properties.
type surveyFixture struct {
	tan, wang, noLocation, north  string // households
	housingOld, housingNew, water string // of tan
	northWater                    string
}

func pushSurvey(t *testing.T, ts *apitest.Server) surveyFixture {
	t.Helper()
	f := surveyFixture{tan: uuid.NewString(), wang: uuid.NewString(), noLocation: uuid.NewString(), north: uuid.NewString(),
		housingOld: uuid.NewString(), housingNew: uuid.NewString(), water: uuid.NewString(), northWater: uuid.NewString()}
	day1, day2 := storetest.T0, storetest.T0.Add(72*time.Hour)
	dev := storetest.NewDevice("admin")
	ts.MustPush(t, dev.Changeset(
		storetest.Upsert("household", f.tan, 0, day1, map[string]any{"village": storetest.SouthVillage,
			"head_name": "谭明华", "members": 4, "category": "registered_poor", "status": "in_poverty",
			"location": map[string]float64{"lat": 29.95, "lon": 108.12}}),
		storetest.Upsert("household", f.wang, 0, day1, map[string]any{"village": "500240107202",
			"head_name": `王, "小" 明`, "registration_no": "=HYPERLINK(\"http://x\")", "status": "lifted_out",
			"location": map[string]float64{"lat": 29.5, "lon": 108.5}}),
		storetest.Upsert("household", f.noLocation, 0, day1, map[string]any{"village": storetest.SouthVillage,
			"head_name": "陈秀英"}),
		storetest.Upsert("household", f.north, 0, day1, map[string]any{"village": storetest.NorthVillage,
			"head_name": "巴特尔", "location": map[string]float64{"lat": 43.98, "lon": 119.38}}),
		// The later visit first: "latest" goes by the inspection date.
		storetest.Upsert("housing_inspection", f.housingNew, 0, day2, map[string]any{"household_id": f.tan,
			"inspected_on": "2026-11-21", "grade": "B", "ventilation": "adequate", "renovation": "verified"}),
		storetest.Upsert("housing_inspection", f.housingOld, 0, day1, map[string]any{"household_id": f.tan,
			"inspected_on": "2026-11-20", "grade": "D", "ventilation": "inadequate", "hazards": []string{"walls", "roof"},
			"renovation": "planned"}),
		storetest.Upsert("water_inspection", f.water, 0, day1, map[string]any{"household_id": f.tan,
			"inspected_on": "2026-11-20", "source": "well", "quality_ok": false, "liters_per_person_day": 35.5,
			"fetch_minutes": 25, "reliability_pct": 95}),
		// 45 litres meet the arid regions' 40.
		storetest.Upsert("water_inspection", f.northWater, 0, day1, map[string]any{"household_id": f.north,
			"inspected_on": "2026-11-20", "source": "trucked", "quality_ok": true, "liters_per_person_day": 45,
			"fetch_minutes": 5, "reliability_pct": 95}),
	))
	return f
}

// readCSV checks the BOM and parses a CSV body into its header and rows by
// id.
func readCSV(t *testing.T, body []byte) ([]string, map[string]map[string]string) {
	t.Helper()
	if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		t.Fatalf("CSV without a UTF-8 BOM: %q", body[:min(len(body), 20)])
	}
	all, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, body)
	}
	rows := map[string]map[string]string{}
	for _, rec := range all[1:] {
		row := map[string]string{}
		for i, name := range all[0] {
			// A text value that looks like a number starts with a tab
			// (keepText), which a reader strips.
			row[name] = strings.TrimPrefix(rec[i], "\t")
		}
		rows[row["id"]] = row
	}
	return all[0], rows
}

func TestSnapshotCSV(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup.south", syncproto.RoleSupervisor, "500240")
	sup := ts.Login(t, "sup.south", uuid.NewString())
	f := pushSurvey(t, ts)

	resp, body := ts.Snapshot(t, sup, "region=500240&entity=household&format=csv")
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="fieldsync-household-500240.csv"` {
		t.Fatalf("content disposition %q", cd)
	}
	header, rows := readCSV(t, body)
	want := "id,version,updated_at,updated_by,village,head_name,registration_no,members,categories,status,location_lat,location_lon," +
		"food_assured,clothing_assured,food_clothing_checked,income_per_person,income_year,status_note"
	if strings.Join(header, ",") != want {
		t.Fatalf("header %v", header)
	}
	if len(rows) != 3 {
		t.Fatalf("%d households in 500240: %v", len(rows), rows)
	}
	tan := rows[f.tan]
	for k, v := range map[string]string{"version": "1", "updated_by": "admin", "updated_at": "2026-11-20T08:00:00.000Z",
		"village": storetest.SouthVillage, "head_name": "谭明华", "registration_no": "", "members": "4",
		"categories": "registered_poor", "status": "in_poverty", "location_lat": "29.95", "location_lon": "108.12"} {
		if tan[k] != v {
			t.Errorf("tan.%s = %q, want %q", k, tan[k], v)
		}
	}
	wang := rows[f.wang]
	if wang["head_name"] != `王, "小" 明` || wang["registration_no"] != `'=HYPERLINK("http://x")` || wang["members"] != "" {
		t.Errorf("wang %v", wang)
	}

	_, body = ts.Snapshot(t, sup, "entity=housing_inspection&format=csv")
	_, rows = readCSV(t, body)
	if old := rows[f.housingOld]; old["hazards"] != "roof;walls" || old["grade"] != "D" || old["household_id"] != f.tan ||
		old["photos"] != "" || old["heating_insulation"] != "" {
		t.Errorf("housing inspection %v", old)
	}
	_, body = ts.Snapshot(t, sup, "entity=water_inspection&format=csv")
	_, rows = readCSV(t, body)
	if w := rows[f.water]; w["quality_ok"] != "false" || w["liters_per_person_day"] != "35.5" || w["fetch_minutes"] != "25" ||
		w["source"] != "well" || len(rows) != 1 {
		t.Errorf("water inspections %v", rows)
	}
}

type featureCollection struct {
	Type     string `json:"type"`
	Features []struct {
		Type     string `json:"type"`
		ID       string `json:"id"`
		Geometry *struct {
			Type        string     `json:"type"`
			Coordinates [2]float64 `json:"coordinates"`
		} `json:"geometry"`
		Properties map[string]any `json:"properties"`
	} `json:"features"`
}

func geojsonFeatures(t *testing.T, body []byte) (featureCollection, map[string]map[string]any) {
	t.Helper()
	var fc featureCollection
	if err := json.Unmarshal(body, &fc); err != nil || fc.Type != "FeatureCollection" {
		t.Fatalf("not a FeatureCollection (%v): %s", err, body)
	}
	props := map[string]map[string]any{}
	for _, ft := range fc.Features {
		if ft.Type != "Feature" || (ft.Geometry != nil && ft.Geometry.Type != "Point") || ft.ID != ft.Properties["id"] {
			t.Fatalf("feature %+v", ft)
		}
		props[ft.ID] = ft.Properties
	}
	return fc, props
}

func TestSnapshotGeoJSON(t *testing.T) {
	ts := mustServeV1(t, nil) // version 1's water indicators
	f := pushSurvey(t, ts)
	resp, body := ts.Snapshot(t, ts.Login(t, "admin", apitest.AdminDevice), "format=geojson")
	if ct := resp.Header.Get("Content-Type"); ct != "application/geo+json" {
		t.Fatalf("content type %q", ct)
	}
	fc, props := geojsonFeatures(t, body)
	if len(fc.Features) != 4 || props[f.noLocation] == nil || props[f.noLocation]["head_name"] != "陈秀英" {
		t.Fatalf("features %v", props)
	}
	for _, ft := range fc.Features {
		if ft.ID == f.tan && ft.Geometry.Coordinates != [2]float64{108.12, 29.95} {
			t.Fatalf("coordinates %v, want [lon, lat]", ft.Geometry.Coordinates)
		}
		if (ft.ID == f.noLocation) != (ft.Geometry == nil) {
			t.Fatalf("feature %s: geometry %v; only the household without a location has none", ft.ID, ft.Geometry)
		}
	}
	if !bytes.Contains(body, []byte(`"geometry":null`)) {
		t.Fatalf("no null geometry written: %s", body)
	}
	if n := resp.Trailer.Get("X-Households-Without-Location"); n != "1" {
		t.Fatalf("trailer %s = %q, want 1", "X-Households-Without-Location", n)
	}
	tan := props[f.tan]
	failures, _ := json.Marshal(tan["water_failures"])
	if tan["housing_grade"] != "B" || tan["housing_renovation"] != "verified" || tan["water_safe"] != false ||
		string(failures) != `["fetch_minutes","liters_per_person_day","quality_ok"]` || tan["head_name"] != "谭明华" ||
		tan["members"] != 4.0 || tan["village"] != storetest.SouthVillage || tan["registration_no"] != nil {
		t.Fatalf("properties of tan %v", tan)
	}
	if wang := props[f.wang]; wang["housing_grade"] != nil || wang["water_safe"] != nil || wang["status"] != "lifted_out" {
		t.Fatalf("properties of a household never inspected %v", wang)
	}
	if north := props[f.north]; north["water_safe"] != true || len(north["water_failures"].([]any)) != 0 {
		t.Fatalf("properties of the northern household %v", north)
	}
}

func TestSnapshotXLSX(t *testing.T) {
	ts := mustServeV1(t, nil) // version 1's water fields
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	pushSurvey(t, ts)
	resp, body := ts.Snapshot(t, admin, "format=xlsx")
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="fieldsync-snapshot-all.xlsx"` {
		t.Fatalf("content disposition %q", cd)
	}
	book, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the workbook does not open: %v", err)
	}
	defer book.Close()
	// No sheet may claim the used range is A1: readers that trust the
	// dimension (openpyxl read-only) would show an empty sheet.
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "xl/worksheets/") {
			rc, _ := zf.Open()
			xml, _ := io.ReadAll(rc)
			rc.Close()
			if bytes.Contains(xml, []byte(`<dimension ref="A1"`)) {
				t.Fatalf("%s declares its used range as A1", zf.Name)
			}
		}
	}
	entities := []string{"household", "housing_inspection", "water_inspection"}
	if got := book.GetSheetList(); strings.Join(got, ",") != strings.Join(entities, ",") {
		t.Fatalf("sheets %v", got)
	}
	for _, entity := range entities {
		_, csvBody := ts.Snapshot(t, admin, "format=csv&entity="+entity)
		header, want := readCSV(t, csvBody)
		rows, err := book.GetRows(entity)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != strings.Join(header, ",") || len(rows)-1 != len(want) {
			t.Fatalf("%s: header %v, %d rows; CSV %v, %d rows", entity, rows[0], len(rows)-1, header, len(want))
		}
		for _, row := range rows[1:] {
			w := want[row[0]]
			for i, name := range header {
				got := ""
				if i < len(row) {
					got = row[i]
				}
				if got == "TRUE" || got == "FALSE" {
					got = strings.ToLower(got)
				}
				if strings.HasPrefix(got, "=") {
					got = "'" + got // the CSV defuses formulas; a sheet's text cell needs not
				}
				if got != w[name] {
					t.Errorf("%s %s.%s: sheet %q, CSV %q", entity, row[0], name, got, w[name])
				}
			}
		}
	}
	_, body = ts.Snapshot(t, admin, "format=xlsx&entity=water_inspection&region=150422")
	if book, err = excelize.OpenReader(bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	rows, _ := book.GetRows("water_inspection")
	if sheets := book.GetSheetList(); len(sheets) != 1 || len(rows) != 2 || rows[1][10] != "45" {
		t.Fatalf("one sheet of the north's water inspections: %v %v", sheets, rows)
	}
}

// TestSnapshotAsOf reads the state at an earlier cursor: a grade before
// its edit, a household created later absent, in every format.
func TestSnapshotAsOf(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	f := pushSurvey(t, ts)
	resp, _ := ts.Snapshot(t, admin, "entity=household")
	before := resp.Header.Get("X-Snapshot-Cursor")

	ts.Clock.Advance(time.Minute)
	later := uuid.NewString()
	dev := storetest.NewDevice("admin")
	ts.MustPush(t, dev.Changeset(
		storetest.Upsert("housing_inspection", f.housingNew, 1, storetest.T0.Add(time.Hour), map[string]any{"grade": "C"}),
		storetest.Upsert("household", later, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage,
			"head_name": "新户", "location": map[string]float64{"lat": 29, "lon": 108}})))
	ts.MustPush(t, dev.Changeset(storetest.Delete("water_inspection", f.water, 1, storetest.T0.Add(time.Hour))))

	asOf := "&as_of=" + url.QueryEscape(before)
	resp, body := ts.Snapshot(t, admin, "entity=housing_inspection"+asOf)
	if got := resp.Header.Get("X-Snapshot-Cursor"); got != before {
		t.Fatalf("X-Snapshot-Cursor %s, want the as_of cursor %s", got, before)
	}
	if r := apitest.NDJSONRecords(t, body)[f.housingNew]; string(r.Fields["grade"]) != `"B"` || r.Version != 1 ||
		r.UpdatedAt != "2026-11-20T08:00:00.000Z" {
		t.Fatalf("inspection as of the cursor %+v", r)
	}
	_, body = ts.Snapshot(t, admin, "entity=household"+asOf)
	if got := apitest.NDJSONRecords(t, body); len(got) != 4 || got[later].ID != "" {
		t.Fatalf("households as of the cursor %v", got)
	}
	_, body = ts.Snapshot(t, admin, "format=geojson"+asOf)
	_, props := geojsonFeatures(t, body)
	if tan := props[f.tan]; len(props) != 4 || tan["housing_grade"] != "B" || tan["water_safe"] != false {
		t.Fatalf("GeoJSON as of the cursor %v", props)
	}
	_, body = ts.Snapshot(t, admin, "format=csv&entity=water_inspection"+asOf)
	if _, rows := readCSV(t, body); len(rows) != 2 {
		t.Fatalf("water inspections as of the cursor: %v", rows)
	}
	// Now: the new grade, the new household, the water inspection deleted.
	_, body = ts.Snapshot(t, admin, "format=geojson")
	_, props = geojsonFeatures(t, body)
	if tan := props[f.tan]; len(props) != 5 || tan["housing_grade"] != "C" || tan["water_safe"] != nil {
		t.Fatalf("GeoJSON now %v", props)
	}
}

func TestSnapshotScope(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker.south", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup.south", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "sup.north", syncproto.RoleSupervisor, "150422")
	f := pushSurvey(t, ts)
	worker := ts.Login(t, "worker.south", uuid.NewString())
	supSouth := ts.Login(t, "sup.south", uuid.NewString())
	supNorth := ts.Login(t, "sup.north", uuid.NewString())

	for _, q := range []string{"entity=household", "region=500240107&entity=household&format=csv", "format=geojson", "format=xlsx"} {
		resp, b := ts.DoAs(t, worker, http.MethodGet, "/v1/snapshot?"+q, "", nil)
		apitest.MustProblem(t, resp, b, http.StatusForbidden)
	}
	for _, q := range []string{"region=500240&entity=household", "region=50&format=geojson", "region=500240107201&format=xlsx"} {
		resp, b := ts.DoAs(t, supNorth, http.MethodGet, "/v1/snapshot?"+q, "", nil)
		if p := apitest.MustProblem(t, resp, b, http.StatusForbidden); p.Errors[0].Path != "query.region" {
			t.Fatalf("%s: %s", q, b)
		}
	}
	resp, body := ts.Snapshot(t, supNorth, "format=csv&entity=household")
	if _, rows := readCSV(t, body); len(rows) != 1 || rows[f.north] == nil {
		t.Fatalf("the northern supervisor's snapshot holds %v", rows)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "fieldsync-household-150422.csv") {
		t.Fatalf("content disposition %q", cd)
	}
	_, body = ts.Snapshot(t, supSouth, "region=500240107&entity=household")
	if got := apitest.NDJSONRecords(t, body); len(got) != 3 || got[f.north].ID != "" {
		t.Fatalf("the southern supervisor's township snapshot holds %v", got)
	}
}

func TestSnapshotBadRequests(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	pushSurvey(t, ts)
	ahead := ts.Push.Cursors().Encode(syncproto.Cursor{Seq: 1_000_000})
	tests := []struct {
		name, query string
		status      int
		path        string
	}{
		{"unknown format", "entity=household&format=pdf", 422, "query.format"},
		{"unknown entity", "entity=school", 422, "query.entity"},
		{"ndjson without entity", "", 422, "query.entity"},
		{"csv without entity", "format=csv", 422, "query.entity"},
		{"geojson of inspections", "format=geojson&entity=water_inspection", 422, "query.entity"},
		{"xlsx of an unknown entity", "format=xlsx&entity=school", 422, "query.entity"},
		{"unknown parameter", "entity=household&limit=5", 400, "query.limit"},
		{"repeated parameter", "entity=household&format=csv&format=ndjson", 400, "query.format"},
		{"forged as_of", "entity=household&as_of=fs1.forged", 422, "query.as_of"},
		{"as_of ahead of the server", "entity=household&as_of=" + url.QueryEscape(ahead), 422, "query.as_of"},
		{"malformed region", "entity=household&region=50x", 422, "query.region"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := ts.DoAs(t, admin, http.MethodGet, "/v1/snapshot?"+tc.query, "", nil)
			p := apitest.MustProblem(t, resp, b, tc.status)
			paths := []string{}
			for _, e := range p.Errors {
				paths = append(paths, e.Path)
			}
			sort.Strings(paths)
			if len(paths) == 0 || paths[0] != tc.path {
				t.Fatalf("paths %v, want %s: %s", paths, tc.path, b)
			}
			if resp.Header.Get("X-Snapshot-Cursor") != "" || resp.Header.Get("Content-Disposition") != "" {
				t.Fatalf("a refused snapshot has snapshot headers: %v", resp.Header)
			}
		})
	}
	resp, b := ts.DoAs(t, "", http.MethodGet, "/v1/snapshot?entity=household", "", nil)
	apitest.MustProblem(t, resp, b, http.StatusUnauthorized)
}
