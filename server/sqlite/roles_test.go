package sqlite

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// renamedGradeForms are the built-in forms with the housing appraisal's
// grade field named "appraisal_grade" (and its role saying so).
func renamedGradeForms(t *testing.T) *schema.Schema {
	t.Helper()
	// The built-in form files of the latest version (what the generator
	// writes), with its standards.
	src := fstest.MapFS{}
	seen := map[string]bool{}
	latest := strconv.Itoa(schema.BuiltIn().Latest().Version)
	err := fs.WalkDir(os.DirFS("../../schema/forms"), latest, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".json") || path.Base(name) == "version.json" {
			return err
		}
		if path.Base(name) == schema.StandardsFile {
			b, err := fs.ReadFile(os.DirFS("../../schema/forms"), name)
			src["forms/"+schema.StandardsFile] = &fstest.MapFile{Data: b}
			return err
		}
		b, err := fs.ReadFile(os.DirFS("../../schema/forms"), name)
		if err != nil {
			return err
		}
		var form struct{ Entity string }
		if err := json.Unmarshal(b, &form); err != nil || form.Entity == "" || seen[form.Entity] {
			return err
		}
		seen[form.Entity] = true
		if strings.Contains(string(b), `"entity": "housing_inspection"`) {
			// The field, the role's mapping, and the criterion rules that
			// read it (version 3's house_safe).
			rules := strings.Count(string(b), `"field": "grade"`)
			s := strings.Replace(string(b), `{"name": "grade",`, `{"name": "appraisal_grade",`, 1)
			s = strings.Replace(s, `"grade": "grade"`, `"grade": "appraisal_grade"`, 1)
			s = strings.ReplaceAll(s, `"field": "grade"`, `"field": "appraisal_grade"`)
			if s == string(b) || strings.Count(s, "appraisal_grade") != 2+rules {
				t.Fatalf("the housing form's grade field was not renamed")
			}
			b = []byte(s)
		}
		src["forms/"+path.Base(name)] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil || len(seen) != len(schema.BuiltIn().Latest().Forms) {
		t.Fatalf("built-in forms: %v %v", seen, err)
	}
	sch, err := schema.Load(src, "forms")
	if err != nil {
		t.Fatal(err)
	}
	if sch.Form("housing_inspection").Field("grade") != nil || survey.FormsOf(sch).Grade != "appraisal_grade" {
		t.Fatal("the renamed form set still has a grade field")
	}
	return sch
}

// TestReportsReadTheFormsRoles: the reports read the forms' roles, not
// names in code. The same generated villages, pushed once under the v1
// forms and once under forms whose housing grade field is renamed (the
// housing changes renamed alike), give the same coverage and the same
// re-inspection list.
func TestReportsReadTheFormsRoles(t *testing.T) {
	renamed := renamedGradeForms(t)
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	v1Store, renamedStore := MustOpen(t, clock), MustOpen(t, clock)
	v1Push := syncproto.NewPushService(v1Store, syncproto.PushOptions{Schema: schema.BuiltIn().Latest(), Now: clock.Now})
	renamedPush := syncproto.NewPushService(renamedStore, syncproto.PushOptions{Schema: renamed, Now: clock.Now})
	dev := storetest.NewDevice("loader")
	twin := storetest.NewDevice("loader")
	// A loader registers households with their status (lifted_out is set
	// by a deciding role: docs/forms.md, Decided values).
	dev.Actor.Role, twin.Actor.Role = syncproto.RoleAdmin, syncproto.RoleAdmin
	var a, b []syncproto.Change
	flush := func() {
		if len(a) > 0 {
			checkApplied(t, dev.Push(t, v1Push, a...))
			checkApplied(t, twin.Push(t, renamedPush, b...))
			a, b = a[:0], b[:0]
		}
	}
	graded := 0
	err := fixtures.Generate(fixtures.GenConfig{Seed: 11, Households: 400, Counties: 2}, func(c syncproto.Change) error {
		r := c
		if c.Entity == "housing_inspection" {
			r.Fields = map[string]json.RawMessage{}
			for k, v := range c.Fields {
				if k == "grade" {
					k = "appraisal_grade"
					graded++
				}
				r.Fields[k] = v
			}
		}
		a, b = append(a, c), append(b, r)
		if len(a) == 500 {
			flush()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	flush()
	if graded == 0 {
		t.Fatal("no housing inspection with a grade was generated")
	}

	coverage := func(r *syncproto.ReportService, s *Store) ([]*survey.VillageCoverage, *syncproto.CoverageReport) {
		var villages []*survey.VillageCoverage
		sum, err := r.Coverage(ctx, storetest.All, func(v *survey.VillageCoverage) error { villages = append(villages, v); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return villages, sum
	}
	v1Reports := syncproto.NewReportService(v1Store, syncproto.ReportOptions{Schema: schema.BuiltIn().Latest()})
	renamedReports := syncproto.NewReportService(renamedStore, syncproto.ReportOptions{Schema: renamed})
	v1Villages, v1Sum := coverage(v1Reports, v1Store)
	renamedVillages, renamedSum := coverage(renamedReports, renamedStore)
	if v1Sum.Totals.WithHousing == 0 || len(v1Sum.Totals.Grades) == 0 || v1Sum.Totals.Grades["D"]+v1Sum.Totals.Grades["C"] == 0 {
		t.Fatalf("the v1 coverage counts no graded houses: %+v", v1Sum.Totals)
	}
	if !reflect.DeepEqual(v1Villages, renamedVillages) || !reflect.DeepEqual(v1Sum.CoverageSummary, renamedSum.CoverageSummary) {
		t.Errorf("coverage differs with the grade field renamed:\nv1 totals      %+v\nrenamed totals %+v", v1Sum.Totals, renamedSum.Totals)
	}

	due := func(r *syncproto.ReportService) ([]*survey.DueHousehold, *syncproto.ReinspectionReport) {
		var list []*survey.DueHousehold
		sum, err := r.Reinspections(ctx, storetest.All, survey.ReinspectionQuery{Now: clock.Now(), After: 365 * 24 * time.Hour},
			func(d *survey.DueHousehold) error { list = append(list, d); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return list, sum
	}
	v1Due, v1DueSum := due(v1Reports)
	renamedDue, renamedDueSum := due(renamedReports)
	if len(v1Due) == 0 || v1DueSum.ByReason[survey.ReasonDangerousHouse] == 0 {
		t.Fatalf("the v1 re-inspection list has no dangerous house: %+v", v1DueSum)
	}
	if !reflect.DeepEqual(v1Due, renamedDue) || !reflect.DeepEqual(v1DueSum.ReinspectionSummary, renamedDueSum.ReinspectionSummary) {
		t.Errorf("re-inspection list differs with the grade field renamed: %d vs %d households, %+v vs %+v",
			len(v1Due), len(renamedDue), v1DueSum.ByReason, renamedDueSum.ByReason)
	}
}

// checkApplied fails the test when a change of a push was rejected.
func checkApplied(t *testing.T, resp syncproto.PushResponse) {
	t.Helper()
	for _, r := range resp.Results {
		if r.Status == syncproto.StatusRejected {
			t.Fatalf("change %s rejected: %v", r.ID, r.Errors)
		}
	}
}
