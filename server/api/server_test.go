package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

func TestPushAndPullOverHTTP(t *testing.T) {
	ts := apitest.MustServe(t)
	cs := apitest.ValidChangeset()
	resp, body := ts.PushJSON(t, cs)
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Replayed || len(pr.Results) != 2 || pr.Results[1].Status != "applied" || pr.Results[1].Version != 1 {
		t.Fatalf("push response %s", body)
	}
	resp, again := ts.PushJSON(t, cs)
	var rp syncproto.PushResponse
	_ = json.Unmarshal(again, &rp)
	if resp.StatusCode != 200 || !rp.Replayed {
		t.Fatalf("replay: %d %s", resp.StatusCode, again)
	}
	if want := strings.Replace(string(body), `"replayed":false`, `"replayed":true`, 1); want != string(again) {
		t.Fatalf("replay body differs:\n%s\n%s", body, again)
	}
	resp, body = ts.Do(t, http.MethodGet, "/v1/sync/pull?limit=1", "", nil)
	var page syncproto.PullResponse
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("pull: %d %s", resp.StatusCode, body)
	}
	if len(page.Records) != 1 || !page.HasMore || page.Records[0].Entity != "household" {
		t.Fatalf("first page %s", body)
	}
	_, body = ts.Do(t, http.MethodGet, "/v1/sync/pull?limit=5&cursor="+page.Cursor, "", nil)
	_ = json.Unmarshal(body, &page)
	if len(page.Records) != 1 || page.HasMore || page.Records[0].Entity != "housing_inspection" {
		t.Fatalf("second page %s", body)
	}
	resp, body = ts.Do(t, http.MethodGet, "/v1/records/housing_inspection/"+cs.Changes[1].ID+"/history", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"grade":{"before":null,"after":"C"}`) {
		t.Fatalf("history: %d %s", resp.StatusCode, body)
	}
}

func TestServiceEndpoints(t *testing.T) {
	ts := apitest.MustServe(t)
	cases := []struct {
		name, method, path string
		status             int
		contains           string
		contentType        string
	}{
		{"healthz", "GET", "/healthz", 200, `"ok"`, "application/json"},
		{"readyz", "GET", "/readyz", 200, `"ready"`, "application/json"},
		{"schema", "GET", "/v1/schema", 200, `"schema_version":3`, "application/json"},
		{"schema has titles", "GET", "/v1/schema", 200, `"titles":{"en":"Household","zh":"农户"}`, "application/json"},
		{"schema has policies", "GET", "/v1/schema", 200, `"policy":"safety_first"`, "application/json"},
		{"unknown path", "GET", "/v1/nope", 404, `"status":404`, "application/problem+json"},
		{"wrong method", "DELETE", "/v1/sync/push", 405, `"status":405`, "application/problem+json"},
		{"unknown entity record", "GET", "/v1/records/school/" + uuid.NewString(), 404, `path.entity`, "application/problem+json"},
		{"traversal record id", "GET", "/v1/records/household/..%2F..%2Fetc", 404, `path.id`, "application/problem+json"},
		{"missing record", "GET", "/v1/records/household/" + uuid.NewString(), 404, `no record`, "application/problem+json"},
		{"bad limit", "GET", "/v1/sync/pull?limit=-1", 422, `query.limit`, "application/problem+json"},
		{"absurd limit", "GET", "/v1/sync/pull?limit=99999999999999999999", 422, `query.limit`, "application/problem+json"},
		{"forged cursor", "GET", "/v1/sync/pull?cursor=AAAA", 422, `"path":"cursor"`, "application/problem+json"},
		{"cursor ahead", "GET", "/v1/sync/pull?cursor=" + ts.Push.Cursors().Encode(syncproto.Cursor{Seq: 99}), 422, `ahead`, "application/problem+json"},
		{"unknown parameter", "GET", "/v1/sync/pull?since=1", 400, `query.since`, "application/problem+json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.Do(t, c.method, c.path, "", nil)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.contains) {
				t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
				t.Fatalf("content type %q, want %s", ct, c.contentType)
			}
		})
	}
}

// TestBadPushesWriteNothing sends hostile and malformed pushes: each gets
// a documented 4xx problem with the offending path, and the database is
// unchanged.
func TestBadPushesWriteNothing(t *testing.T) {
	ts := apitest.MustServe(t)
	good := apitest.ValidChangeset()
	goodJSON, _ := json.Marshal(good)
	replace := func(from, to string) []byte {
		if !strings.Contains(string(goodJSON), from) {
			t.Fatalf("fixture lacks %q", from)
		}
		return []byte(strings.Replace(string(goodJSON), from, to, 1))
	}
	tooMany := good
	tooMany.Changes = nil
	for i := 0; i < 201; i++ {
		tooMany.Changes = append(tooMany.Changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	tooManyJSON, _ := json.Marshal(tooMany)
	dup := good
	dup.Changes = []syncproto.Change{good.Changes[0], good.Changes[0]}
	dupJSON, _ := json.Marshal(dup)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	hundredThousand := []byte(`{"changeset_id":"` + good.ChangesetID + `","device_id":"` + good.DeviceID +
		`","device_seq":1,"schema_version":1,"changes":[` +
		strings.TrimSuffix(strings.Repeat(`{"entity":"household","id":"x","op":"delete","base_version":1,"at":"2026-11-20T08:00:00Z"},`, 100000), ",") + `]}`)

	cases := []struct {
		name        string
		body        []byte
		contentType string
		status      int
		path        string
	}{
		{"malformed json", []byte(`{"changeset_id": "x",`), "application/json", 400, "$"},
		{"truncated json", goodJSON[:len(goodJSON)/2], "application/json", 400, "$"},
		{"empty body", nil, "application/json", 400, "$"},
		{"not an object", []byte(`[1,2,3]`), "application/json", 400, "$"},
		{"wrong type", replace(`"device_seq":1`, `"device_seq":"one"`), "application/json", 400, "device_seq"},
		{"huge number", replace(`"device_seq":1`, `"device_seq":123456789012345678901234567890`), "application/json", 400, "device_seq"},
		{"NaN-like string", replace(`"device_seq":1`, `"device_seq":"NaN"`), "application/json", 400, "device_seq"},
		{"infinity-like number", replace(`"base_version":0`, `"base_version":1e999`), "application/json", 400, "changes[0].base_version"},
		{"100,000 changes", hundredThousand, "application/json", 413, ""},
		{"sql in changeset id", replace(`"changeset_id":"`+good.ChangesetID+`"`, `"changeset_id":"1' OR '1'='1"`), "application/json", 422, "changeset_id"},
		{"deeply nested", replace(`"head_name":"陈秀英"`, `"head_name":`+deep), "application/json", 400, ""},
		{"invalid utf8", replace(`陈秀英`, "\xff\xfe"), "application/json", 400, "$"},
		{"wrong content type", goodJSON, "text/plain", 400, "header.Content-Type"},
		{"unknown entity", replace(`"entity":"household"`, `"entity":"school"`), "application/json", 422, "changes[0].entity"},
		{"path traversal id", replace(`"id":"`+good.Changes[0].ID+`"`, `"id":"../../../etc/passwd"`), "application/json", 422, "changes[0].id"},
		{"sql in id", replace(`"id":"`+good.Changes[0].ID+`"`, `"id":"'; DROP TABLE records; --"`), "application/json", 422, "changes[0].id"},
		{"duplicate record ids", dupJSON, "application/json", 422, "changes[1].id"},
		{"too many changes", tooManyJSON, "application/json", 413, "changes"},
		{"oversized body", replace(`"head_name":"陈秀英"`, `"head_name":"`+strings.Repeat("x", 2<<20)+`"`), "application/json", 413, ""},
	}
	before := ts.Counts(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.Do(t, http.MethodPost, "/v1/sync/push", c.contentType, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p api.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != c.status || p.Type == "" || p.Title == "" {
				t.Fatalf("problem %s (%v)", body, err)
			}
			if c.path != "" {
				found := false
				for _, e := range p.Errors {
					found = found || e.Path == c.path
				}
				if !found {
					t.Fatalf("problem %s lacks path %s", body, c.path)
				}
			}
		})
	}
	if after := ts.Counts(t); !equalCounts(before, after) {
		t.Fatalf("bad pushes wrote: before %v after %v", before, after)
	}
	if resp, _ := ts.Do(t, http.MethodGet, "/healthz", "", nil); resp.StatusCode != 200 {
		t.Fatal("server unhealthy after bad input")
	}
}

// TestInvalidFieldsAreQuarantined: schema violations inside a valid change
// set are rejected per change, kept in quarantine, and the rest applies.
func TestInvalidFieldsAreQuarantined(t *testing.T) {
	ts := apitest.MustServe(t)
	d := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	cases := map[string]syncproto.Change{
		"fields.grade":        storetest.Upsert("housing_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "grade": "E", "inspected_on": "2026-11-20", "ventilation": "adequate"}),
		"fields.colour":       storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "x", "colour": "red"}),
		"fields.members":      storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "x", "members": 1e300}),
		"fields.household_id": storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": uuid.NewString(), "inspected_on": "2026-11-20"}),
		"fields.village":      storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": "5002401072", "head_name": "x"}),
		"fields.head_name":    storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage}),
		"fields.quality_ok":   storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "inspected_on": "2026-11-20", "quality_ok": "NaN"}),
	}
	changes := []syncproto.Change{storetest.Household(hh, storetest.SouthVillage, storetest.T0)}
	var wantPaths []string
	for path, ch := range cases {
		changes = append(changes, ch)
		wantPaths = append(wantPaths, path)
	}
	resp, body := ts.PushJSON(t, d.Changeset(changes...))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var pr syncproto.PushResponse
	_ = json.Unmarshal(body, &pr)
	if pr.Results[0].Status != "applied" {
		t.Fatalf("valid household not applied: %+v", pr.Results[0])
	}
	for i, path := range wantPaths {
		r := pr.Results[i+1]
		if r.Status != "rejected" || len(r.Errors) == 0 || r.Errors[0].Path != path {
			t.Errorf("%s: %+v", path, r)
		}
	}
	c := ts.Counts(t)
	if c["records"] != 1 || c["quarantine"] != len(cases) {
		t.Fatalf("counts %v", c)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// TestHistoryShowsConflictsWithoutVersion: a manual conflict makes no new
// version, yet it must be visible in the record's history.
func TestHistoryShowsConflictsWithoutVersion(t *testing.T) {
	ts := apitest.MustServe(t)
	a, b := storetest.NewDevice("li.na"), storetest.NewDevice("zhao.lei")
	hh := uuid.NewString()
	if resp, body := ts.PushJSON(t, a.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0))); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	a.Push(t, ts.Push, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}))
	resp := b.Push(t, ts.Push, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 7}))
	if resp.Results[0].Status != "conflict" {
		t.Fatalf("%+v", resp.Results[0])
	}
	_, body := ts.Do(t, http.MethodGet, "/v1/records/household/"+hh+"/history", "", nil)
	var h struct {
		Versions  []json.RawMessage `json:"versions"`
		Conflicts []struct {
			ConflictID string          `json:"conflict_id"`
			State      string          `json:"state"`
			Incoming   json.RawMessage `json:"incoming"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 2 || len(h.Conflicts) != 1 || h.Conflicts[0].ConflictID != resp.Results[0].Conflicts[0].ConflictID ||
		h.Conflicts[0].State != "open" || string(h.Conflicts[0].Incoming) != "7" {
		t.Fatalf("history %s", body)
	}
}
