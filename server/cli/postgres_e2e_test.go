package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestServeOnPostgres runs the real binary on PostgreSQL (--store): users
// made by `user add --store`, the demo data by `seed --store` (a second
// seed replays), a tablet's push acknowledged, the server
// killed and started again on a fresh data directory — the records are
// there, because the store is the database, not --data; export --store
// reads them. The store URL's
// password appears in no output.
func TestServeOnPostgres(t *testing.T) {
	c := pgtest.Shared(t)
	plain, drop, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	u, err := url.Parse(plain)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "not-in-any-log-7f3a"
	u.User = url.UserPassword("postgres", secret) // the test cluster trusts local connections: the password is unused
	store := u.String()

	const password = "a-long-password"
	out := cli(t, password+"\n", "user", "add", "--store", store, "--name", "worker.xituo", "--role", "field_worker", "--scope", "500240107")
	if !strings.Contains(out, "user worker.xituo created") || strings.Contains(out, secret) {
		t.Fatalf("user add: %s", out)
	}
	cli(t, password+"\n", "user", "add", "--store", store, "--name", "admin", "--role", "admin")
	// seed on the same database: the demo data through the push path,
	// the demo accounts that do not exist yet; a second run replays.
	st, err := fixtures.Stats()
	if err != nil {
		t.Fatal(err)
	}
	demo := st.Households + st.Persons + st.HousingInspections + st.WaterInspections + st.FollowupVisits
	if out := cli(t, "", "seed", "--store", store); !strings.Contains(out, fmt.Sprintf("applied %d,", demo)) || strings.Contains(out, secret) {
		t.Fatalf("seed: %s", out)
	}
	if out := cli(t, "", "seed", "--store", store); !strings.Contains(out, fmt.Sprintf("already loaded %d)", demo)) {
		t.Fatalf("seed again: %s", out)
	}
	first := t.TempDir()
	p := startBinary(t, first, "--store", store)
	dev := storetest.NewDevice("worker.xituo", "500240107")
	token := httpLogin(t, p.url, "worker.xituo", password, dev.Actor.DeviceID)
	cs := surveyChangeset(dev, 3)
	resp, status, err := postPush(p.url, token, cs)
	if err != nil || status != 200 || len(resp.Results) != 6 {
		t.Fatalf("push: %d %v %+v", status, err, resp)
	}
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			t.Fatalf("push: %+v", resp.Results)
		}
	}
	p.kill(t)
	// The signing keys are in the database: key rotate --store rotates
	// them.
	if out := cli(t, "", "key", "rotate", "--store", store); !strings.Contains(out, "is current for every server") || strings.Contains(out, secret) {
		t.Fatalf("key rotate: %s", out)
	}
	if p.logged(secret) {
		t.Fatal("serve logged the store's password")
	}

	again := startBinary(t, t.TempDir(), "--store", store)
	token = httpLogin(t, again.url, "worker.xituo", password, dev.Actor.DeviceID)
	admin := httpLogin(t, again.url, "admin", password, uuid.NewString())
	for _, ch := range cs.Changes {
		if !recordExists(t, again.url, admin, ch.Entity, ch.ID) {
			t.Fatalf("%s %s is not on the restarted server", ch.Entity, ch.ID)
		}
	}
	if resp, status, err := postPush(again.url, token, cs); err != nil || status != 200 || !resp.Replayed {
		t.Fatalf("the same change set again: %d %v replayed=%v", status, err, resp.Replayed)
	}
	if recordExists(t, again.url, admin, "household", uuid.NewString()) {
		t.Fatal("an unknown household exists")
	}
	// export reads the same database: the demo's 300 households and the
	// tablet's 3, one NDJSON line each.
	file := filepath.Join(t.TempDir(), "households.ndjson")
	cli(t, "", "export", "--store", store, "--entity", "household", "--out", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 303 {
		t.Fatalf("export: %d lines, want 303 households", n)
	}
	list := cli(t, "", "user", "list", "--store", store)
	if !strings.Contains(list, "worker.xituo") || strings.Contains(list, secret) {
		t.Fatalf("user list: %s", list)
	}
	if again.logged(secret) {
		t.Fatal("serve logged the store's password")
	}
}
