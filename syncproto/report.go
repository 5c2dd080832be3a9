package syncproto

import (
	"context"

	"github.com/fieldsync/fieldsync/schema/survey"
)

// ReportStore is the part of the store contract that serves supervisors'
// reports: coverage and re-inspection lists. Each report reads the
// households of the actor's scope in one read transaction, so that it
// reflects one point of the change log, and streams: a store hands each
// village (coverage) or each due household (re-inspection) to emit as soon
// as it is complete, so that memory does not grow with the region. A store
// may compute the figures in its query language or feed
// survey.HouseholdInspections, in village order, to
// survey.NewCoverageBuilder and survey.DueForReinspection, which define
// them.
type ReportStore interface {
	// Coverage calls emit with the coverage of every village of the
	// actor's scope that has households, in ascending code order, and
	// returns the roll-ups per township and county and the totals. An error
	// from emit stops the report and is returned.
	Coverage(ctx context.Context, actor Actor, emit func(*survey.VillageCoverage) error) (*CoverageReport, error)
	// Reinspections calls emit with every household of the actor's scope
	// that is due for re-inspection (survey.DueForReinspection), in
	// village order, and returns their counts by reason. An error from emit
	// stops the list and is returned.
	Reinspections(ctx context.Context, actor Actor, q survey.ReinspectionQuery, emit func(*survey.DueHousehold) error) (*ReinspectionReport, error)
}

// CoverageReport is a coverage report's summary (the roll-ups and totals,
// which package survey defines) and the point of the change log it
// reflects, which a report hands out as its cursor.
type CoverageReport struct {
	survey.CoverageSummary
	// At is the head of the change log when the report was read.
	At Cursor
}

// ReinspectionReport is a re-inspection list's counts (package survey)
// and the point of the change log it reflects.
type ReinspectionReport struct {
	survey.ReinspectionSummary
	// At is the head of the change log when the list was read.
	At Cursor
}
