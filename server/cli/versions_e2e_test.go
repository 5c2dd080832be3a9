package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// writeFormSet writes a form set to dir: version 1 is the built-in forms;
// version 2 renames water_inspection.liters_per_person_day to
// quantity_lpd, maps source "trucked" to "delivered", drops quality_ok
// and adds a form of its own (school_enrolment, a file no code knows);
// version 3 renames fetch_minutes to fetch_time_min.
func writeFormSet(tb testing.TB, dir string) {
	tb.Helper()
	for v := 1; v <= 3; v++ {
		if err := os.MkdirAll(filepath.Join(dir, string(rune('0'+v))), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	builtIn := filepath.Join("..", "..", "schema", "forms", "1")
	read := func(name string) map[string]any {
		b, err := os.ReadFile(filepath.Join(builtIn, name))
		if err != nil {
			tb.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatal(err)
		}
		return m
	}
	write := func(v int, name string, m any) {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, filepath.Join(dir, string(rune('0'+v))), name, string(b))
	}
	version := func(v int, steps string) {
		writeFile(tb, filepath.Join(dir, string(rune('0'+v))), "version.json",
			`{"version": `+string(rune('0'+v))+`, "published": "2027-01-15", "title": {"en": "test"}, "migrations": `+steps+`}`)
	}
	water := func(v int) map[string]any {
		w := read("water_inspection.json")
		delete(w, "standards") // keyed by v1 field names; not what this test is about
		var fields []any
		for _, f := range w["fields"].([]any) {
			fd := f.(map[string]any)
			switch fd["name"] {
			case "quality_ok":
				continue
			case "liters_per_person_day":
				fd["name"] = "quantity_lpd"
			case "fetch_minutes":
				if v >= 3 {
					fd["name"] = "fetch_time_min"
				}
			case "source":
				var values []any
				for _, x := range fd["values"].([]any) {
					if x == "trucked" {
						x = "delivered"
					}
					values = append(values, x)
				}
				fd["values"] = values
				if vl, ok := fd["value_labels"].(map[string]any); ok {
					vl["delivered"] = vl["trucked"]
					delete(vl, "trucked")
				}
			}
			fields = append(fields, fd)
		}
		w["fields"] = fields
		return w
	}
	school := map[string]any{"entity": "school_enrolment", "title": "School enrolment",
		"parent": map[string]any{"field": "household_id", "entity": "household"},
		"fields": []any{
			map[string]any{"name": "household_id", "type": "reference", "entity": "household", "required": true, "policy": "manual"},
			map[string]any{"name": "children_enrolled", "type": "integer", "min": 0, "max": 20, "policy": "lww"},
		}}
	for _, name := range []string{"household.json", "housing_inspection.json", "water_inspection.json"} {
		write(1, name, read(name))
	}
	v1, err := os.ReadFile(filepath.Join(builtIn, "version.json"))
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, filepath.Join(dir, "1"), "version.json", string(v1))
	for v := 2; v <= 3; v++ {
		write(v, "household.json", read("household.json"))
		write(v, "housing_inspection.json", read("housing_inspection.json"))
		write(v, "water_inspection.json", water(v))
		write(v, "school_enrolment.json", school)
	}
	version(2, `[{"op":"rename","entity":"water_inspection","field":"liters_per_person_day","to":"quantity_lpd"},
		{"op":"map","entity":"water_inspection","field":"source","values":{"trucked":"delivered"}},
		{"op":"drop","entity":"water_inspection","field":"quality_ok"}]`)
	version(3, `[{"op":"rename","entity":"water_inspection","field":"fetch_minutes","to":"fetch_time_min"}]`)
}

// keepVersions leaves only versions 1..n of the set in dir (the server
// "moves" by being restarted on a fuller copy).
func copySet(tb testing.TB, from string, n int) string {
	tb.Helper()
	to := tb.TempDir()
	for v := 1; v <= n; v++ {
		out, err := exec.Command("cp", "-r", filepath.Join(from, string(rune('0'+v))), to).CombinedOutput()
		if err != nil {
			tb.Fatalf("cp: %v %s", err, out)
		}
	}
	return to
}

// TestTabletOnAnOlderVersionSyncsAfterTheFormsMoved: a v1 tablet (the Go
// client, sending schema_version 1) records edits offline; the server is
// restarted on versions 1–2, and another v1 tablet on 1–3 (two versions
// behind); every edit is migrated on arrival, merged, and its history
// names the version it was sent in. The tablets keep pulling v1 records
// without asking; the form the new version added is served, validated,
// synced, pulled and exported by a v3 client without code.
func TestTabletOnAnOlderVersionSyncsAfterTheFormsMoved(t *testing.T) {
	set := t.TempDir()
	writeFormSet(t, set)
	data := t.TempDir()
	cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", "w", "--role", "field_worker", "--scope", "500240107")
	cli(t, e2ePassword+"\n", "user", "add", "--data", data, "--name", "boss", "--role", "admin")
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := startBinary(t, data, "--forms", copySet(t, set, 1), "--addr", addr)

	tablet := func() *client.Client {
		c, err := client.Open(filepath.Join(t.TempDir(), "device.db"), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login(ctx, srv.url, "w", e2ePassword); err != nil {
			t.Fatal(err)
		}
		return c
	}
	one, two := tablet(), tablet()
	hh, err := one.Create(ctx, "household", client.Fields{"village": "500240107201", "head_name": "户主", "members": 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Offline, on v1: a water inspection with every field the versions change.
	w1, err := one.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20",
		"source": "trucked", "quality_ok": true, "liters_per_person_day": 55, "fetch_minutes": 10})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := two.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-21",
		"source": "well", "liters_per_person_day": 30, "fetch_minutes": 25})
	if err != nil {
		t.Fatal(err)
	}

	// The server moves to v2; tablet one syncs.
	srv.kill(t)
	srv = startBinary(t, data, "--forms", copySet(t, set, 2), "--addr", addr)
	rep, err := one.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused != 0 {
		t.Fatalf("a v1 edit refused after v2 shipped: %+v", rep)
	}
	boss := httpLogin(t, srv.url, "boss", e2ePassword, uuid.NewString())
	var rec syncproto.Record
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1, &rec)
	if string(rec.Fields["quantity_lpd"]) != "55" || string(rec.Fields["source"]) != `"delivered"` || rec.Fields["quality_ok"] != nil || rec.Fields["liters_per_person_day"] != nil {
		t.Fatalf("not migrated to v2: %s", rec.Fields)
	}
	var hist struct {
		Versions []struct {
			SchemaVersion int                        `json:"schema_version"`
			Sent          map[string]json.RawMessage `json:"sent"`
		} `json:"versions"`
	}
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1+"/history", &hist)
	if len(hist.Versions) != 1 || hist.Versions[0].SchemaVersion != 1 || string(hist.Versions[0].Sent["quality_ok"]) != "true" {
		t.Fatalf("history does not name v1 or lost the dropped value: %+v", hist)
	}
	// Tablet one pulled its own record back in v1, without asking.
	got, err := one.Get(ctx, w1)
	if err != nil || string(got.Fields["liters_per_person_day"]) != "55" || string(got.Fields["source"]) != `"trucked"` || got.Fields["quantity_lpd"] != nil {
		t.Fatalf("the v1 tablet's copy: %+v %v", got.Fields, err)
	}

	var conflicts struct {
		Conflicts []json.RawMessage `json:"conflicts"`
	}
	apitest.GetJSON(t, srv.url, boss, "/v1/conflicts?limit=1000", &conflicts)
	conflictsOnV2 := len(conflicts.Conflicts)

	// The server moves to v3; tablet two, two versions behind, syncs.
	srv.kill(t)
	srv = startBinary(t, data, "--forms", copySet(t, set, 3), "--addr", addr)
	if rep, err := two.Sync(ctx); err != nil || rep.Refused != 0 {
		t.Fatalf("two versions behind: %+v %v", rep, err)
	}
	boss = httpLogin(t, srv.url, "boss", e2ePassword, uuid.NewString())
	rec = syncproto.Record{}
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w2, &rec)
	if string(rec.Fields["quantity_lpd"]) != "30" || string(rec.Fields["fetch_time_min"]) != "25" || rec.Fields["fetch_minutes"] != nil {
		t.Fatalf("not migrated 1→3: %s", rec.Fields)
	}
	// What was stored before v3 shipped is in v3's shape now, at the
	// version it had: w1, written in v2's, has fetch_time_min; its history
	// keeps what tablet one sent, and the move made no conflict.
	rec = syncproto.Record{}
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1, &rec)
	if rec.Version != 1 || string(rec.Fields["fetch_time_min"]) != "10" || rec.Fields["fetch_minutes"] != nil || string(rec.Fields["quantity_lpd"]) != "55" {
		t.Fatalf("a stored record not migrated to v3: v%d %s", rec.Version, rec.Fields)
	}
	hist.Versions = nil
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1+"/history", &hist)
	if len(hist.Versions) != 1 || hist.Versions[0].SchemaVersion != 1 || string(hist.Versions[0].Sent["fetch_minutes"]) != "10" {
		t.Fatalf("the move to v3 touched the change log: %+v", hist)
	}
	conflicts.Conflicts = nil
	apitest.GetJSON(t, srv.url, boss, "/v1/conflicts?limit=1000", &conflicts)
	if len(conflicts.Conflicts) != conflictsOnV2 {
		t.Fatalf("the move to v3 made %d conflicts", len(conflicts.Conflicts)-conflictsOnV2)
	}
	hist.Versions = nil
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w2+"/history", &hist)
	if len(hist.Versions) != 1 || hist.Versions[0].SchemaVersion != 1 {
		t.Fatalf("history of the 1→3 edit: %+v", hist)
	}
	var schema struct {
		Version  int   `json:"schema_version"`
		Versions []int `json:"versions"`
	}
	apitest.GetJSON(t, srv.url, boss, "/v1/schema", &schema)
	if schema.Version != 3 || len(schema.Versions) != 3 {
		t.Fatalf("GET /v1/schema: %+v", schema)
	}
	apitest.GetJSON(t, srv.url, boss, "/v1/schema?version=1", &schema)
	if schema.Version != 1 {
		t.Fatalf("GET /v1/schema?version=1: %+v", schema)
	}

	// The form version 2 added by a file is validated, synced, pulled and
	// exported (pushed by hand in v3: the Go client speaks v1).
	device := uuid.NewString()
	tok := httpLogin(t, srv.url, "w", e2ePassword, device)
	school := uuid.NewString()
	push := func(seq int64, children string) syncproto.PushResponse {
		cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: seq, SchemaVersion: 3,
			Changes: []syncproto.Change{{Entity: "school_enrolment", ID: school, Op: syncproto.OpUpsert, At: "2026-11-22T08:00:00.000Z",
				Fields: map[string]json.RawMessage{"household_id": json.RawMessage(`"` + hh + `"`), "children_enrolled": json.RawMessage(children)}}}}
		resp, code, err := postPush(srv.url, tok, cs)
		if err != nil || code != 200 {
			t.Fatalf("push: %d %v", code, err)
		}
		return resp
	}
	if r := push(1, "21"); r.Results[0].Status != syncproto.StatusRejected {
		t.Fatalf("children_enrolled 21 accepted: %+v", r.Results[0])
	}
	if r := push(2, "2"); r.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("school enrolment refused: %+v", r.Results[0])
	}
	// A v3 edit of the migrated record merges as on a v3-born one, and
	// tablet one, on v1, pulls it down-converted.
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: 3, SchemaVersion: 3,
		Changes: []syncproto.Change{{Entity: "water_inspection", ID: w1, Op: syncproto.OpUpsert, BaseVersion: 1, At: "2026-11-22T09:00:00.000Z",
			Fields: map[string]json.RawMessage{"fetch_time_min": json.RawMessage(`12`)}}}}
	if resp, code, err := postPush(srv.url, tok, cs); err != nil || code != 200 || resp.Results[0].Status != syncproto.StatusApplied || len(resp.Results[0].Conflicts) != 0 || resp.Results[0].Version != 2 {
		t.Fatalf("a v3 edit of a migrated record: %d %+v %v", code, resp, err)
	}
	if _, err := one.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = one.Get(ctx, w1)
	if err != nil || string(got.Fields["fetch_minutes"]) != "12" || string(got.Fields["liters_per_person_day"]) != "55" || string(got.Fields["source"]) != `"trucked"` || got.Fields["fetch_time_min"] != nil {
		t.Fatalf("the v1 tablet's copy after the v3 edit: %+v %v", got.Fields, err)
	}
	var page syncproto.PullResponse
	apitest.GetJSON(t, srv.url, tok, "/v1/sync/pull?schema_version=3&limit=1000", &page)
	found := false
	for _, r := range page.Records {
		found = found || (r.ID == school && string(r.Fields["children_enrolled"]) == "2")
	}
	if !found {
		t.Fatalf("the new form's record not pulled: %+v", page.Records)
	}
	// Pulled in v1, the new form's record cannot be expressed: flagged.
	apitest.GetJSON(t, srv.url, tok, "/v1/sync/pull?schema_version=1&limit=1000", &page)
	for _, r := range page.Records {
		if r.ID == school && (len(r.Flags) != 1 || r.Flags[0] != syncproto.FlagNotExpressible) {
			t.Fatalf("the new form pulled in v1 without its flag: %+v", r)
		}
	}
	out := filepath.Join(t.TempDir(), "school.ndjson")
	cli(t, "", "export", "--data", data, "--out", out, "--entity", "school_enrolment", "--format", "ndjson")
	if b, err := os.ReadFile(out); err != nil || !strings.Contains(string(b), school) {
		t.Fatalf("export: %s %v", b, err)
	}
}

// TestBrokenFormSetStopsServe: bad JSON, a region rule naming an unknown
// field and a migration step naming a missing field stop serve at start
// with every problem listed, and forms check lists the same.
func TestBrokenFormSetStopsServe(t *testing.T) {
	set := t.TempDir()
	writeFormSet(t, set)
	broken := copySet(t, set, 2)
	writeFile(t, filepath.Join(broken, "2"), "school_enrolment.json", `{"entity": "school_enrolment", "fields": [}`)
	b, err := os.ReadFile(filepath.Join(broken, "2", "household.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hh map[string]any
	json.Unmarshal(b, &hh)
	hh["region_rules"] = []any{map[string]any{"name": "north", "prefixes": []any{"15"}, "require": []any{"heating_kind"}}}
	nb, _ := json.Marshal(hh)
	writeFile(t, filepath.Join(broken, "2"), "household.json", string(nb))
	writeFile(t, filepath.Join(broken, "2"), "version.json", `{"version": 2, "published": "2027-01-15", "migrations": [
		{"op":"rename","entity":"water_inspection","field":"liters_per_person_day","to":"quantity_lpd"},
		{"op":"map","entity":"water_inspection","field":"source","values":{"trucked":"delivered"}},
		{"op":"drop","entity":"water_inspection","field":"quality_ok"},
		{"op":"rename","entity":"water_inspection","field":"no_such_field","to":"fetch_minutes"}]}`)
	want := []string{
		"2/school_enrolment.json: $: invalid JSON at line 1",
		`2/household.json: region_rules[0].require[0]: region rule "north" requires unknown field "heating_kind"`,
		"2/version.json: migrations[3].field",
	}
	data := t.TempDir()
	cmd := exec.Command(fieldsyncBinary(t), "serve", "--addr", "127.0.0.1:0", "--data", data, "--forms", broken)
	served, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("serve started on a broken form set")
	}
	check, err := exec.Command(fieldsyncBinary(t), "forms", "check", broken).CombinedOutput()
	if err == nil {
		t.Fatal("forms check passed a broken form set")
	}
	for _, w := range want {
		if !strings.Contains(string(served), w) {
			t.Errorf("serve does not say %q:\n%s", w, served)
		}
		if !strings.Contains(string(check), w) {
			t.Errorf("forms check does not say %q:\n%s", w, check)
		}
	}
	// The good set checks, and names what version 2 changes (against a
	// data directory that published version 1 alone: the built-in set's
	// own version 2 is another one).
	good := cli(t, "", "forms", "check", copySet(t, set, 3), "--data", dataWithVersion1(t))
	for _, w := range []string{"version 1: published, unchanged", "version 2: new", "field water_inspection.quality_ok removed",
		"form school_enrolment added", `migrations[0] {"op":"rename","entity":"water_inspection","field":"liters_per_person_day","to":"quantity_lpd"}`} {
		if !strings.Contains(good, w) {
			t.Errorf("forms check does not say %q:\n%s", w, good)
		}
	}
}
