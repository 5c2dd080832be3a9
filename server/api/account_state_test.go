package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// TestDisabledAccountAndEndedSessionAreTold: a disabled user's token gets
// 401 /problems/account_disabled (and so does their login with the right
// password), which the client reports as ErrAccountDisabled, not as a
// login to redo; once enabled, the old session stays ended: 401
// /problems/session_ended, ErrLoginRequired, and a login makes the tablet
// sync again with its pending edit.
func TestDisabledAccountAndEndedSessionAreTold(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	hh, _ := apitest.SeedHousehold(t, ts)
	tab := apitest.NewTablet(t, ts, "worker", client.Options{})
	apitest.MustSync(t, tab)
	token := ts.Login(t, "worker", uuid.NewString())
	ctx := context.Background()
	problemOf := func(t *testing.T) api.Problem {
		t.Helper()
		resp, body := ts.DoAs(t, token, "GET", "/v1/sync/checksum", "", nil)
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != 401 || p.Status != 401 {
			t.Fatalf("want a 401: %d %s", resp.StatusCode, body)
		}
		return p
	}

	if err := ts.Store.SetUserDisabled(ctx, "worker", true, ts.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if p := problemOf(t); p.Type != "/problems/account_disabled" {
		t.Fatalf("a disabled user's token: %+v", p)
	}
	if err := tab.Update(ctx, "household", hh, client.Fields{"members": 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Sync(ctx); !errors.Is(err, client.ErrAccountDisabled) {
		t.Fatalf("sync of a disabled user: %v, want ErrAccountDisabled", err)
	}
	if err := tab.Login(ctx, ts.URL, "worker", apitest.TestPassword); !errors.Is(err, client.ErrAccountDisabled) {
		t.Fatalf("login of a disabled user: %v, want ErrAccountDisabled", err)
	}

	if err := ts.Store.SetUserDisabled(ctx, "worker", false, ts.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if p := problemOf(t); p.Type != "/problems/session_ended" {
		t.Fatalf("a token of the session disabling ended: %+v", p)
	}
	if _, err := tab.Sync(ctx); !errors.Is(err, client.ErrLoginRequired) {
		t.Fatalf("sync after enable, before a login: %v, want ErrLoginRequired", err)
	}
	if err := tab.Login(ctx, ts.URL, "worker", apitest.TestPassword); err != nil {
		t.Fatal(err)
	}
	if rep := apitest.MustSync(t, tab); rep.Pushed != 1 {
		t.Fatalf("the pending edit after the new login: %+v", rep)
	}
}
