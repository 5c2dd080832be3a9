package cli

import (
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// clientForms is the Go client's test form set: version 2 renames
// water_inspection.fetch_minutes to fetch_time_min and adds operator; both
// require a fetching time unless the water is piped
// (fetch_time_unless_piped).
var clientForms = filepath.Join("..", "..", "syncproto", "client", "testdata", "forms")

// TestDeviceSpeaksItsSchemaVersion, the real binary and fieldsync device:
// a tablet on version 1 queues edits offline; the server moves to version
// 2; the tablet syncs (its version-1 change set is migrated), queues one
// more edit in version 1, upgrades, edits in version 2 and syncs. Every
// edit is in the history with the version it was made in; the edits that
// break a rule are refused on the tablet, in its version's fields, and
// never reach the server's quarantine.
func TestDeviceSpeaksItsSchemaVersion(t *testing.T) {
	data := t.TempDir()
	cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", "w", "--role", "field_worker", "--scope", "500240107")
	cli(t, e2ePassword+"\n", "user", "add", "--data", data, "--name", "boss", "--role", "admin")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := startBinary(t, data, "--forms", copySet(t, clientForms, 1), "--addr", addr)

	tab := t.TempDir()
	if out := cli(t, e2ePassword+"\n", "device", "login", "--dir", tab, "--server", srv.url, "--user", "w"); !strings.Contains(out, "on schema version 1") {
		t.Fatalf("login: %s", out)
	}
	newRecord := func(entity string, fields ...string) string {
		out := cli(t, "", append([]string{"device", "edit", "--dir", tab, "--entity", entity, "--new"}, fields...)...)
		id := strings.TrimSpace(out)
		if _, err := uuid.Parse(id); err != nil {
			t.Fatalf("edit --new: %s", out)
		}
		return id
	}
	hh := newRecord("household", "village=500240107201", "head_name=户主")
	cli(t, "", "device", "sync", "--dir", tab)
	// Offline, on version 1.
	w1 := newRecord("water_inspection", "household_id="+hh, "inspected_on=2026-11-20", "source=well", "fetch_minutes=10")
	out := cliFails(t, "device", "edit", "--dir", tab, "--entity", "water_inspection", "--new", "household_id="+hh,
		"inspected_on=2026-11-20", "source=well")
	if !strings.Contains(out, "fields.fetch_minutes") || !strings.Contains(out, "rule fetch_time_unless_piped") {
		t.Fatalf("a rule broken on version 1: %s", out)
	}

	// The server moves to version 2; the tablet syncs as it is.
	srv.kill(t)
	srv = startBinary(t, data, "--forms", copySet(t, clientForms, 2), "--addr", addr)
	if out := cli(t, "", "device", "sync", "--dir", tab); !strings.Contains(out, "pushed 1 change sets (1 changes), 0 conflicts reported, 0 refused") {
		t.Fatalf("sync after the server moved: %s", out)
	}
	boss := httpLogin(t, srv.url, "boss", e2ePassword, uuid.NewString())
	var rec syncproto.Record
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1, &rec)
	if string(rec.Fields["fetch_time_min"]) != "10" || rec.Fields["fetch_minutes"] != nil {
		t.Fatalf("the version-1 edit not migrated: %s", rec.Fields)
	}
	// Still on version 1: pulled back in it, and a record made in version
	// 2 with a field version 1 lacks is listed without it, flagged.
	bossDevice := uuid.NewString()
	boss = httpLogin(t, srv.url, "boss", e2ePassword, bossDevice)
	w0 := uuid.NewString()
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: bossDevice, DeviceSeq: 1, SchemaVersion: 2,
		Changes: []syncproto.Change{{Entity: "water_inspection", ID: w0, Op: syncproto.OpUpsert, At: "2026-11-20T09:00:00.000Z",
			Fields: map[string]json.RawMessage{"household_id": json.RawMessage(`"` + hh + `"`), "inspected_on": json.RawMessage(`"2026-11-20"`),
				"source": json.RawMessage(`"piped"`), "operator": json.RawMessage(`"县水利局"`)}}}}
	if resp, code, err := postPush(srv.url, boss, cs); err != nil || code != 200 || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("a version-2 push: %d %+v %v", code, resp, err)
	}
	cli(t, "", "device", "sync", "--dir", tab)
	if out := cli(t, "", "device", "list", "--dir", tab, "--entity", "water_inspection", "--json"); !strings.Contains(out, `"fetch_minutes":10`) {
		t.Fatalf("the version-1 tablet's copy: %s", out)
	}
	out = cli(t, "", "device", "list", "--dir", tab, "--entity", "water_inspection")
	if !regexp.MustCompile(w0+`\s+1 \(not_expressible\)`).MatchString(out) || strings.Contains(out, "operator") {
		t.Fatalf("a record version 1 cannot hold whole, listed: %s", out)
	}
	// One more edit queued on version 1, then the upgrade.
	cli(t, "", "device", "edit", "--dir", tab, "--entity", "water_inspection", "--id", w1, "fetch_minutes=12")
	out = cli(t, "", "device", "upgrade", "--dir", tab)
	if !strings.Contains(out, "on schema version 2 now (was 1)") || !strings.Contains(out, "the 1 edits made before stay in version 1") {
		t.Fatalf("upgrade: %s", out)
	}
	if st := cli(t, "", "device", "status", "--dir", tab); !regexp.MustCompile(`schema version\s+2\n`).MatchString(st) {
		t.Fatalf("status after the upgrade: %s", st)
	}
	out = cliFails(t, "device", "edit", "--dir", tab, "--entity", "water_inspection", "--new", "household_id="+hh,
		"inspected_on=2026-11-21", "source=spring")
	if !strings.Contains(out, "fields.fetch_time_min") || !strings.Contains(out, "rule fetch_time_unless_piped") {
		t.Fatalf("a rule broken on version 2: %s", out)
	}
	w2 := newRecord("water_inspection", "household_id="+hh, "inspected_on=2026-11-21", "source=spring", "fetch_time_min=25", "operator=县水利局")
	cli(t, "", "device", "edit", "--dir", tab, "--entity", "water_inspection", "--id", w1, "distance_horizontal_m=300")
	if out := cli(t, "", "device", "sync", "--dir", tab); !strings.Contains(out, "pushed 2 change sets (3 changes), 0 conflicts reported, 0 refused") {
		t.Fatalf("sync after the upgrade: %s", out)
	}

	var hist struct {
		Versions []struct {
			Version       int64          `json:"version"`
			SchemaVersion int            `json:"schema_version"`
			Sent          map[string]any `json:"sent"` // a migrated change's fields as sent
			Changes       map[string]any `json:"changes"`
		} `json:"versions"`
	}
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1+"/history", &hist)
	if len(hist.Versions) != 3 || hist.Versions[0].SchemaVersion != 1 || hist.Versions[1].SchemaVersion != 1 || hist.Versions[2].SchemaVersion != 2 ||
		hist.Versions[1].Sent["fetch_minutes"] != float64(12) || hist.Versions[2].Sent != nil || hist.Versions[2].Changes["distance_horizontal_m"] == nil {
		t.Fatalf("history of the record edited on both versions: %+v", hist)
	}
	hist.Versions = nil
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w2+"/history", &hist)
	if len(hist.Versions) != 1 || hist.Versions[0].SchemaVersion != 2 {
		t.Fatalf("history of the record made on version 2: %+v", hist)
	}
	rec = syncproto.Record{}
	apitest.GetJSON(t, srv.url, boss, "/v1/records/water_inspection/"+w1, &rec)
	if string(rec.Fields["fetch_time_min"]) != "12" || string(rec.Fields["distance_horizontal_m"]) != "300" {
		t.Fatalf("the record edited on both versions: %s", rec.Fields)
	}
	var q struct {
		Quarantine []struct {
			RecordID string `json:"record_id"`
		} `json:"quarantine"`
	}
	apitest.GetJSON(t, srv.url, boss, "/v1/quarantine?region=500240107", &q)
	if len(q.Quarantine) != 0 {
		t.Fatalf("refused edits reached the quarantine: %+v", q.Quarantine)
	}
	if out := cli(t, "", "device", "judge", "--dir", tab, "--id", w2, "--rule", "water_convenience"); !strings.Contains(out, "water_convenience: not_evaluable") {
		t.Fatalf("judge: %s", out)
	}
	if out := cli(t, "", "device", "judge", "--dir", tab, "--id", w1, "--rule", "water_convenience"); !strings.Contains(out, "water_convenience: met (decided by rules[0].any_of[1])") {
		t.Fatalf("judge: %s", out)
	}
}
