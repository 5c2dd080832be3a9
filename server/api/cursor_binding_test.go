package api_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A pull cursor serves only the device it was issued to. Another county's
// device pulling with it gets a 422 that names none of the cursor's
// records (today's code answered with every record of the first county as
// a removal). A cursor issued before cursors were bound (no device in it)
// still works for a tablet of the scope it names, which gets a bound one
// back, and is refused for any other scope. Checksum's cursor is bound
// like pull's, so a tablet can still compare the two.
func TestPullCursorIsBoundToItsDevice(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker.south", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "worker.north", syncproto.RoleFieldWorker, "150422")
	admin := storetest.NewDevice("admin")
	var south []string
	var changes []syncproto.Change
	for i := 0; i < 5; i++ {
		id := uuid.NewString()
		south = append(south, id)
		changes = append(changes, storetest.Household(id, storetest.SouthVillage, storetest.T0))
	}
	changes = append(changes, storetest.Household(uuid.NewString(), storetest.NorthVillage, storetest.T0))
	if resp, b := ts.PushJSON(t, admin.Changeset(changes...)); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	southDev, northDev := uuid.NewString(), uuid.NewString()
	southTok := ts.Login(t, "worker.south", southDev)
	northTok := ts.Login(t, "worker.north", northDev)
	pull := func(token, cursor string) (int, []byte, syncproto.PullResponse) {
		resp, body := ts.DoAs(t, token, "GET", "/v1/sync/pull?limit=100&cursor="+url.QueryEscape(cursor), "", nil)
		var page syncproto.PullResponse
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, body, page
	}
	status, body, page := pull(southTok, "")
	if status != 200 || len(page.Records) != 5 || page.HasMore {
		t.Fatalf("south pull: %d %s", status, body)
	}
	southCursor := page.Cursor

	refused := func(what string, status int, body []byte) {
		t.Helper()
		if status != 422 || !strings.Contains(string(body), `"path":"cursor"`) {
			t.Fatalf("%s: %d %s, want 422 at path cursor", what, status, body)
		}
		for _, id := range south {
			if strings.Contains(string(body), id) {
				t.Fatalf("%s: the refusal names a record of the cursor's scope: %s", what, body)
			}
		}
	}
	status, body, _ = pull(northTok, southCursor)
	refused("another county's device with the cursor", status, body)
	// The same user on another device: the cursor is the first device's.
	status, body, _ = pull(ts.Login(t, "worker.south", uuid.NewString()), southCursor)
	refused("the same user on another device", status, body)

	// A cursor as the server issued them before binding: scope, no device.
	bound, err := ts.Push.Cursors().Parse(southCursor)
	if err != nil || bound.Device != southDev {
		t.Fatalf("the pull cursor %+v (%v) is not bound to device %s", bound, err, southDev)
	}
	legacy := ts.Push.Cursors().Encode(syncproto.Cursor{Seq: bound.Seq, Scope: bound.Scope})
	status, body, _ = pull(northTok, legacy)
	refused("another county's device with an unbound cursor", status, body)
	status, body, page = pull(southTok, legacy)
	if status != 200 || len(page.Records) != 0 || page.Cursor != southCursor {
		t.Fatalf("the unbound cursor of the south scope from a south tablet: %d %s, want an empty page and the bound cursor %s", status, body, southCursor)
	}

	resp, body := ts.DoAs(t, southTok, "GET", "/v1/sync/checksum", "", nil)
	var sum syncproto.ChecksumResponse
	if err := json.Unmarshal(body, &sum); err != nil || resp.StatusCode != 200 || sum.Cursor != southCursor {
		t.Fatalf("checksum: %d %s, want the cursor %s", resp.StatusCode, body, southCursor)
	}
	status, body, _ = pull(northTok, sum.Cursor)
	refused("another county's device with a checksum cursor", status, body)
}
