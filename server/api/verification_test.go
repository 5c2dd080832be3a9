package api_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// verificationBody is the answer of GET /v1/reports/verification.
type verificationBody struct {
	Region     string `json:"region"`
	AsOf       string `json:"as_of"`
	Guarantees []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"guarantees"`
	Households []map[string]json.RawMessage `json:"households"`
	Villages   []verify.Area                `json:"villages"`
	Townships  []verify.Area                `json:"townships"`
	Counties   []verify.Area                `json:"counties"`
	Totals     verify.Area                  `json:"totals"`
	Cursor     string                       `json:"cursor"`
}

// verificationCatalog is schema/verify's test form set: the design's names,
// with a regional income line in 32 (8000 against 7300).
func verificationCatalog(tb testing.TB) *schema.Catalog {
	tb.Helper()
	c, err := schema.LoadCatalog(os.DirFS("../../schema/verify/testdata"), "set")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// The kinds of generated household, each made so that one thing decides
// its verdict.
const (
	kindVerified       = iota // everything met
	kindDroppedOut            // a child of school age dropped out: blocked by education
	kindNoWater               // no water inspection: incomplete
	kindStaleHousing          // the housing inspection is 400 days old: incomplete
	kindIncome7500            // 7500 a person: blocked by food in 32 (line 8000), verified in 50 (7300)
	kindDangerousHouse        // grade D, renovated, not re-inspected, and one member uninsured: blocked by housing and medical
	kinds
)

// verificationVillages are the generated households' villages: two of 石柱
// (500240, national income line) and two of 32 (the regional line).
var verificationVillages = []string{"500240107201", "500240108203", "320100001001", "320100002001"}

// generatedHousehold is what the test knows of a generated household.
type generatedHousehold struct {
	id, village, head string
	kind              int
}

// generateVerification builds n households with their persons and
// inspections, the kind of household i being i % kinds and its village
// verificationVillages[(i / kinds) % 4], as changes of at most 200.
func generateVerification(n int, today time.Time) ([]generatedHousehold, [][]syncproto.Change) {
	var out []generatedHousehold
	var sets [][]syncproto.Change
	var cur []syncproto.Change
	recent := today.AddDate(0, 0, -30)
	for i := 0; i < n; i++ {
		g := generatedHousehold{id: uuid.NewString(), village: verificationVillages[(i/kinds)%len(verificationVillages)],
			head: fmt.Sprintf("户主%05d", i), kind: i % kinds}
		out = append(out, g)
		income := 9000
		if g.kind == kindIncome7500 {
			income = 7500
		}
		cur = append(cur, storetest.Upsert("household", g.id, 0, recent, map[string]any{"village": g.village, "head_name": g.head,
			"status": "in_poverty", "food_assured": true, "clothing_assured": true, "income_per_person": income}))
		schooling := "enrolled"
		if g.kind == kindDroppedOut {
			schooling = "dropped_out"
		}
		cur = append(cur,
			storetest.Upsert("person", uuid.NewString(), 0, recent, map[string]any{"household_id": g.id, "birth_year": 1980,
				"medical_insurance": g.kind != kindDangerousHouse, "illness": "none"}),
			storetest.Upsert("person", uuid.NewString(), 0, recent, map[string]any{"household_id": g.id, "birth_year": 2015,
				"schooling": schooling, "medical_insurance": true, "illness": "none"}))
		housing := map[string]any{"household_id": g.id, "inspected_on": recent.Format(time.DateOnly), "grade": "B"}
		switch g.kind {
		case kindStaleHousing:
			housing["inspected_on"] = today.AddDate(0, 0, -400).Format(time.DateOnly)
		case kindDangerousHouse:
			housing["grade"], housing["renovation"] = "D", "completed"
		}
		cur = append(cur, storetest.Upsert("housing_inspection", uuid.NewString(), 0, recent, housing))
		if g.kind != kindNoWater {
			cur = append(cur, storetest.Upsert("water_inspection", uuid.NewString(), 0, recent, map[string]any{"household_id": g.id,
				"inspected_on": recent.Format(time.DateOnly), "quality_ok": true, "liters_per_person_day": 50, "fetch_minutes": 5, "reliability_pct": 95}))
		}
		if len(cur) >= 190 {
			sets, cur = append(sets, cur), nil
		}
	}
	if len(cur) > 0 {
		sets = append(sets, cur)
	}
	return out, sets
}

// expectedVerdict is a generated household's verdict by the test's own
// reckoning (not the verifier's): the overall and the guarantees not met.
func expectedVerdict(g generatedHousehold) (verify.Overall, []string) {
	switch g.kind {
	case kindDroppedOut:
		return verify.Blocked, []string{"education"}
	case kindNoWater, kindStaleHousing:
		return verify.Incomplete, nil
	case kindIncome7500:
		if strings.HasPrefix(g.village, "32") {
			return verify.Blocked, []string{"food"}
		}
		return verify.Verified, nil
	case kindDangerousHouse:
		return verify.Blocked, []string{"medical", "housing"}
	}
	return verify.Verified, nil
}

// serveVerification serves the test form set with n generated households.
func serveVerification(tb testing.TB, n int) (*apitest.Server, []generatedHousehold) {
	tb.Helper()
	cat := verificationCatalog(tb)
	ts := apitest.MustServeConfig(tb, sqlite.Options{}, func(c *api.Config) { c.Catalog = cat })
	gen, sets := generateVerification(n, storetest.T0)
	dev := storetest.NewDevice("generator")
	for _, changes := range sets {
		resp := dev.Push(tb, ts.Push, changes...)
		for _, r := range resp.Results {
			if r.Status != syncproto.StatusApplied {
				tb.Fatalf("generated change %s: %+v", r.ID, r)
			}
		}
	}
	return ts, gen
}

// wantCounts adds up the expected verdicts of the households whose village
// starts with prefix.
func wantCounts(gen []generatedHousehold, prefix string) verify.Area {
	a := verify.Area{BlockedBy: map[string]int{}}
	for _, name := range schema.GuaranteeNames {
		a.BlockedBy[name] = 0
	}
	for _, g := range gen {
		if !strings.HasPrefix(g.village, prefix) {
			continue
		}
		a.Households++
		switch o, by := expectedVerdict(g); o {
		case verify.Verified:
			a.Verified++
		case verify.Blocked:
			a.Blocked++
			for _, b := range by {
				a.BlockedBy[b]++
			}
		default:
			a.Incomplete++
		}
	}
	return a
}

func sameCounts(got, want verify.Area) bool {
	return got.Households == want.Households && got.Verified == want.Verified && got.Blocked == want.Blocked &&
		got.Incomplete == want.Incomplete && fmt.Sprint(got.BlockedBy) == fmt.Sprint(want.BlockedBy)
}

func TestVerificationReportMatchesTheGeneratedSet(t *testing.T) {
	ts, gen := serveVerification(t, 120)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	var rep verificationBody
	getReport(t, ts, admin, "/v1/reports/verification", &rep)
	if rep.AsOf != storetest.T0.Format(time.DateOnly) || len(rep.Guarantees) != 6 || rep.Guarantees[0].Labels["zh"] != "不愁吃" {
		t.Fatalf("head: as_of %s, guarantees %+v", rep.AsOf, rep.Guarantees)
	}
	if len(rep.Households) != len(gen) {
		t.Fatalf("%d households, want %d", len(rep.Households), len(gen))
	}
	byID := map[string]generatedHousehold{}
	for _, g := range gen {
		byID[g.id] = g
	}
	for _, h := range rep.Households {
		var id string
		var overall verify.Overall
		var by []string
		json.Unmarshal(h["household"], &id)
		json.Unmarshal(h["overall"], &overall)
		json.Unmarshal(h["by"], &by)
		wantO, wantBy := expectedVerdict(byID[id])
		if overall != wantO || !slices.Equal(by, wantBy) {
			t.Errorf("household %s (kind %d in %s): %s by %v, want %s by %v", id, byID[id].kind, byID[id].village, overall, by, wantO, wantBy)
		}
		for _, g := range schema.GuaranteeNames {
			if _, ok := h[g]; !ok {
				t.Fatalf("household %s lacks the guarantee %s: %s", id, g, h)
			}
		}
	}
	if want := wantCounts(gen, ""); !sameCounts(rep.Totals, want) {
		t.Errorf("totals %+v, want %+v", rep.Totals, want)
	}
	if len(rep.Counties) != 2 || rep.Counties[0].Code != "320100" || rep.Counties[1].Code != "500240" {
		t.Fatalf("counties %+v", rep.Counties)
	}
	for _, c := range rep.Counties {
		if want := wantCounts(gen, c.Code); !sameCounts(c, want) {
			t.Errorf("county %s: %+v, want %+v", c.Code, c, want)
		}
	}
	if len(rep.Townships) != 4 || len(rep.Villages) != 4 {
		t.Fatalf("%d townships, %d villages", len(rep.Townships), len(rep.Villages))
	}
	for _, v := range rep.Villages {
		if want := wantCounts(gen, v.Code); !sameCounts(v, want) {
			t.Errorf("village %s: %+v, want %+v", v.Code, v, want)
		}
		var named []string
		for _, u := range v.NeverVerified {
			named = append(named, u.HeadName)
		}
		var want []string
		for _, g := range gen {
			if o, _ := expectedVerdict(g); g.village == v.Code && o != verify.Verified {
				want = append(want, g.head)
			}
		}
		slices.Sort(named)
		slices.Sort(want)
		if !slices.Equal(named, want) {
			t.Errorf("village %s names %v as never verified, want %v", v.Code, named, want)
		}
	}

	// NDJSON: the same households, each village's roll-up after its last
	// household, then the townships and counties, then the end.
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=ndjson", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("ndjson: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	households, areas, ends := 0, 0, 0
	village := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Kind    string `json:"kind"`
			Village string `json:"village"`
			Level   string `json:"level"`
			Code    string `json:"code"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		switch line.Kind {
		case "household":
			households++
			if village != "" && line.Village != village {
				t.Fatalf("household of %s before the roll-up of %s", line.Village, village)
			}
			village = line.Village
		case "area":
			areas++
			if line.Level == verify.LevelVillage {
				if line.Code != village {
					t.Fatalf("roll-up of %s after households of %s", line.Code, village)
				}
				village = ""
			}
		case "end":
			ends++
		}
	}
	if households != len(gen) || areas != 4+4+2 || ends != 1 {
		t.Fatalf("ndjson: %d households, %d areas, %d ends", households, areas, ends)
	}

	// CSV in English: the households, headed by the guarantees' labels.
	resp, body = ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=csv&lang=en", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("csv: %d %s", resp.StatusCode, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(gen)+1 || !slices.Contains(rows[0], "Compulsory education") || !slices.Contains(rows[0], "Verdict") {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}
	blocked := 0
	for _, r := range rows[1:] {
		if slices.Contains(r, "Blocked") {
			blocked++
		}
	}
	if want := wantCounts(gen, "").Blocked; blocked != want {
		t.Errorf("csv: %d rows blocked, want %d", blocked, want)
	}
	resp, body = ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=xlsx&lang=zh", "", nil)
	if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("PK")) {
		t.Fatalf("xlsx: %d", resp.StatusCode)
	}
}

func TestVerificationReportScopeAndParameters(t *testing.T) {
	ts, gen := serveVerification(t, 24)
	ts.AddUser(t, "supervisor.nanjing", syncproto.RoleSupervisor, "320100")
	ts.AddUser(t, "worker.xituo", syncproto.RoleFieldWorker, "500240107")
	sup := ts.Login(t, "supervisor.nanjing", uuid.NewString())
	worker := ts.Login(t, "worker.xituo", uuid.NewString())

	// The supervisor of 320100 sees their county alone.
	var rep verificationBody
	getReport(t, ts, sup, "/v1/reports/verification", &rep)
	if len(rep.Counties) != 1 || rep.Counties[0].Code != "320100" || !sameCounts(rep.Totals, wantCounts(gen, "320100")) {
		t.Fatalf("supervisor's scope: counties %+v totals %+v", rep.Counties, rep.Totals)
	}
	for _, h := range rep.Households {
		if !bytes.HasPrefix(h["village"], []byte(`"320100`)) {
			t.Fatalf("household of %s outside the scope", h["village"])
		}
	}
	// As of a day before the 2024 income line, 7500 is above the 2021 line
	// (6000) in 32 too.
	getReport(t, ts, sup, "/v1/reports/verification?as_of=2023-06-01", &rep)
	if rep.AsOf != "2023-06-01" || rep.Totals.BlockedBy["food"] != 0 {
		t.Fatalf("as of 2023: %+v", rep.Totals)
	}
	for _, c := range []struct {
		name, token, query string
		status             int
		path               string
	}{
		{"other county", sup, "?region=500240", 403, "query.region"},
		{"field worker", worker, "", 403, ""},
		{"bad format", sup, "?format=pdf", 422, "query.format"},
		{"bad as_of", sup, "?as_of=2026-13-01", 422, "query.as_of"},
		{"future as_of", sup, "?as_of=2030-01-01", 422, "query.as_of"},
		{"bad lang", sup, "?format=csv&lang=fr", 422, "query.lang"},
		{"unknown parameter", sup, "?county=320100", 400, "query.county"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.DoAs(t, c.token, http.MethodGet, "/v1/reports/verification"+c.query, "", nil)
			p := apitest.MustProblem(t, resp, body, c.status)
			if c.path != "" && (len(p.Errors) == 0 || p.Errors[0].Path != c.path) {
				t.Fatalf("problem %s lacks path %s", body, c.path)
			}
		})
	}
	// Forms without a verification (version 1 alone): 404.
	plain := mustServeV1(t, nil)
	resp, body := plain.DoAs(t, plain.Login(t, "admin", apitest.AdminDevice), http.MethodGet, "/v1/reports/verification", "", nil)
	apitest.MustProblem(t, resp, body, 404)
}

// verificationContract drives GET /v1/reports/verification through the
// document's contract on a server of the verification's test form set, and adds what it saw to k's, for
// TestOpenAPIResponses' coverage check.
func verificationContract(t *testing.T, doc *openapi3.T, k *contract) {
	ts, _ := serveVerification(t, 12)
	vk := newContract(t, ts, doc)
	ts.AddUser(t, "sup.bairin", syncproto.RoleSupervisor, "150422")
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	far := ts.Login(t, "sup.bairin", uuid.NewString())
	const path = "/v1/reports/verification"
	vk.call(t, apiCall{name: "verification", method: "GET", path: path, token: admin, status: 200})
	vk.call(t, apiCall{name: "verification, a county as of a day", method: "GET", path: path + "?region=320100&as_of=2026-01-15", token: admin, status: 200})
	vk.call(t, apiCall{name: "verification, ndjson", method: "GET", path: path + "?format=ndjson", token: admin, status: 200})
	vk.call(t, apiCall{name: "verification, roll-ups only", method: "GET", path: path + "?region=320100&rollup=only", token: admin, status: 200})
	vk.call(t, apiCall{name: "verification, csv", method: "GET", path: path + "?format=csv&lang=en", token: admin, status: 200})
	vk.call(t, apiCall{name: "verification, xlsx", method: "GET", path: path + "?format=xlsx&lang=zh", token: admin, status: 200})
	vk.call(t, apiCall{name: "verification, other county", method: "GET", path: path + "?region=500240", token: far, status: 403})
	vk.call(t, apiCall{name: "verification, bad as_of", method: "GET", path: path + "?as_of=yesterday", token: admin, status: 422, invalid: true})
	vk.call(t, apiCall{name: "verification, unknown parameter", method: "GET", path: path + "?county=1", token: admin, status: 400, invalid: true})
	vk.call(t, apiCall{name: "verification without token", method: "GET", path: path, status: 401})
	plain := newContract(t, mustServeV1(t, nil), doc)
	plain.call(t, apiCall{name: "verification, no verification declared", method: "GET", path: path, token: plain.ts.Login(t, "admin", apitest.AdminDevice), status: 404})
	for op, codes := range plain.seen {
		if k.seen[op] == nil {
			k.seen[op] = map[int]bool{}
		}
		for code := range codes {
			k.seen[op][code] = true
		}
	}
	for op, codes := range vk.seen {
		if k.seen[op] == nil {
			k.seen[op] = map[int]bool{}
		}
		for code := range codes {
			k.seen[op][code] = true
		}
	}
}

// checkVerificationNDJSON validates each line of an NDJSON verification
// report by its kind: a HouseholdVerdict, a VerificationArea, and the end.
func (k *contract) checkVerificationNDJSON(t *testing.T, name string, body []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	ends := 0
	for n := 1; sc.Scan(); n++ {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: NDJSON line %d: %v", name, n, err)
		}
		kind := v["kind"]
		delete(v, "kind")
		var schemaName string
		switch kind {
		case "household":
			schemaName = "HouseholdVerdict"
		case "area":
			schemaName = "VerificationArea"
		case "end":
			ends++
			schemaName = "VerificationArea"
			v = v["totals"].(map[string]any)
		default:
			t.Fatalf("%s: line %d of kind %v", name, n, kind)
		}
		if err := k.doc.Components.Schemas[schemaName].Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
			t.Errorf("%s: NDJSON line %d is not a %s: %v", name, n, schemaName, err)
		}
	}
	if ends != 1 {
		t.Errorf("%s: %d end lines", name, ends)
	}
}
