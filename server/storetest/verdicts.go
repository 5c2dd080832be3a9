package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/syncproto"
)

// verdictStore returns the store's VerdictStore, or skips the test for a
// store that keeps no verdicts (the roll-ups then judge every household).
func verdictStore(t *testing.T, s syncproto.Store) syncproto.VerdictStore {
	t.Helper()
	vs, ok := s.(syncproto.VerdictStore)
	if !ok {
		t.Skip("the store keeps no household verdicts (syncproto.VerdictStore)")
	}
	return vs
}

// verdictWorld drives random writes of the built-in forms' latest version
// (households with their verification fields, persons, inspections,
// follow-up visits) through the services.
type verdictWorld struct {
	summaryWorld
	persons map[string][]string // a household's persons and visits, by id
	// outcomes counts the pushed changes by status, so that the
	// property knows its writes were taken.
	outcomes map[string]int
}

// supervisorDevice is a device of a supervisor of every region, who may
// set the statuses that are decided (lifted out).
func supervisorDevice(user string) *Device {
	d := NewDevice(user)
	d.Actor.Role = syncproto.RoleSupervisor
	return d
}

// push pushes the changes from a random device and counts their outcomes.
func (w *verdictWorld) push(changes ...syncproto.Change) {
	for _, r := range w.device().Push(w.t, w.p, changes...).Results {
		w.outcomes[r.Status]++
		if r.Status == "rejected" && w.outcomes["rejected"] < 3 {
			w.t.Logf("rejected: %+v", r.Errors)
		}
	}
}

func (w *verdictWorld) date(back int) string {
	return w.clock.Now().AddDate(0, 0, -w.rng.IntN(back+1)).Format(time.DateOnly)
}

// step makes one random write, or moves the clock on by up to two months.
func (w *verdictWorld) step() {
	t, ctx := w.t, context.Background()
	w.clock.Advance(time.Minute)
	at := w.clock.Now()
	pick := func(list ...string) string { return list[w.rng.IntN(len(list))] }
	switch op := w.rng.IntN(16); {
	case op < 2 || len(w.house) == 0:
		id := uuid.NewString()
		village := summaryVillages[w.rng.IntN(len(summaryVillages))]
		reg := fmt.Sprintf("%s%04d", village, w.rng.IntN(1000))
		if w.rng.IntN(4) == 0 {
			reg = village + "0001" // a likely duplicate
		}
		fields := map[string]any{"village": village, "head_name": "陈秀英", "registration_no": reg, "members": 1 + w.rng.IntN(6),
			"categories": []string{"registered_poor"}, "status": pick("in_poverty", "lifted_out", "relapse_risk"),
			"food_assured": w.rng.IntN(5) > 0, "clothing_assured": w.rng.IntN(6) > 0, "food_clothing_checked": "home_visit"}
		if w.rng.IntN(5) == 0 {
			delete(fields, "food_assured")
			delete(fields, "clothing_assured")
			delete(fields, "food_clothing_checked")
		}
		w.push(Upsert("household", id, 0, at, fields))
		w.house = append(w.house, id)
	case op < 5:
		if hh, kids := w.live(), w.persons[w.live()]; hh != "" && len(kids) > 0 && w.rng.IntN(2) == 0 {
			// A person or visit recorded under the wrong household
			// moves to another.
			id := kids[w.rng.IntN(len(kids))]
			if r, _ := w.s.Record(ctx, id); r != nil && !r.Deleted && r.Parent != hh {
				w.push(Upsert(r.Entity, id, r.Version, at, map[string]any{"household_id": hh}))
				w.outcomes["repointed"]++
			}
		} else if hh := w.live(); hh != "" {
			id := uuid.NewString()
			fields := map[string]any{"household_id": hh, "name": "陈小明", "relation": pick("head", "child", "spouse"),
				"birth_year": at.Year() - 3 - w.rng.IntN(18), "schooling": pick("enrolled", "boarding", "dropped_out", "exempt"),
				"medical_insurance": w.rng.IntN(6) > 0, "illness": pick("none", "none", "chronic"), "treatment": pick("none", "under_treatment")}
			if fields["schooling"] == "exempt" {
				fields["exempt_reason"] = "disability"
			}
			w.push(Upsert("person", id, 0, at, fields))
			w.persons[hh] = append(w.persons[hh], id)
		}
	case op < 7:
		if hh := w.live(); hh != "" {
			id := uuid.NewString()
			w.push(Upsert("housing_inspection", id, 0, at, map[string]any{"household_id": hh,
				"grade": pick("A", "B", "B", "C"), "inspected_on": w.date(400), "ventilation": "adequate", "heating_insulation": "adequate",
				"renovation": "none", "hazards": []string{}}))
			w.insp[hh] = append(w.insp[hh], id)
		}
	case op < 9:
		if hh := w.live(); hh != "" {
			id := uuid.NewString()
			w.push(Upsert("water_inspection", id, 0, at, map[string]any{"household_id": hh,
				"inspected_on": w.date(400), "source": "piped_home", "quality_ok": w.rng.IntN(5) > 0, "quality_basis": "lab_report",
				"liters_per_person_day": 20 + w.rng.IntN(60), "reliability_pct": 85 + w.rng.IntN(15), "days_without_water": w.rng.IntN(40)}))
			w.insp[hh] = append(w.insp[hh], id)
		}
	case op < 10:
		if hh := w.live(); hh != "" {
			id := uuid.NewString()
			w.push(Upsert("followup_visit", id, 0, at, map[string]any{"household_id": hh,
				"visited_on": w.date(60), "next_status": pick("stable", "borderline", "unstable", "relapsed")}))
			w.persons[hh] = append(w.persons[hh], id)
		}
	case op < 11:
		if hh := w.live(); hh != "" {
			fields := map[string]any{"status": pick("in_poverty", "lifted_out", "relapse_risk"), "food_assured": w.rng.IntN(3) > 0}
			if w.rng.IntN(3) == 0 {
				fields = map[string]any{"village": summaryVillages[w.rng.IntN(len(summaryVillages))]}
			}
			w.push(Upsert("household", hh, w.version(hh), at, fields))
		}
	case op < 12:
		hh := w.live()
		if hh == "" {
			return
		}
		kids := append(append([]string{}, w.persons[hh]...), w.insp[hh]...)
		if len(kids) > 0 && w.rng.IntN(3) > 0 {
			id := kids[w.rng.IntN(len(kids))]
			if v := w.version(id); v > 0 {
				if r, _ := w.s.Record(ctx, id); r != nil && !r.Deleted {
					w.push(Delete(r.Entity, id, v, at))
				}
			}
			return
		}
		w.push(Delete("household", hh, w.version(hh), at))
	case op < 13:
		dups, err := w.s.ListDuplicates(ctx, All, syncproto.StateOpen)
		if err != nil {
			t.Fatal(err)
		}
		if len(dups) > 0 {
			d := dups[w.rng.IntN(len(dups))]
			_, _ = w.sup.MergeHouseholds(ctx, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, AllRegions: true},
				d.ID, []string{d.HouseholdA, d.HouseholdB}[w.rng.IntN(2)], "the same family")
		}
	default:
		// No write: the days pass, evidence ages, follow-ups fall due,
		// a year turns, a standard's edition takes effect.
		w.clock.Advance(time.Duration(1+w.rng.IntN(60)) * 24 * time.Hour)
	}
}

// checkVerdicts refreshes the kept verdicts until none awaits and asserts
// that their sums per village, township and county equal the verification
// report's roll-up and the follow-up list's counts judged live from every
// household, for the actor.
func checkVerdicts(t *testing.T, s syncproto.Store, sch *schema.Schema, actor syncproto.Actor, clock *Clock, when string) {
	t.Helper()
	ctx := context.Background()
	vs := verdictStore(t, s)
	for {
		left, err := vs.RefreshVerdicts(ctx, clock.Now(), 7)
		if err != nil {
			t.Fatalf("%s: refresh: %v", when, err)
		}
		if left == 0 {
			break
		}
	}
	reports := syncproto.NewReportService(s, syncproto.ReportOptions{Schema: sch, Now: clock.Now})
	var villages []verify.Area
	rep, err := reports.Verification(ctx, actor, clock.Now(), func(*verify.Verdict) error { return nil }, func(a *verify.Area) error {
		a.NeverVerified = nil
		villages = append(villages, *a)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	follow, err := reports.Followups(ctx, actor, clock.Now(), func(*monitor.Followup) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	read := func(level string) ([]verify.Area, []monitor.Counts) {
		var areas []verify.Area
		var counts []monitor.Counts
		got, err := vs.AreaVerdicts(ctx, actor, level, clock.Now(), func(a *syncproto.AreaVerdicts) error {
			areas, counts = append(areas, a.Verification), append(counts, a.Followups)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: area verdicts (%s): %v", when, level, err)
		}
		if got.At != rep.At || got.Pending != 0 || got.AsOf != clock.Now().UTC().Format(time.DateOnly) {
			t.Fatalf("%s: area verdicts read %+v, the report at %+v on %s", when, got, rep.At, clock.Now().Format(time.DateOnly))
		}
		return areas, counts
	}
	same := func(level string, got, want []verify.Area) {
		t.Helper()
		// The follow-ups the live roll-up carries in each area are checked
		// against the kept counts below (AreaVerdicts.Followups).
		want = slices.Clone(want)
		for i := range want {
			want[i].Followups = nil
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("%s, %s on %s: the kept sums\n%+v\njudged live\n%+v", when, level, clock.Now().Format(time.DateOnly), got, want)
		}
	}
	got, counts := read(verify.LevelVillage)
	same(verify.LevelVillage, got, villages)
	if !reflect.DeepEqual(counts, follow.Villages) && !(len(counts) == 0 && len(follow.Villages) == 0) {
		t.Fatalf("%s: the kept follow-up counts\n%+v\njudged live\n%+v", when, counts, follow.Villages)
	}
	got, _ = read(verify.LevelTownship)
	same(verify.LevelTownship, got, rep.Townships)
	got, _ = read(verify.LevelCounty)
	same(verify.LevelCounty, got, rep.Counties)
	var served []verify.Area
	if _, err := reports.VerdictRollup(ctx, actor, verify.LevelCounty, func(a *syncproto.AreaVerdicts) error {
		served = append(served, a.Verification)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	same("the report service's counties", served, rep.Counties)
}

// testVerdictsEqualTheLiveJudgement is the property of the kept verdicts:
// after random pushes, moves, deletes and merges and the clock moved on
// past evidence ages, follow-up due dates, a year's turn and standards'
// editions, the kept sums per village, township and county, once
// refreshed, equal the verification report's roll-up and the follow-up
// list's counts judged live from every household — for every region and
// for scoped actors; verdicts kept from a store's first write and those
// judged over existing records (KeepVerdicts) alike.
func testVerdictsEqualTheLiveJudgement(t *testing.T, open Opener) {
	sch := schema.BuiltIn().Latest()
	judge, err := syncproto.NewVerdictJudge(sch)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			start := T0
			if seed >= 2 {
				// Before the school ages, the water standards and the
				// evidence ages took effect.
				start = time.Date(2018, 12, 20, 8, 0, 0, 0, time.UTC)
			}
			clock := NewClock(start)
			s := open(t, clock)
			vs := verdictStore(t, s)
			ctx := context.Background()
			if _, err := vs.RefreshVerdicts(ctx, clock.Now(), 10); err != syncproto.ErrVerdictsNotKept {
				t.Fatalf("refresh before KeepVerdicts: %v, want ErrVerdictsNotKept", err)
			}
			if seed%2 == 0 {
				if err := vs.KeepVerdicts(ctx, judge, clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			p := syncproto.NewPushService(s, syncproto.PushOptions{Now: clock.Now, Schema: sch})
			w := &verdictWorld{summaryWorld: summaryWorld{t: t, s: s, p: p, sup: NewSupervisionService(s, clock), clock: clock,
				rng: rand.New(rand.NewPCG(seed, 23)), insp: map[string][]string{},
				devices: []*Device{supervisorDevice("li.na"), supervisorDevice("zhao.lei")}}, persons: map[string][]string{}, outcomes: map[string]int{}}
			for i := range 160 {
				w.step()
				if i == 79 && seed%2 == 1 {
					if err := vs.KeepVerdicts(ctx, judge, clock.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if i%10 == 9 && (seed%2 == 0 || i > 79) {
					checkVerdicts(t, s, sch, All, clock, fmt.Sprintf("after %d steps", i+1))
				}
			}
			if w.outcomes["applied"] < 90 {
				t.Fatalf("the writes' outcomes: %v", w.outcomes)
			}
			checkVerdicts(t, s, sch, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240107"}}, clock, "a township's supervisor")
			checkVerdicts(t, s, sch, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"150422", "500240108"}}, clock, "two regions")
		})
	}
}

// testVerdictsPendingUntilRefreshed asserts that a write marks its
// household — the roll-up read says one is pending and its sums are the
// old ones — until a refresh judges it, and that a day passing the next
// change day makes a household pending with no write.
func testVerdictsPendingUntilRefreshed(t *testing.T, open Opener) {
	sch := schema.BuiltIn().Latest()
	judge, err := syncproto.NewVerdictJudge(sch)
	if err != nil {
		t.Fatal(err)
	}
	clock := NewClock(T0)
	s := open(t, clock)
	vs := verdictStore(t, s)
	ctx := context.Background()
	if _, err := vs.AreaVerdicts(ctx, All, verify.LevelVillage, clock.Now(), func(*syncproto.AreaVerdicts) error { return nil }); err != syncproto.ErrVerdictsNotKept {
		t.Fatalf("area verdicts before KeepVerdicts: %v, want ErrVerdictsNotKept", err)
	}
	if err := vs.KeepVerdicts(ctx, judge, clock.Now()); err != nil {
		t.Fatal(err)
	}
	p := syncproto.NewPushService(s, syncproto.PushOptions{Now: clock.Now, Schema: sch})
	hh, water := uuid.NewString(), uuid.NewString()
	at := clock.Now()
	NewDevice("li.na").Push(t, p, Upsert("household", hh, 0, at, map[string]any{"village": SouthVillage, "head_name": "陈秀英",
		"registration_no": "5002401072010001", "members": 2, "categories": []string{"registered_poor"}, "status": "in_poverty",
		"food_assured": true, "clothing_assured": true, "food_clothing_checked": "home_visit"}),
		Upsert("water_inspection", water, 0, at, map[string]any{"household_id": hh, "inspected_on": at.AddDate(0, -11, 0).Format(time.DateOnly),
			"source": "piped_home", "quality_ok": true, "quality_basis": "lab_report", "liters_per_person_day": 60, "reliability_pct": 99,
			"days_without_water": 1}))
	sums := func() (syncproto.VerdictsRead, *verify.Area) {
		t.Helper()
		var got *verify.Area
		read, err := vs.AreaVerdicts(ctx, All, verify.LevelVillage, clock.Now(), func(a *syncproto.AreaVerdicts) error {
			got = &a.Verification
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return read, got
	}
	if read, a := sums(); read.Pending != 1 || a != nil {
		t.Fatalf("after a push: %+v, %+v; want one pending and no sums yet", read, a)
	}
	if left, err := vs.RefreshVerdicts(ctx, clock.Now(), 10); err != nil || left != 0 {
		t.Fatalf("refresh: %d left, %v", left, err)
	}
	read, a := sums()
	if read.Pending != 0 || a == nil || a.Households != 1 || a.Incomplete != 1 {
		t.Fatalf("after a refresh: %+v, %+v; want one household, incomplete", read, a)
	}
	// The water evidence turns stale a little over a month on: the
	// household awaits a judgement with no write.
	clock.Advance(40 * 24 * time.Hour)
	if read, _ := sums(); read.Pending != 1 {
		t.Fatalf("40 days on: %+v, want the household pending (its water evidence aged)", read)
	}
}

// testVerdictsChangeOnTheirDay asserts that a kept verdict is judged again
// on the day its rules say it may change with no write: a child of five
// who left school blocks the household by education from the year's turn
// on (the age is counted by calendar year), and one of ten from the day
// the school ages' first edition took effect (29 December 2018; before
// it, the ages are unknown and the household incomplete).
func testVerdictsChangeOnTheirDay(t *testing.T, open Opener) {
	sch := schema.BuiltIn().Latest()
	judge, err := syncproto.NewVerdictJudge(sch)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		start, day time.Time
		age        int
	}{
		{"the year's turn", time.Date(2026, 12, 30, 8, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 8, 0, 0, 0, time.UTC), 5},
		{"a standard's edition", time.Date(2018, 12, 27, 8, 0, 0, 0, time.UTC), time.Date(2018, 12, 29, 8, 0, 0, 0, time.UTC), 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := NewClock(c.start)
			s := open(t, clock)
			vs := verdictStore(t, s)
			ctx := context.Background()
			if err := vs.KeepVerdicts(ctx, judge, clock.Now()); err != nil {
				t.Fatal(err)
			}
			p := syncproto.NewPushService(s, syncproto.PushOptions{Now: clock.Now, Schema: sch})
			hh, at := uuid.NewString(), clock.Now()
			resp := supervisorDevice("li.na").Push(t, p, Upsert("household", hh, 0, at, map[string]any{"village": SouthVillage,
				"head_name": "陈秀英", "registration_no": "5002401072010001", "members": 2, "categories": []string{"registered_poor"},
				"status": "in_poverty", "food_assured": true, "clothing_assured": true, "food_clothing_checked": "home_visit"}),
				Upsert("person", uuid.NewString(), 0, at, map[string]any{"household_id": hh, "name": "陈小明", "relation": "child",
					"birth_year": at.Year() - c.age, "schooling": "dropped_out", "medical_insurance": true, "illness": "none"}))
			for _, r := range resp.Results {
				if r.Status != "applied" {
					t.Fatalf("push: %+v", r)
				}
			}
			area := func() (syncproto.VerdictsRead, verify.Area) {
				t.Helper()
				if _, err := vs.RefreshVerdicts(ctx, clock.Now(), 10); err != nil {
					t.Fatal(err)
				}
				var got verify.Area
				read, err := vs.AreaVerdicts(ctx, All, verify.LevelVillage, clock.Now(), func(a *syncproto.AreaVerdicts) error {
					got = a.Verification
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return read, got
			}
			if _, a := area(); a.Incomplete != 1 || a.Blocked != 0 {
				t.Fatalf("on %s: %+v, want the household incomplete", clock.Now().Format(time.DateOnly), a)
			}
			clock.Advance(c.day.Sub(clock.Now()) - 24*time.Hour)
			if read, _ := vs.AreaVerdicts(ctx, All, verify.LevelVillage, clock.Now(), func(*syncproto.AreaVerdicts) error { return nil }); err != nil || read.Pending != 0 {
				t.Fatalf("the day before: %+v, want nothing pending", read)
			}
			clock.Advance(24 * time.Hour)
			if read, _ := vs.AreaVerdicts(ctx, All, verify.LevelVillage, clock.Now(), func(*syncproto.AreaVerdicts) error { return nil }); read.Pending != 1 {
				t.Fatalf("on %s: %+v, want the household pending", clock.Now().Format(time.DateOnly), read)
			}
			if _, a := area(); a.Blocked != 1 || a.BlockedBy["education"] != 1 {
				t.Fatalf("on %s: %+v, want the household blocked by education", clock.Now().Format(time.DateOnly), a)
			}
		})
	}
}
