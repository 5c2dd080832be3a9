package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var householdLink = regexp.MustCompile(`href="/console/households/([0-9a-f-]{36})"`)

// TestHouseholdPageSpeaksTheConsolesLanguage: on the page of a demo
// household registered as lifted out (the loader's admin, flag
// "registered"), the history names that once, on the status row, in the
// console's words (zh, and en after the switch) instead of the version's
// English note on every field; and the member form (version 3's person)
// is titled in the page's language.
func TestHouseholdPageSpeaksTheConsolesLanguage(t *testing.T) {
	ts := demo(t)
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	_, village := v.do("GET", "/console/region/500240107201", nil, nil)
	const zhNote, enNote = "建档时随记录登记的状态，尚未核验", "status registered with the record, not yet verified"
	var page, id string
	for _, m := range householdLink.FindAllStringSubmatch(village, -1) {
		if _, body := v.do("GET", "/console/households/"+m[1], nil, nil); strings.Contains(body, zhNote) {
			page, id = body, m[1]
			break
		}
	}
	if page == "" {
		t.Fatal("no household of 独庄村 shows the registered status's note")
	}
	if n := strings.Count(page, zhNote); n != 1 {
		t.Errorf("the registered status's note is shown %d times, want once (the status row)", n)
	}
	if strings.Contains(page, "registered by a") {
		t.Error("the page shows the version's English note")
	}
	if !strings.Contains(page, "家庭成员") || strings.Contains(page, "Household member") {
		t.Error("the member form is not titled 家庭成员 on the Chinese page")
	}
	if resp, _ := v.do("GET", "/console/lang/en", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("switching to English: %d", resp.StatusCode)
	}
	_, en := v.do("GET", "/console/households/"+id, nil, nil)
	if strings.Count(en, enNote) != 1 || !strings.Contains(en, "Household member") {
		t.Errorf("the English page lacks the note once or the member form's title")
	}
}

// TestReinspectionReasonsInTheConsolesLanguage: the re-inspection queue
// names each reason by its label (危房未改造, in English "Dangerous
// house"), not by its code.
func TestReinspectionReasonsInTheConsolesLanguage(t *testing.T) {
	ts := demo(t)
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	_, zh := v.do("GET", "/console/reinspections", nil, nil)
	if !strings.Contains(zh, ">危房未改造<") || strings.Contains(zh, ">dangerous_house<") {
		t.Errorf("the Chinese queue's reasons are not labelled")
	}
	v.do("GET", "/console/lang/en", nil, nil)
	if _, en := v.do("GET", "/console/reinspections", nil, nil); !strings.Contains(en, ">Dangerous house<") {
		t.Errorf("the English queue's reasons are not labelled")
	}
}
