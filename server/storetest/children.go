package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// personForm is a child form of the household that no report's role
// names: the stream's children must come whatever forms a version adds.
const personForm = `{"entity": "person", "title": "Person",
 "parent": {"field": "household_id", "entity": "household"},
 "fields": [
  {"name": "household_id", "type": "reference", "entity": "household", "required": true, "policy": "manual"},
  {"name": "birth_year", "type": "integer", "policy": "lww"},
  {"name": "schooling", "type": "enum", "values": ["enrolled", "dropped_out"], "policy": "lww"}]}`

// withPersons is the v1 forms with personForm added.
func withPersons(t *testing.T) *schema.Schema {
	t.Helper()
	b, err := json.Marshal(schema.V1())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version int               `json:"schema_version"`
		Forms   []json.RawMessage `json:"forms"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc.Forms = append(doc.Forms, json.RawMessage(personForm))
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	sch, err := schema.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// testHouseholdChildren: with Children, HouseholdInspections gives each
// household its whole fields and every live record of every child form —
// persons of a form no role names, the inspections too — with their
// whole fields, from the same read; deleted children and other scopes'
// households stay out, and the inspections are what they are without it.
// Without Children, neither comes.
func testHouseholdChildren(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	p := syncproto.NewPushService(s, syncproto.PushOptions{Now: NewClock(T0).Now, Schema: withPersons(t)})
	dev := NewDevice("li.na")
	at := T0.Add(-time.Hour)
	h, other := uuid.NewString(), uuid.NewString()
	child, adult, gone, housing, water := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	person := func(id, household string, year int) syncproto.Change {
		return Upsert("person", id, 0, at, map[string]any{"household_id": household, "birth_year": year, "schooling": "enrolled"})
	}
	dev.Push(t, p, Household(h, SouthVillage, at), Household(other, NorthVillage, at),
		person(child, h, 2015), person(adult, h, 1980), person(gone, h, 1950), person(uuid.NewString(), other, 2000),
		HousingInspection(housing, h, "B", at), WaterInspection(water, h, at))
	dev.Push(t, p, Delete("person", gone, 1, at))

	scoped := syncproto.Actor{UserID: "w", Scope: []string{"500240"}}
	q := syncproto.HouseholdQuery{Forms: v1Forms, Children: true}
	var got []string
	_, err := s.HouseholdInspections(t.Context(), scoped, q, func(hh *survey.HouseholdInspections) error {
		got = append(got, hh.ID)
		if hh.ID != h {
			return nil
		}
		if string(hh.Fields["head_name"]) != `"陈秀英"` || string(hh.Fields["village"]) != `"`+SouthVillage+`"` {
			t.Errorf("household fields = %v", hh.Fields)
		}
		children := map[string]string{}
		for _, r := range hh.Children {
			children[r.ID] = r.Entity
			if r.Seq == 0 || r.UpdatedAt.IsZero() || string(r.Fields["household_id"]) != `"`+h+`"` {
				t.Errorf("child %s: %+v", r.ID, r)
			}
			if r.ID == child && string(r.Fields["birth_year"]) != "2015" {
				t.Errorf("the child's fields: %v", r.Fields)
			}
		}
		want := map[string]string{child: "person", adult: "person", housing: "housing_inspection", water: "water_inspection"}
		if len(children) != len(want) {
			t.Errorf("children = %v, want %v", children, want)
		}
		for id, entity := range want {
			if children[id] != entity {
				t.Errorf("child %s = %q, want %s", id, children[id], entity)
			}
		}
		if len(hh.Inspections) != 2 {
			t.Errorf("inspections = %+v, want the housing and the water one", hh.Inspections)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != h {
		t.Fatalf("streamed %v, want the household of 500240 alone", got)
	}
	_, err = s.HouseholdInspections(t.Context(), scoped, syncproto.HouseholdQuery{Forms: v1Forms}, func(hh *survey.HouseholdInspections) error {
		if hh.Fields != nil || hh.Children != nil || len(hh.Inspections) != 2 {
			t.Errorf("without Children: fields %v, children %v, %d inspections", hh.Fields, hh.Children, len(hh.Inspections))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
