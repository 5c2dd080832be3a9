package client_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// TestClientReportsEveryErrorOfACreateAtOnce: the tablet's own check of a
// new record names a misspelt field and a missing required one together.
func TestClientReportsEveryErrorOfACreateAtOnce(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	tab := apitest.NewTablet(t, ts, "worker", client.Options{})
	var verr *client.ValidationError
	_, err := tab.Create(context.Background(), "household", client.Fields{"village": "500240107201", "nmae": "陈秀英"})
	if !errors.As(err, &verr) {
		t.Fatalf("want a validation error: %v", err)
	}
	var paths []string
	for _, e := range verr.Errors {
		paths = append(paths, e.Path)
	}
	sort.Strings(paths)
	if got := strings.Join(paths, " "); got != "fields.head_name fields.nmae" {
		t.Fatalf("errors at %s, want fields.head_name and fields.nmae", got)
	}
}
