package syncproto

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema/monitor"
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
// order (Judge). It calls listed with each household that belongs on the
// follow-up list (monitor.Followup.Listed), so that the service holds one
// household at a time, and returns the counts of every village and the
// totals. An error from listed stops the list and is returned; a schema
// without a monitoring is ENotFound.
func (r *ReportService) Followups(ctx context.Context, actor Actor, asOf time.Time, listed func(*monitor.Followup) error) (*FollowupReport, error) {
	if r.Monitor() == nil {
		return nil, &Error{Code: ENotFound, Title: "No monitoring",
			Message: "the served forms' version declares no monitoring (monitoring.json)"}
	}
	j, err := r.Judge(ctx, actor, asOf, Judging{Listed: listed})
	if err != nil {
		return nil, err
	}
	return j.Followups, nil
}
