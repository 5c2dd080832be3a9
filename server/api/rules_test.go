package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPushViolatingARequirementRuleIsQuarantined (issue 17, rules): on a
// server whose forms declare rules (schema/testdata/rules), a change that
// leaves its record failing a requirement rule is rejected with the rule's
// name and description, and the quarantine keeps the rule name; a change
// that meets the rule, or fails only a criterion, applies. The rules are
// checked on the merged record: an update that makes a stored record fail
// one is rejected too, and a re-inspection is checked against the
// inspection it re-inspects.
func TestPushViolatingARequirementRuleIsQuarantined(t *testing.T) {
	forms, err := schema.Load(os.DirFS("../../schema/testdata"), "rules")
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Schema = forms })
	d := storetest.NewDevice("admin")
	at := storetest.T0
	hh, rejected, piped := uuid.NewString(), uuid.NewString(), uuid.NewString()
	push := func(changes ...syncproto.Change) syncproto.PushResponse {
		t.Helper()
		resp, body := ts.PushJSON(t, d.Changeset(changes...))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("push: %d %s", resp.StatusCode, body)
		}
		var pr syncproto.PushResponse
		if err := json.Unmarshal(body, &pr); err != nil {
			t.Fatal(err)
		}
		return pr
	}
	wantRule := func(r syncproto.ChangeResult, rule, path string) {
		t.Helper()
		if r.Status != syncproto.StatusRejected || len(r.Errors) != 1 || r.Errors[0].Rule != rule || r.Errors[0].Path != path ||
			r.Errors[0].Message != forms.Form(entityOfRule(forms, rule)).Rule(rule).Description["en"] {
			t.Fatalf("result %+v, want rejected by rule %s at %s with its English description", r, rule, path)
		}
	}

	pr := push(
		storetest.Upsert("household", hh, 0, at, map[string]any{"village": storetest.SouthVillage, "head_name": "陈秀英"}),
		storetest.Upsert("water_inspection", rejected, 0, at, map[string]any{"household_id": hh,
			"inspected_on": "2026-11-20", "source": "well", "distance_horizontal_m": 1500}),
		storetest.Upsert("water_inspection", piped, 0, at, map[string]any{"household_id": hh,
			"inspected_on": "2026-11-20", "source": "piped"}))
	if pr.Results[0].Status != syncproto.StatusApplied || pr.Results[2].Status != syncproto.StatusApplied {
		t.Fatalf("household and piped inspection: %+v", pr.Results)
	}
	wantRule(pr.Results[1], "fetch_minutes_unless_piped", "fields.fetch_minutes")

	// The quarantine keeps the rule's name.
	resp, body := ts.Do(t, http.MethodGet, "/v1/quarantine?state=open", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("quarantine: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Quarantine []struct {
			RecordID string                 `json:"record_id"`
			Errors   []syncproto.FieldError `json:"errors"`
		} `json:"quarantine"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Quarantine) != 1 || list.Quarantine[0].RecordID != rejected || len(list.Quarantine[0].Errors) != 1 ||
		list.Quarantine[0].Errors[0].Rule != "fetch_minutes_unless_piped" {
		t.Fatalf("quarantine %s, want the rejected inspection with rule fetch_minutes_unless_piped", body)
	}

	// A far well with its time is inconvenient (a criterion not met) but
	// complete: it applies.
	pr = push(storetest.Upsert("water_inspection", rejected, 0, at.Add(time.Minute), map[string]any{"household_id": hh,
		"inspected_on": "2026-11-20", "source": "well", "distance_horizontal_m": 1500, "fetch_minutes": 50}))
	if pr.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("complete but inconvenient inspection: %+v", pr.Results[0])
	}
	// The piped inspection turns out to be a well: the update leaves the
	// record without its fetching time.
	wantRule(push(storetest.Upsert("water_inspection", piped, 1, at.Add(2*time.Minute), map[string]any{"source": "well"})).Results[0],
		"fetch_minutes_unless_piped", "fields.fetch_minutes")
	// A record stored before the rule existed (pushed under the same forms
	// without their rules): an update of a field no rule reads applies, one
	// of a field the rule reads is checked.
	old := uuid.NewString()
	before := syncproto.NewPushService(ts.Store, syncproto.PushOptions{Schema: withoutRules(t), Now: ts.Clock.Now})
	d.Push(t, before, storetest.Upsert("water_inspection", old, 0, at, map[string]any{"household_id": hh,
		"inspected_on": "2026-11-20", "source": "well"}))
	if r := push(storetest.Upsert("water_inspection", old, 1, at.Add(3*time.Minute), map[string]any{"operator": "村委会"})).Results[0]; r.Status != syncproto.StatusApplied {
		t.Fatalf("update of a field no rule reads: %+v", r)
	}
	wantRule(push(storetest.Upsert("water_inspection", old, 2, at.Add(4*time.Minute), map[string]any{"source": "cistern"})).Results[0],
		"fetch_minutes_unless_piped", "fields.fetch_minutes")

	// A re-inspection whose renovation is dated before the inspection it
	// re-inspects.
	first, second := uuid.NewString(), uuid.NewString()
	push(storetest.Upsert("housing_inspection", first, 0, at, map[string]any{"household_id": hh, "inspected_on": "2026-06-01", "grade": "D"}))
	wantRule(push(storetest.Upsert("housing_inspection", second, 0, at, map[string]any{"household_id": hh, "inspected_on": "2026-11-01",
		"grade": "B", "renovation": "verified", "renovated_on": "2026-05-01", "previous_id": first})).Results[0],
		"renovated_after_previous", "fields.renovated_on")
	if r := push(storetest.Upsert("housing_inspection", second, 0, at, map[string]any{"household_id": hh, "inspected_on": "2026-11-01",
		"grade": "B", "renovation": "verified", "renovated_on": "2026-09-01", "previous_id": first})).Results[0]; r.Status != syncproto.StatusApplied {
		t.Fatalf("re-inspection after the renovation: %+v", r)
	}
}

// withoutRules is the example form set of schema/testdata/rules with
// every rule taken out.
func withoutRules(t *testing.T) *schema.Schema {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, name := range []string{"household", "housing_inspection", "water_inspection"} {
		b, err := os.ReadFile("../../schema/testdata/rules/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var form map[string]json.RawMessage
		if err := json.Unmarshal(b, &form); err != nil {
			t.Fatal(err)
		}
		delete(form, "rules")
		b, _ = json.Marshal(form)
		fsys["forms/"+name+".json"] = &fstest.MapFile{Data: b}
	}
	s, err := schema.Load(fsys, "forms")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entityOfRule returns the entity whose form declares rule.
func entityOfRule(s *schema.Schema, rule string) string {
	for _, f := range s.Forms {
		if f.Rule(rule) != nil {
			return f.Entity
		}
	}
	return ""
}

// TestOpenAPIRulesAnswers: on a server whose forms declare rules, GET
// /v1/schema (the rules served with their forms) and a push rejected by a
// rule (its error's rule member) match openapi.json.
func TestOpenAPIRulesAnswers(t *testing.T) {
	forms, err := schema.Load(os.DirFS("../../schema/testdata"), "rules")
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Schema = forms })
	k := newContract(t, ts, loadOpenAPI(t))
	d := storetest.NewDevice("admin")
	tok := ts.Login(t, "admin", d.Actor.DeviceID)
	_, body := k.call(t, apiCall{name: "schema with rules", method: http.MethodGet, path: "/v1/schema", token: tok, status: http.StatusOK})
	if !json.Valid(body) || !strings.Contains(string(body), `"fetch_minutes_unless_piped"`) {
		t.Fatalf("GET /v1/schema does not serve the rules: %.300s", body)
	}
	hh := uuid.NewString()
	cs := d.Changeset(
		storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "陈秀英"}),
		storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh,
			"inspected_on": "2026-11-20", "source": "well"}))
	_, body = k.call(t, apiCall{name: "push rejected by a rule", method: http.MethodPost, path: "/v1/sync/push", token: tok,
		body: mustJSON(t, cs), contentType: "application/json", status: http.StatusOK})
	if !strings.Contains(string(body), `"rule":"fetch_minutes_unless_piped"`) {
		t.Fatalf("push answer without the rule: %s", body)
	}
}
