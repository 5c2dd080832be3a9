package cli

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// cliFails runs the fieldsync binary, expects it to fail, and returns
// what it printed.
func cliFails(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command(fieldsyncBinary(tb), args...).CombinedOutput()
	if err == nil {
		tb.Fatalf("fieldsync %s succeeded, want a refusal:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// openDB opens a database file that no server uses (read and write: a
// backup is in WAL mode, which a read-only connection may not open).
func openDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=rw&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustIntegrityOK(tb testing.TB, db *sql.DB) {
	tb.Helper()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		tb.Fatalf("integrity_check: %q %v", check, err)
	}
}

// login logs user in on device and returns both tokens.
func login(tb testing.TB, url, user, password, device string) api.TokenResponse {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "device_id": device})
	resp, err := apitest.HTTPClient.Post(url+"/v1/auth/token", "application/json", bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var tr api.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		tb.Fatalf("login %s: %d %v", user, resp.StatusCode, err)
	}
	return tr
}

// pullPages pulls every page as token from the start, limit records a page.
func pullPages(tb testing.TB, url, token string, limit int) []syncproto.PullResponse {
	tb.Helper()
	var pages []syncproto.PullResponse
	cursor := ""
	for {
		resp, err := apitest.Authed(http.MethodGet, fmt.Sprintf("%s/v1/sync/pull?limit=%d&cursor=%s", url, limit, cursor), token, nil)
		if err != nil {
			tb.Fatal(err)
		}
		var page syncproto.PullResponse
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			tb.Fatalf("pull: %d %v", resp.StatusCode, err)
		}
		pages = append(pages, page)
		cursor = page.Cursor
		if !page.HasMore {
			return pages
		}
	}
}

// fiveHouseholds is a change set of five new households in the south, each
// with a housing inspection.
func fiveHouseholds(d *storetest.Device) syncproto.Changeset {
	var changes []syncproto.Change
	for range 5 {
		hh := uuid.NewString()
		changes = append(changes, storetest.Household(hh, storetest.SouthVillage, storetest.T0),
			storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0))
	}
	return d.Changeset(changes...)
}

// TestBackupWhilePushing takes a backup with the real binary while tablets
// push to the running server, in small steps so that commits land between
// them. The copy must be intact, hold every change set acknowledged before
// it started, hold each change set whole or not at all, and be exactly the
// server's change log up to some position.
func TestBackupWhilePushing(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end backup test")
	}
	const tablets = 4
	dataDir := t.TempDir()
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	p := startBinary(t, dataDir)

	var mu sync.Mutex
	var all []*pushed
	var ackedDuring int
	var backupRunning bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range tablets {
		d := storetest.NewDevice(fmt.Sprintf("tablet-%d", i))
		token := httpLogin(t, p.url, "worker", "worker-password", d.Actor.DeviceID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pd := &pushed{cs: fiveHouseholds(d)}
				mu.Lock()
				all = append(all, pd)
				mu.Unlock()
				resp, status, err := postPush(p.url, token, pd.cs)
				if err != nil || status != 200 {
					t.Errorf("push %s: %d %v", pd.cs.ChangesetID, status, err)
					return
				}
				mu.Lock()
				pd.ack = &resp
				if backupRunning {
					ackedDuring++
				}
				mu.Unlock()
			}
		}()
	}

	time.Sleep(time.Second)
	mu.Lock()
	var ackedBefore []*pushed
	for _, pd := range all {
		if pd.ack != nil {
			ackedBefore = append(ackedBefore, pd)
		}
	}
	backupRunning = true
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "backup.db")
	started := time.Now()
	printed := cli(t, "", "backup", "--data", dataDir, "--out", out, "--step-pages", "8")
	took := time.Since(started)
	mu.Lock()
	backupRunning = false
	during := ackedDuring
	mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	p.kill(t)
	t.Logf("backup in %s with %d change sets acknowledged before it and %d while it ran:\n%s", took, len(ackedBefore), during, printed)

	backup := openDB(t, out)
	mustIntegrityOK(t, backup)
	inBackup := func(query, id string) bool {
		var n int
		if err := backup.QueryRow(query, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	whole := 0
	for _, pd := range all {
		present := 0
		for _, ch := range pd.cs.Changes {
			if inBackup("SELECT count(*) FROM records WHERE id = ?", ch.ID) {
				present++
			}
		}
		receipt := inBackup("SELECT count(*) FROM receipts WHERE changeset_id = ?", pd.cs.ChangesetID)
		switch {
		case present == len(pd.cs.Changes) && receipt:
			whole++
		case present == 0 && !receipt:
			if pd.ack != nil && contains(ackedBefore, pd) {
				t.Fatalf("change set %s, acknowledged before the backup started, is not in it", pd.cs.ChangesetID)
			}
		default:
			t.Fatalf("change set %s is in the backup in part: %d of %d records, receipt %v", pd.cs.ChangesetID, present, len(pd.cs.Changes), receipt)
		}
	}

	// The backup's change log is the server's, up to the backup's last position.
	live := openDB(t, filepath.Join(dataDir, "fieldsync.db"))
	var head, liveHead int64
	if err := backup.QueryRow("SELECT COALESCE(MAX(seq), 0) FROM changes").Scan(&head); err != nil {
		t.Fatal(err)
	}
	if err := live.QueryRow("SELECT COALESCE(MAX(seq), 0) FROM changes").Scan(&liveHead); err != nil {
		t.Fatal(err)
	}
	changeLog := func(db *sql.DB) []string {
		rows, err := db.Query("SELECT seq, record_id, version, COALESCE(changeset_id, '') FROM changes WHERE seq <= ? ORDER BY seq", head)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var log []string
		for rows.Next() {
			var seq, version int64
			var id, cs string
			if err := rows.Scan(&seq, &id, &version, &cs); err != nil {
				t.Fatal(err)
			}
			log = append(log, fmt.Sprintf("%d %s %d %s", seq, id, version, cs))
		}
		return log
	}
	if b, l := changeLog(backup), changeLog(live); !reflect.DeepEqual(b, l) {
		t.Fatalf("the backup's change log (%d changes) is not the server's up to %d (%d changes)", len(b), head, len(l))
	}
	if int64(whole*10) != head {
		t.Fatalf("the backup holds %d whole change sets of 10 changes but its change log ends at %d", whole, head)
	}
	t.Logf("backup: %d of %d change sets, change log at %d of the server's %d", whole, len(all), head, liveHead)
}

func contains(list []*pushed, pd *pushed) bool {
	for _, x := range list {
		if x == pd {
			return true
		}
	}
	return false
}

// TestRestoredServerServesSamePulls backs up a running server, lets it
// change further, restores the backup into new data directories and
// checks that the restored servers answer a full pull exactly as the
// original did when the backup was taken: records, versions, fields,
// cursors. With --keys the original's tokens stay valid; without, access
// tokens are refused and refresh tokens still work.
func TestRestoredServerServesSamePulls(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end restore test")
	}
	dataDir := t.TempDir()
	cli(t, "admin-password\n", "user", "add", "--create", "--data", dataDir, "--name", "checker", "--role", "admin")
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	p := startBinary(t, dataDir)
	admin := login(t, p.url, "checker", "admin-password", uuid.NewString())
	tablet := storetest.NewDevice("tablet")
	worker := httpLogin(t, p.url, "worker", "worker-password", tablet.Actor.DeviceID)
	push := func(cs syncproto.Changeset) syncproto.PushResponse {
		t.Helper()
		resp, status, err := postPush(p.url, worker, cs)
		if err != nil || status != 200 {
			t.Fatalf("push: %d %v", status, err)
		}
		return resp
	}
	var households []string
	for range 20 {
		cs := fiveHouseholds(tablet)
		push(cs)
		households = append(households, cs.Changes[0].ID, cs.Changes[2].ID)
	}
	// Later versions and a delete, so that versions differ from 1.
	push(tablet.Changeset(storetest.Upsert("household", households[0], 1, storetest.T0.Add(time.Hour), map[string]any{"members": 6}),
		storetest.Upsert("household", households[1], 1, storetest.T0.Add(time.Hour), map[string]any{"members": 7}),
		storetest.Delete("household", households[2], 1, storetest.T0.Add(time.Hour))))

	before := pullPages(t, p.url, admin.AccessToken, 37)
	out := filepath.Join(t.TempDir(), "backup.db")
	cli(t, "", "backup", "--data", dataDir, "--out", out, "--keys")
	keyFiles, _ := os.ReadDir(out + ".keys")
	if fi, err := os.Stat(out + ".keys"); err != nil || fi.Mode().Perm() != 0o700 || len(keyFiles) < 2 {
		t.Fatalf("keys beside the backup: %v %v %v", fi, err, keyFiles)
	}
	for _, k := range keyFiles {
		if fi, err := k.Info(); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file %s: %v %v", k.Name(), fi.Mode(), err)
		}
	}
	// The original moves on after the backup.
	push(fiveHouseholds(tablet))
	push(tablet.Changeset(storetest.Upsert("household", households[3], 1, storetest.T0.Add(2*time.Hour), map[string]any{"members": 9})))
	if after := pullPages(t, p.url, admin.AccessToken, 37); reflect.DeepEqual(after, before) {
		t.Fatal("the original did not change after the backup")
	}

	// With the keys: the original's access token works on the restored server.
	restored := t.TempDir()
	printed := cli(t, "", "restore", "--data", restored, "--from", out)
	if !strings.Contains(printed, "signing keys restored") {
		t.Fatalf("restore did not restore the keys:\n%s", printed)
	}
	r := startBinary(t, restored)
	if got := pullPages(t, r.url, admin.AccessToken, 37); !reflect.DeepEqual(pageRecords(got), pageRecords(before)) {
		t.Fatalf("the restored server's pull differs from the original's at the backup:\n got %d pages\nwant %d pages", len(got), len(before))
	}
	// A cursor issued before the restore is refused, so that the tablet
	// pulls afresh instead of taking it for a position in the restored log.
	last := before[len(before)-1].Cursor
	resp, err := apitest.Authed(http.MethodGet, r.url+"/v1/sync/pull?cursor="+last, admin.AccessToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 422 {
		t.Fatalf("pull with a cursor from before the restore: %d, want 422", resp.StatusCode)
	}
	r.kill(t)

	// Without the keys: a new signing key, so the old access token is
	// refused, but the session (in the database) refreshes.
	noKeys := filepath.Join(t.TempDir(), "nokeys.db")
	if err := copyFile(out, noKeys, 0o600); err != nil {
		t.Fatal(err)
	}
	restored = t.TempDir()
	printed = cli(t, "", "restore", "--data", restored, "--from", noKeys)
	if !strings.Contains(printed, "the backup has no keys") {
		t.Fatalf("restore without keys:\n%s", printed)
	}
	r = startBinary(t, restored)
	resp, err = apitest.Authed(http.MethodGet, r.url+"/v1/sync/pull", admin.AccessToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("old access token on a server restored without keys: %d, want 401", resp.StatusCode)
	}
	b, _ := json.Marshal(map[string]string{"refresh_token": admin.RefreshToken})
	resp, err = apitest.HTTPClient.Post(r.url+"/v1/auth/refresh", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var fresh api.TokenResponse
	err = json.NewDecoder(resp.Body).Decode(&fresh)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("refresh on a server restored without keys: %d %v", resp.StatusCode, err)
	}
	if got := pullPages(t, r.url, fresh.AccessToken, 37); !reflect.DeepEqual(pageRecords(got), pageRecords(before)) {
		t.Fatal("the server restored without keys pulls differently from the original at the backup")
	}
}

// TestRestoreRefuses: restore leaves a data directory as it was when the
// database exists (without --force), when a server has it open, and when
// the file is not an intact fieldsync database.
func TestRestoreRefuses(t *testing.T) {
	dataDir := t.TempDir()
	cli(t, "admin-password\n", "user", "add", "--create", "--data", dataDir, "--name", "checker", "--role", "admin")
	good := filepath.Join(t.TempDir(), "good.db")
	cli(t, "", "backup", "--data", dataDir, "--out", good)

	target := t.TempDir()
	cli(t, "", "restore", "--data", target, "--from", good)
	db := filepath.Join(target, "fieldsync.db")
	original, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if out := cliFails(t, "restore", "--data", target, "--from", good); !strings.Contains(out, "--force") {
		t.Fatalf("refusal without --force does not mention it:\n%s", out)
	}
	if now, _ := os.ReadFile(db); !bytes.Equal(now, original) {
		t.Fatal("a refused restore changed the database")
	}

	// Not fieldsync databases: each is refused and leaves nothing behind.
	other := filepath.Join(t.TempDir(), "other.db")
	odb, err := sql.Open("sqlite", "file:"+other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odb.Exec("CREATE TABLE survey (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO survey (name) VALUES ('x')"); err != nil {
		t.Fatal(err)
	}
	odb.Close()
	corrupt := func(name string, edit func([]byte) []byte) string {
		b, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pageSize := 4096
	cases := []struct {
		name, file, says string
	}{
		{"another application's SQLite file", other, "no goose_db_version table"},
		{"a page overwritten", corrupt("overwritten.db", func(b []byte) []byte {
			for i := 2 * pageSize; i < 3*pageSize; i++ {
				b[i] = 0xA5
			}
			return b
		}), "not a usable fieldsync database"},
		{"truncated", corrupt("truncated.db", func(b []byte) []byte { return b[:len(b)/2] }), "not a usable fieldsync database"},
		{"not SQLite at all", corrupt("text.db", func([]byte) []byte { return bytes.Repeat([]byte("村"), 3000) }), "not a usable fieldsync database"},
		{"empty", corrupt("empty.db", func([]byte) []byte { return nil }), "not a usable fieldsync database"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fresh := t.TempDir()
			out := cliFails(t, "restore", "--data", fresh, "--from", tc.file)
			if !strings.Contains(out, tc.says) || !strings.Contains(out, "nothing was changed") {
				t.Fatalf("refusal does not say %q:\n%s", tc.says, out)
			}
			if left, _ := os.ReadDir(fresh); len(left) != 0 {
				t.Fatalf("a refused restore left %v", left)
			}
			cliFails(t, "restore", "--data", target, "--from", tc.file, "--force")
			if now, _ := os.ReadFile(db); !bytes.Equal(now, original) {
				t.Fatal("a refused restore with --force changed the database")
			}
		})
	}

	// A running server holds the database: even --force is refused.
	p := startBinary(t, target)
	if out := cliFails(t, "restore", "--data", target, "--from", good, "--force"); !strings.Contains(out, "open in another process") {
		t.Fatalf("restore under a running server:\n%s", out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("fieldsync exited with %v after SIGTERM", err)
	}

	// Stopped: --force puts the backup in place and keeps the old database aside.
	cli(t, "", "restore", "--data", target, "--from", good, "--force")
	var kept []string
	names, _ := filepath.Glob(filepath.Join(target, "fieldsync.db.before-restore-*"))
	for _, name := range names {
		if !strings.HasSuffix(name, "-wal") && !strings.HasSuffix(name, "-shm") {
			kept = append(kept, name)
		}
	}
	if len(kept) != 1 {
		t.Fatalf("old database kept as %v, want one file", kept)
	}
	mustIntegrityOK(t, openDB(t, kept[0]))
	mustIntegrityOK(t, openDB(t, db))
}

// TestBackupRefusesToOverwrite: an existing backup file, or the temporary
// file of another backup, is kept unless --force.
func TestBackupRefusesToOverwrite(t *testing.T) {
	dataDir := t.TempDir()
	cli(t, "admin-password\n", "user", "add", "--create", "--data", dataDir, "--name", "checker", "--role", "admin")
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(out, []byte("last week's backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := cliFails(t, "backup", "--data", dataDir, "--out", out); !strings.Contains(msg, "--force") {
		t.Fatalf("refusal does not mention --force:\n%s", msg)
	}
	if b, _ := os.ReadFile(out); string(b) != "last week's backup" {
		t.Fatal("a refused backup changed the file")
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("a refused backup left %s.tmp: %v", out, err)
	}

	out2 := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(out2+".tmp", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := cliFails(t, "backup", "--data", dataDir, "--out", out2); !strings.Contains(msg, "interrupted") {
		t.Fatalf("refusal over a temporary file:\n%s", msg)
	}

	cli(t, "", "backup", "--data", dataDir, "--out", out, "--force")
	mustIntegrityOK(t, openDB(t, out))
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v", fi.Mode(), err)
	}
	if msg := cliFails(t, "backup", "--data", t.TempDir(), "--out", filepath.Join(t.TempDir(), "x.db")); !strings.Contains(msg, "no database") {
		t.Fatalf("backup of an empty data directory:\n%s", msg)
	}
}

// pageRecords returns the records of pull pages, without their cursors
// (which a restored server signs anew).
func pageRecords(pages []syncproto.PullResponse) [][]syncproto.Record {
	out := make([][]syncproto.Record, len(pages))
	for i, p := range pages {
		out[i] = p.Records
	}
	return out
}
