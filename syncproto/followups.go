package syncproto

import (
	"context"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// FollowupReport is what a follow-up list ends with: the counts of each
// village (in village order), the totals, and the point of the change log
// the list reflects.
type FollowupReport struct {
	Villages []monitor.Counts
	Totals   monitor.Counts
	At       Cursor
}

// Monitor returns the monitor of the service's schema, or nil when the
// schema declares no monitoring (monitoring.json).
func (r *ReportService) Monitor() *monitor.Monitor {
	m, err := monitor.New(r.schema)
	if err != nil {
		return nil
	}
	return m
}

// Followups follows up every household of the actor's scope as of the
// day asOf (monitor.Monitor.Evaluate, on the household's verdict as of
// the same day when the schema declares a verification), from one read of
// the store with every child record (HouseholdQuery.Children), in village
// order. It calls listed with each household that belongs on the
// follow-up list (monitor.Followup.Listed), so that the service holds one
// household at a time, and returns the counts of every village and the
// totals. An error from listed stops the list and is returned; a schema
// without a monitoring is ENotFound.
func (r *ReportService) Followups(ctx context.Context, actor Actor, asOf time.Time, listed func(*monitor.Followup) error) (*FollowupReport, error) {
	m, err := monitor.New(r.schema)
	if errors.Is(err, monitor.ErrNoMonitoring) {
		return nil, &Error{Code: ENotFound, Title: "No monitoring",
			Message: "the served forms' version declares no monitoring (monitoring.json)"}
	}
	if err != nil {
		return nil, err
	}
	v, _ := verify.New(r.schema) // nil without a verification: no trigger on the guarantees
	out := &FollowupReport{Totals: *m.NewCounts(verify.LevelTotal, "")}
	var village *monitor.Counts
	at, err := r.store.HouseholdInspections(ctx, actor, HouseholdQuery{Forms: r.forms, Children: true}, func(h *survey.HouseholdInspections) error {
		var verdict *verify.Verdict
		if v != nil {
			vd := v.Evaluate(h, asOf)
			verdict = &vd
		}
		f := m.Evaluate(h, verdict, asOf)
		if village == nil || village.Code != h.Village {
			if village != nil {
				out.Villages = append(out.Villages, *village)
			}
			village = m.NewCounts(verify.LevelVillage, h.Village)
		}
		village.Add(&f)
		out.Totals.Add(&f)
		if f.Listed() {
			return listed(&f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if village != nil {
		out.Villages = append(out.Villages, *village)
	}
	out.At = at
	return out, nil
}
