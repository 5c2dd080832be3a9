package api_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPushReportsEveryErrorOfAChangeAtOnce: a new household with a
// misspelt field, a bad value and a missing required field is rejected
// with all three errors in one answer (not the missing field only on the
// next push), and a required field sent with a bad value is reported once,
// for its value.
func TestPushReportsEveryErrorOfAChangeAtOnce(t *testing.T) {
	s := mustSupervise(t)
	ch := storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{
		"village": "5002401072", "nmae": "陈秀英", "members": 0, "category": "registered_poor"})
	pr := s.push(t, s.workerTok, s.worker, ch)
	res := pr.Results[0]
	if res.Status != syncproto.StatusRejected {
		t.Fatalf("want rejected: %+v", res)
	}
	var got []string
	for _, e := range res.Errors {
		got = append(got, e.Path+": "+e.Message)
	}
	sort.Strings(got)
	want := []string{
		"fields.head_name: is required",
		"fields.members: must be between 1 and 30",
		"fields.nmae: unknown field of household",
		"fields.village: must be a 12-digit division code",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
