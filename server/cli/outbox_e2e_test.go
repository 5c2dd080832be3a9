package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
	"github.com/fieldsync/fieldsync/syncproto/client/faulty"
)

// An exported outbox end to end, with the real binary, its CLI and real
// SQLite files: a tablet edits offline, loses the answer to one push, is
// revoked, exports its outbox; a supervisor's tablet replays it.

// outboxWorld is a running server with its users: a field worker of 西沱镇,
// a supervisor of the county, a worker of another province and an admin.
type outboxWorld struct {
	data, url string
	admin     string // an admin's token
}

func newOutboxWorld(t *testing.T) *outboxWorld {
	t.Helper()
	w := &outboxWorld{data: t.TempDir()}
	add := func(name, role string, scope ...string) {
		args := []string{"user", "add", "--create", "--data", w.data, "--name", name, "--role", role}
		if len(scope) > 0 {
			args = append(args, "--scope", scope[0])
		}
		cli(t, e2ePassword+"\n", args...)
	}
	add("w", "field_worker", "500240107")
	add("sup", "supervisor", "500240")
	add("far", "field_worker", "150422")
	add("boss", "admin")
	w.url = startBinary(t, w.data).url
	w.admin = httpLogin(t, w.url, "boss", e2ePassword, uuid.NewString())
	return w
}

// tablet logs user in on a new tablet directory and returns it and its
// device id.
func (w *outboxWorld) tablet(t *testing.T, user string) (dir, device string) {
	t.Helper()
	dir = t.TempDir()
	out := cli(t, e2ePassword+"\n", "device", "login", "--dir", dir, "--server", w.url, "--user", user)
	m := regexp.MustCompile(`on device (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("login said %q", out)
	}
	return dir, m[1]
}

func (w *outboxWorld) revoke(t *testing.T, device string) {
	t.Helper()
	resp, err := apitest.Authed(http.MethodPost, w.url+"/v1/devices/"+device+"/revoke", w.admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
}

// post sends body to the replay endpoint of device as token.
func (w *outboxWorld) post(t *testing.T, token, device string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := apitest.Authed(http.MethodPost, w.url+"/v1/devices/"+device+"/outbox", token, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// state is what the server holds: every record a supervisor of the whole
// country reads, by id, with its version, and the history length of each.
func (w *outboxWorld) state(t *testing.T) string {
	t.Helper()
	var all []byte
	for _, entity := range []string{"household", "housing_inspection", "water_inspection"} {
		resp, err := apitest.Authed(http.MethodGet, w.url+"/v1/snapshot?format=ndjson&entity="+entity, w.admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("snapshot: %d %s", resp.StatusCode, b)
		}
		all = append(all, b...)
	}
	var receipts struct {
		Devices []struct {
			DeviceID string `json:"device_id"`
			LastSeq  int64  `json:"last_device_seq"`
		} `json:"devices"`
	}
	apitest.GetJSON(t, w.url, w.admin, "/v1/devices", &receipts)
	seqs, _ := json.Marshal(receipts)
	return string(all) + string(seqs)
}

func newRecord(t *testing.T, dir, entity string, fields ...string) string {
	t.Helper()
	out := cli(t, "", append([]string{"device", "edit", "--dir", dir, "--entity", entity, "--new"}, fields...)...)
	return strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
}

func TestRevokedTabletOutboxIsReplayedBySupervisor(t *testing.T) {
	w := newOutboxWorld(t)
	tab, dev := w.tablet(t, "w")

	// A household, pushed; the server applies it but its answer is lost
	// on the way back (the tablet keeps it in flight, as sent).
	hh := newRecord(t, tab, "household", "village=500240107201", "head_name=谭明华", "members=4")
	{
		lossy := &http.Client{Transport: faulty.New(nil, faulty.Faults{DropResponse: 1}, 1)}
		c, err := client.Open(filepath.Join(tab, "device.db"), client.Options{HTTP: lossy, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = c.Push(ctx)
		cancel()
		c.Close()
		if err == nil {
			t.Fatal("the push heard its answer through a network that drops every answer")
		}
	}
	var rec syncproto.Record
	apitest.GetJSON(t, w.url, w.admin, "/v1/records/household/"+hh, &rec)
	if rec.Version != 1 {
		t.Fatalf("the lost push did not reach the server: %+v", rec)
	}

	// Offline: more edits, a photo, a new inspection.
	cli(t, "", "device", "edit", "--dir", tab, "--entity", "household", "--id", hh, "members=5")
	photo := filepath.Join(t.TempDir(), "wall.png")
	if err := os.WriteFile(photo, apitest.TestPNG(t, 24, 5), 0o600); err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(cli(t, "", "device", "photo", "--dir", tab, photo))
	insp := newRecord(t, tab, "housing_inspection", "household_id="+hh, "inspected_on=2026-11-27", "grade=C",
		"ventilation=inadequate", "photos="+hash)

	// The supervisor revokes the tablet: it can no longer sync, its work
	// is stranded on it.
	w.revoke(t, dev)
	if out := cliFails(t, "device", "sync", "--dir", tab); !strings.Contains(out, "revoked") {
		t.Fatalf("sync of a revoked tablet said:\n%s", out)
	}
	if st := cli(t, "", "device", "status", "--dir", tab); !regexp.MustCompile(`pending changes\s+3\n`).MatchString(st) {
		t.Fatalf("status of the revoked tablet:\n%s", st)
	}

	// Export: offline, no token needed.
	file := filepath.Join(t.TempDir(), "outbox.json")
	out := cli(t, "", "device", "outbox", "export", "--dir", tab, "--out", file)
	if !strings.Contains(out, "exported 2 change sets (3 changes)") || !strings.Contains(out, "with 1 photos") {
		t.Fatalf("export said:\n%s", out)
	}
	var f syncproto.OutboxFile
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f.Format != "fieldsync-outbox" || f.Version != 1 || f.DeviceID != dev || f.User != "w" || len(f.Changesets) != 2 {
		t.Fatalf("the file: %+v", f)
	}
	var first, second syncproto.Changeset
	json.Unmarshal(f.Changesets[0], &first)
	json.Unmarshal(f.Changesets[1], &second)
	if first.DeviceSeq != 1 || second.DeviceSeq != 2 || first.DeviceID != dev {
		t.Fatalf("the change sets: seq %d, %d", first.DeviceSeq, second.DeviceSeq)
	}
	if sum := sha256.Sum256(f.Photos[0].Data); len(f.Photos) != 1 || hex.EncodeToString(sum[:]) != hash {
		t.Fatalf("the photo was not carried whole: %d photos", len(f.Photos))
	}
	// A second export carries the same change sets: nothing on the tablet
	// was renumbered.
	file2 := filepath.Join(t.TempDir(), "again.json")
	cli(t, "", "device", "outbox", "export", "--dir", tab, "--out", file2)
	var f2 syncproto.OutboxFile
	raw2, _ := os.ReadFile(file2)
	json.Unmarshal(raw2, &f2)
	if len(f2.Changesets) != 2 || !bytes.Equal(f2.Changesets[0], f.Changesets[0]) || !bytes.Equal(f2.Changesets[1], f.Changesets[1]) {
		t.Fatal("a second export made other change sets")
	}

	// The supervisor replays it from their own tablet.
	supTab, supDev := w.tablet(t, "sup")
	out = cli(t, "", "device", "outbox", "replay", "--dir", supTab, file)
	if !regexp.MustCompile(`(?m)^1\s+`+first.ChangesetID+`\s+replayed`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2\s+`+second.ChangesetID+`\s+applied\s+2 applied`).MatchString(out) ||
		!strings.Contains(out, "1 photos uploaded") {
		t.Fatalf("replay said:\n%s", out)
	}

	// The records are the tablet's edits, made as the tablet.
	apitest.GetJSON(t, w.url, w.admin, "/v1/records/household/"+hh, &rec)
	if rec.Version != 2 || string(rec.Fields["members"]) != "5" || rec.UpdatedBy != "w" {
		t.Fatalf("the household after the replay: %+v", rec)
	}
	var ins syncproto.Record
	apitest.GetJSON(t, w.url, w.admin, "/v1/records/housing_inspection/"+insp, &ins)
	if string(ins.Fields["grade"]) != `"C"` || !strings.Contains(string(ins.Fields["photos"]), hash) {
		t.Fatalf("the inspection after the replay: %+v", ins)
	}
	// History names the first tablet, and who replayed it through which
	// device; the version made before the revocation was not replayed.
	supTok := httpLogin(t, w.url, "sup", e2ePassword, uuid.NewString())
	var hist struct {
		Versions []struct {
			Version  int64  `json:"version"`
			User     string `json:"user"`
			Device   string `json:"device"`
			Replayed *struct {
				By, Device, At string
			} `json:"replayed"`
		} `json:"versions"`
	}
	apitest.GetJSON(t, w.url, supTok, "/v1/records/household/"+hh+"/history", &hist)
	if len(hist.Versions) != 2 {
		t.Fatalf("history: %+v", hist)
	}
	v1, v2 := hist.Versions[0], hist.Versions[1]
	if v1.Device != dev || v1.User != "w" || v1.Replayed != nil {
		t.Fatalf("version 1: %+v", v1)
	}
	if v2.Device != dev || v2.User != "w" || v2.Replayed == nil || v2.Replayed.By != "sup" || v2.Replayed.Device != supDev || v2.Replayed.At == "" {
		t.Fatalf("version 2: %+v (replayed %+v)", v2, v2.Replayed)
	}
	// The photo reached the server and its reference grants a download
	// to a reader who never uploaded it (an admin), as if the tablet had
	// uploaded it.
	resp, err := apitest.Authed(http.MethodGet, w.url+"/v1/attachments/"+hash, w.admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || sha256.Sum256(got) != sha256.Sum256(f.Photos[0].Data) {
		t.Fatalf("the photo: %d", resp.StatusCode)
	}

	// The same file again applies nothing new.
	before := w.state(t)
	out = cli(t, "", "device", "outbox", "replay", "--dir", supTab, file2)
	if regexp.MustCompile(`(?m)^\d+\s+\S+\s+applied`).MatchString(out) || strings.Count(out, "nothing applied again") != 2 {
		t.Fatalf("a second replay said:\n%s", out)
	}
	if after := w.state(t); after != before {
		t.Fatalf("a second replay changed the server:\nbefore %s\nafter  %s", before, after)
	}
}

func TestOutboxReplayRefusals(t *testing.T) {
	w := newOutboxWorld(t)
	tab, dev := w.tablet(t, "w")
	newRecord(t, tab, "household", "village=500240107201", "head_name=李四", "members=2")
	file := filepath.Join(t.TempDir(), "outbox.json")
	cli(t, "", "device", "outbox", "export", "--dir", tab, "--out", file)
	body, _ := os.ReadFile(file)

	supTab, _ := w.tablet(t, "sup")
	supTok := httpLogin(t, w.url, "sup", e2ePassword, uuid.NewString())
	workerTok := httpLogin(t, w.url, "w", e2ePassword, uuid.NewString())
	farTab, farDev := w.tablet(t, "far")
	newRecord(t, farTab, "household", "village=150422100200", "head_name=巴特尔", "members=3")
	farFile := filepath.Join(t.TempDir(), "far.json")
	cli(t, "", "device", "outbox", "export", "--dir", farTab, "--out", farFile)
	farBody, _ := os.ReadFile(farFile)
	w.revoke(t, farDev)

	type problem struct {
		Type   string                 `json:"type"`
		Errors []syncproto.FieldError `json:"errors"`
	}
	mutate := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(body, &m)
		delete(m, "photos")
		edit(m)
		b, _ := json.Marshal(m)
		return b
	}
	before := w.state(t)
	cases := []struct {
		name, token, device string
		body                []byte
		status              int
		path                string
	}{
		{"a device that is not revoked", supTok, dev, body, 409, "path.device_id"},
		{"a device outside the supervisor's scope", supTok, farDev, farBody, 403, "path.device_id"},
		{"a field worker", workerTok, dev, body, 403, ""},
	}
	for _, tc := range cases {
		status, b := w.post(t, tc.token, tc.device, tc.body)
		var p problem
		json.Unmarshal(b, &p)
		if status != tc.status || (tc.path != "" && (len(p.Errors) == 0 || p.Errors[0].Path != tc.path)) {
			t.Errorf("%s: %d %s, want %d at %q", tc.name, status, b, tc.status, tc.path)
		}
	}
	if out := cliFails(t, "device", "outbox", "replay", "--dir", supTab, file); !strings.Contains(out, "path.device_id: is not revoked") {
		t.Errorf("the CLI's replay for a live tablet said:\n%s", out)
	}

	// Malformed files, for a revoked device: clear errors with the path,
	// nothing applied.
	w.revoke(t, dev)
	bad := []struct {
		name   string
		body   []byte
		status int
		path   string
	}{
		{"not JSON", []byte(`{"format": `), 400, ""},
		{"a repeated key", append([]byte(`{"user":"sup",`), bytes.TrimPrefix(bytes.TrimSpace(body), []byte("{"))...), 400, "user"},
		{"another format", mutate(func(m map[string]any) { m["format"] = "zip" }), 422, "format"},
		{"a later version", mutate(func(m map[string]any) { m["version"] = 2 }), 422, "version"},
		{"another user", mutate(func(m map[string]any) { m["user"] = "sup" }), 422, "user"},
		{"a bad change", mutate(func(m map[string]any) {
			sets := m["changesets"].([]any)
			sets[0].(map[string]any)["changes"].([]any)[0].(map[string]any)["entity"] = "househld"
		}), 422, "changesets[0].changes[0].entity"},
		{"another device's change set", mutate(func(m map[string]any) {
			m["changesets"].([]any)[0].(map[string]any)["device_id"] = farDev
		}), 422, "changesets[0].device_id"},
		{"photos in the body", mutate(func(m map[string]any) { m["photos"] = []any{map[string]any{"sha256": "x"}} }), 422, "photos"},
		{"no change sets", mutate(func(m map[string]any) { m["changesets"] = []any{} }), 422, "changesets"},
	}
	for _, tc := range bad {
		status, b := w.post(t, supTok, dev, tc.body)
		var p problem
		json.Unmarshal(b, &p)
		if status != tc.status || (tc.path != "" && (len(p.Errors) == 0 || p.Errors[0].Path != tc.path)) {
			t.Errorf("%s: %d %s, want %d at %q", tc.name, status, b, tc.status, tc.path)
		}
	}
	if after := w.state(t); after != before {
		t.Fatalf("a refused replay changed the server:\nbefore %s\nafter  %s", before, after)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.json")
	os.WriteFile(garbage, []byte("PK\x03\x04 not an outbox"), 0o600)
	if out := cliFails(t, "device", "outbox", "replay", "--dir", supTab, garbage); !strings.Contains(out, "is not an exported outbox") {
		t.Errorf("the CLI's replay of a garbage file said:\n%s", out)
	}
	// And once revoked, the file goes in.
	if out := cli(t, "", "device", "outbox", "replay", "--dir", supTab, file); !regexp.MustCompile(`(?m)^1\s+\S+\s+applied\s+1 applied`).MatchString(out) {
		t.Errorf("the replay after the revocation said:\n%s", out)
	}
}
