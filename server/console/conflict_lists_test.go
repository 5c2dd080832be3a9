package console_test

import (
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestConflictsPageNamesTheListsBySource: a conflict a department's list
// raised names that department's list in the console's words
// ("名单：医疗保障局"), not the import's internal user
// ("department:health_insurance").
func TestConflictsPageNamesTheListsBySource(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, _ := fixtures.DemoRegistries()
	for _, f := range files {
		importRegistry(t, ts, admin, f.Source, f.Data)
	}
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	_, page := v.do("GET", "/console/conflicts", nil, nil)
	if !strings.Contains(page, "名单：医疗保障局") {
		t.Errorf("no conflict names the medical-insurance list as 名单：医疗保障局")
	}
	if strings.Contains(page, "department:") {
		t.Errorf("the conflicts page shows an import's internal user (department:…)")
	}
}
