package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testConflictDepartments: every conflict names the department of each
// side, in ListConflicts, Conflict and Conflicts alike: the incoming
// change's (its change set's change log entry, or its user's when the
// change made no version) and the stored value's (the change log entry
// that wrote the field before it, not a later or an unrelated one).
func testConflictDepartments(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0.Add(time.Hour)))
	a := mustAccounts(t, s)
	if err := a.PutUser(t.Context(), auth.User{Name: "zhao.lei", PasswordHash: "h", Role: syncproto.RoleFieldWorker,
		Department: "civil_affairs"}); err != nil {
		t.Fatal(err)
	}
	creator, edu, civ := NewDevice("wang.fang"), NewDevice("li.na"), NewDevice("zhao.lei")
	creator.Actor.Department, edu.Actor.Department, civ.Actor.Department = "health", "education", "civil_affairs"

	// Both fields: li.na (education) wrote members and head_name at
	// version 2; zhao.lei (civil affairs) sends both from version 1: an
	// open conflict on members, head_name his (a version 3 of his).
	both := uuid.NewString()
	creator.Push(t, p, Household(both, SouthVillage, T0))
	edu.Push(t, p, Upsert("household", both, 1, T0.Add(time.Minute), map[string]any{"members": 6, "head_name": "陈秀芳"}))
	civ.Push(t, p, Upsert("household", both, 1, T0.Add(2*time.Minute), map[string]any{"members": 7, "head_name": "陈秀瑛"}))
	// Members only: li.na wrote members at version 2, wang.fang (health)
	// head_name at version 3; zhao.lei sends members from version 1: a
	// manual conflict that makes no version, so the incoming side's
	// department is its user's, and the stored value's is li.na's, not
	// that of the later change of another field.
	only := uuid.NewString()
	creator.Push(t, p, Household(only, SouthVillage, T0))
	edu.Push(t, p, Upsert("household", only, 1, T0.Add(time.Minute), map[string]any{"members": 6}))
	creator.Push(t, p, Upsert("household", only, 2, T0.Add(2*time.Minute), map[string]any{"head_name": "张玮"}))
	civ.Push(t, p, Upsert("household", only, 1, T0.Add(3*time.Minute), map[string]any{"members": 5}))

	want := map[string][2]string{both + " members": {"civil_affairs", "education"}, both + " head_name": {"civil_affairs", "education"},
		only + " members": {"civil_affairs", "education"}}
	check := func(how string, list []syncproto.ConflictEntry) {
		t.Helper()
		if len(list) != len(want) {
			t.Fatalf("%s: %d conflicts, want %d: %+v", how, len(list), len(want), list)
		}
		for _, c := range list {
			w, ok := want[c.RecordID+" "+c.Field]
			if !ok {
				t.Fatalf("%s: an unexpected conflict %+v", how, c)
			}
			if c.Department != w[0] || c.StoredDepartment != w[1] {
				t.Errorf("%s: %s of %s: departments incoming %q, stored %q; want %q, %q", how, c.Field, c.RecordID,
					c.Department, c.StoredDepartment, w[0], w[1])
			}
		}
	}
	list := listConflicts(t, s, All, "", 2)
	check("ListConflicts", list)
	every, err := s.Conflicts(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	check("Conflicts", every)
	var one []syncproto.ConflictEntry
	for _, c := range list {
		got, err := s.Conflict(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		one = append(one, *got)
	}
	check("Conflict", one)
}
