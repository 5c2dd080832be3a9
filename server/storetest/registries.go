package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// registryRow is a row of the suite's registry source.
func registryRow(key, village string, line, members int) *syncproto.RegistryRow {
	return &syncproto.RegistryRow{Source: "poverty_registry", Key: key, Village: village, Line: line,
		Fields: map[string]json.RawMessage{"registration_no": json.RawMessage(fmt.Sprintf("%q", key)),
			"village": json.RawMessage(fmt.Sprintf("%q", village)), "members": json.RawMessage(fmt.Sprint(members))}}
}

// importRows imports rows as a file with the digest sha.
func importRows(t *testing.T, s syncproto.Store, sha string, rows ...*syncproto.RegistryRow) *syncproto.RegistryImport {
	t.Helper()
	imp, err := s.ImportRegistry(context.Background(), syncproto.RegistryImport{Source: "poverty_registry", SHA256: sha,
		FileName: "registry.csv", ImportedBy: "admin", ImportedAt: T0}, func(put func(*syncproto.RegistryRow) error) error {
		for _, r := range rows {
			if err := put(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imp
}

func sha(c byte) string { return string(slices.Repeat([]byte{c}, 64)) }

// An import is a version of its source: rows by key, the same file again
// changes nothing and makes no version, another file's diff is added,
// changed and removed by key; rows come by village, source and key, in
// the reader's scope.
func testRegistryImportsAreVersioned(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, NewClock(T0))
	if imp, err := s.LatestImport(ctx, "poverty_registry"); err != nil || imp != nil {
		t.Fatalf("latest before any import = %+v, %v", imp, err)
	}
	first := importRows(t, s, sha('a'), registryRow("R3", SouthVillage, 2, 4), registryRow("R1", NorthVillage, 3, 2), registryRow("R2", SouthVillage, 4, 5))
	if first.Version != 1 || first.Rows != 3 || first.Added != 3 || first.Changed+first.Removed+first.Unchanged != 0 || first.Same {
		t.Fatalf("first import = %+v", first)
	}
	again := importRows(t, s, sha('a'), registryRow("X", SouthVillage, 2, 1))
	if !again.Same || again.Version != 1 || again.Rows != 3 {
		t.Fatalf("the same file again = %+v, want version 1 with Same", again)
	}
	second := importRows(t, s, sha('b'), registryRow("R2", SouthVillage, 2, 6), registryRow("R3", SouthVillage, 3, 4), registryRow("R4", SouthVillage, 4, 3))
	if second.Version != 2 || second.Rows != 3 || second.Added != 1 || second.Changed != 1 || second.Removed != 1 || second.Unchanged != 1 {
		t.Fatalf("second import = %+v", second)
	}
	imps, err := s.RegistryImports(ctx, "poverty_registry")
	if err != nil || len(imps) != 2 || imps[0].Version != 1 || imps[1].Version != 2 || imps[1].SHA256 != sha('b') || imps[1].ImportedBy != "admin" || !imps[1].ImportedAt.Equal(T0) {
		t.Fatalf("imports = %+v, %v", imps, err)
	}
	if all, err := s.RegistryImports(ctx, ""); err != nil || len(all) != 2 {
		t.Fatalf("every source's imports = %+v, %v", all, err)
	}
	if latest, err := s.LatestImport(ctx, "poverty_registry"); err != nil || latest.Version != 2 || latest.FileName != "registry.csv" {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	diff, err := s.RegistryDiff(ctx, "poverty_registry", 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range diff {
		got = append(got, fmt.Sprintf("%s %s %s→%s", c.Key, c.Op, c.Before["members"], c.After["members"]))
	}
	if want := []string{"R1 removed 2→", "R2 changed 5→6", "R4 added →3"}; !slices.Equal(got, want) {
		t.Errorf("diff = %v, want %v", got, want)
	}
	if _, err := s.RegistryDiff(ctx, "poverty_registry", 3); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Errorf("diff of no import: %v, want not found", err)
	}
	var rows []string
	if err := s.RegistryRows(ctx, All, func(r *syncproto.RegistryRow) error {
		rows = append(rows, fmt.Sprintf("%s %s %d v%d %s", r.Village, r.Key, r.Line, r.Version, r.Fields["members"]))
		if !r.ImportedAt.Equal(T0) {
			t.Errorf("row %s imported at %v", r.Key, r.ImportedAt)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{SouthVillage + " R2 2 v2 6", SouthVillage + " R3 3 v1 4", SouthVillage + " R4 4 v2 3"}
	if !slices.Equal(rows, want) {
		t.Errorf("rows = %v, want %v", rows, want)
	}
	rows = nil
	north := syncproto.Actor{UserID: "s", Role: syncproto.RoleSupervisor, Scope: []string{"150422"}}
	importRows(t, s, sha('c'), registryRow("R1", NorthVillage, 2, 2), registryRow("R2", SouthVillage, 3, 6))
	if err := s.RegistryRows(ctx, north, func(r *syncproto.RegistryRow) error { rows = append(rows, r.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, []string{"R1"}) {
		t.Errorf("rows in 150422 = %v", rows)
	}
	// A file of one county replaces that county's rows only.
	county, err := s.ImportRegistry(ctx, syncproto.RegistryImport{Source: "poverty_registry", SHA256: sha('d'), ImportedBy: "s", ImportedAt: T0, Scope: []string{"150422"}},
		func(put func(*syncproto.RegistryRow) error) error { return put(registryRow("R9", NorthVillage, 2, 1)) })
	if err != nil || county.Added != 1 || county.Removed != 1 {
		t.Fatalf("a county's import = %+v, %v; want R9 added and R1 removed", county, err)
	}
	rows = nil
	if err := s.RegistryRows(ctx, All, func(r *syncproto.RegistryRow) error { rows = append(rows, r.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, []string{"R9", "R2"}) {
		t.Errorf("rows after a county's import = %v, want R9 and the other county's R2", rows)
	}
}

// An import that fails keeps nothing of its rows; a key twice in a file is
// a RowError at the second line naming the first.
func testRegistryImportIsAtomic(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, NewClock(T0))
	importRows(t, s, sha('a'), registryRow("R1", SouthVillage, 2, 4))
	boom := errors.New("bad row")
	_, err := s.ImportRegistry(ctx, syncproto.RegistryImport{Source: "poverty_registry", SHA256: sha('b'), ImportedBy: "admin", ImportedAt: T0},
		func(put func(*syncproto.RegistryRow) error) error {
			if err := put(registryRow("R1", SouthVillage, 2, 9)); err != nil {
				return err
			}
			if err := put(registryRow("R5", SouthVillage, 3, 1)); err != nil {
				return err
			}
			return boom
		})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the rows' error", err)
	}
	var dup *syncproto.RowError
	_, err = s.ImportRegistry(ctx, syncproto.RegistryImport{Source: "poverty_registry", SHA256: sha('c'), ImportedBy: "admin", ImportedAt: T0},
		func(put func(*syncproto.RegistryRow) error) error {
			if err := put(registryRow("R7", SouthVillage, 2, 1)); err != nil {
				return err
			}
			return put(registryRow("R7", SouthVillage, 5, 1))
		})
	if !errors.As(err, &dup) || dup.Line != 5 || dup.Message != "its key is the key of line 2 too" {
		t.Fatalf("a key twice: %v", err)
	}
	imps, err := s.RegistryImports(ctx, "")
	if err != nil || len(imps) != 1 {
		t.Fatalf("imports after the failures = %+v, %v", imps, err)
	}
	var rows []string
	if err := s.RegistryRows(ctx, All, func(r *syncproto.RegistryRow) error {
		rows = append(rows, fmt.Sprintf("%s %s", r.Key, r.Fields["members"]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, []string{"R1 4"}) {
		t.Errorf("rows after the failures = %v, want the first import's", rows)
	}
}

// RegistryVillages gives each village of the scope once, in code order,
// with its households (their children with Children) and its registry
// rows: a village of households only, of rows only, or of both.
func testRegistryVillages(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	p := syncproto.NewPushService(s, syncproto.PushOptions{Now: NewClock(T0).Now, Schema: withPersons(t)})
	dev := NewDevice("li.na")
	at := T0.Add(-time.Hour)
	south, north, child := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev.Push(t, p, Household(south, SouthVillage, at), Household(north, NorthVillage, at),
		Upsert("person", child, 0, at, map[string]any{"household_id": south, "birth_year": 2015, "schooling": "enrolled"}))
	const rowsOnly = "500240107202"
	importRows(t, s, sha('a'), registryRow("R1", SouthVillage, 2, 4), registryRow("R2", rowsOnly, 3, 2), registryRow("R3", SouthVillage, 4, 1))
	read := func(actor syncproto.Actor) []string {
		var got []string
		_, err := s.RegistryVillages(t.Context(), actor, syncproto.HouseholdQuery{Forms: v1Forms, Children: true}, func(v *syncproto.RegistryVillage) error {
			line := v.Village + ":"
			for _, h := range v.Households {
				line += " h" + map[string]string{south: "south", north: "north"}[h.ID] + fmt.Sprintf("(%d)", len(h.Children))
			}
			for _, r := range v.Rows {
				line += " " + r.Key
			}
			got = append(got, line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := read(All), []string{NorthVillage + ": hnorth(0)", SouthVillage + ": hsouth(1) R1 R3", rowsOnly + ": R2"}; !slices.Equal(got, want) {
		t.Errorf("every region: %v, want %v", got, want)
	}
	county := syncproto.Actor{UserID: "s", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	if got, want := read(county), []string{SouthVillage + ": hsouth(1) R1 R3", rowsOnly + ": R2"}; !slices.Equal(got, want) {
		t.Errorf("500240: %v, want %v", got, want)
	}
}

// A user keeps their department, and the change log the department of the
// actor of each version.
func testDepartments(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	a := mustAccounts(t, s)
	if err := a.PutUser(t.Context(), auth.User{Name: "li", PasswordHash: "h", Role: syncproto.RoleFieldWorker, Scope: []string{"500240"}, Department: "education"}); err != nil {
		t.Fatal(err)
	}
	if u, err := a.User(t.Context(), "li"); err != nil || u.Department != "education" {
		t.Fatalf("user = %+v, %v", u, err)
	}
	if list, err := a.Users(t.Context()); err != nil || len(list) != 1 || list[0].Department != "education" {
		t.Fatalf("users = %+v, %v", list, err)
	}
	dev := NewDevice("li", "500240")
	dev.Actor.Department = "education"
	h := uuid.NewString()
	dev.Push(t, p, Household(h, SouthVillage, T0))
	hist, err := s.History(t.Context(), h)
	if err != nil || len(hist) != 1 || hist[0].Department != "education" || hist[0].UserID != "li" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
}
