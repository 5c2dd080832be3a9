package syncproto

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
)

// ReportStore is the part of the store contract that serves supervisors'
// reports: the households of a scope with the facts of their inspections,
// read as one stream. What the reports make of them (coverage,
// re-inspection lists) is package survey's and the ReportService's, not
// the store's.
type ReportStore interface {
	// HouseholdInspections calls emit with every household of the actor's
	// scope that is not deleted, each with its accepted housing and water
	// inspections (a household without any comes with none), all read in
	// one read transaction so that the stream reflects one point of the
	// change log. Households come in village order (villages in ascending
	// code order, each village's households together), one at a time, so
	// that memory does not grow with the region. It returns that point:
	// the head of the change log, under the actor's scope. An error from
	// emit stops the stream and is returned.
	HouseholdInspections(ctx context.Context, actor Actor, q HouseholdQuery, emit func(*survey.HouseholdInspections) error) (Cursor, error)
}

// HouseholdQuery says what a stream of households carries besides the
// facts every report needs.
type HouseholdQuery struct {
	// Forms are the forms and fields to read, as the schema's roles
	// declare them (survey.FormsOf); a store reads those names, never
	// names of its own.
	Forms *survey.Forms
	// WaterFields asks for the whole fields of each water inspection
	// (survey.InspectionFacts.Fields), which coverage judges against the
	// water standards; without it Fields stays nil.
	WaterFields bool
	// Children asks for the household's whole fields and every live
	// record of every form whose parent is the household, with its whole
	// fields (survey.HouseholdInspections.Fields and Children): what the
	// verification judges. Inspections are filled as without it.
	Children bool
}

// ReportService is the supervisors' reports as a service over a store: it
// reads the households of a scope in one stream (ReportStore) and applies
// survey's rules to them — the coverage of each village and its roll-ups
// (survey.CoverageBuilder), the households due for re-inspection
// (survey.DueForReinspection). It owns the schema the households are
// judged by.
type ReportService struct {
	store  ReportStore
	schema *schema.Schema
	forms  *survey.Forms
	now    func() time.Time
	// summarizer shapes the counts read from a store's summaries.
	summarizer *survey.Summarizer
}

// ReportOptions configure a ReportService.
type ReportOptions struct {
	// Schema is the set of forms households are judged by (grades,
	// renovation states, water standards); schema.V1() when nil. The
	// server gives it the schema its pushes are validated against.
	Schema *schema.Schema
	// Now is the clock: the day a coverage report judges the water
	// inspections as of (the standards in effect then). time.Now when nil.
	Now func() time.Time
}

// NewReportService returns the report service over store.
func NewReportService(store ReportStore, opts ReportOptions) *ReportService {
	if opts.Schema == nil {
		opts.Schema = schema.V1()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &ReportService{store: store, schema: opts.Schema, forms: survey.FormsOf(opts.Schema), now: opts.Now,
		summarizer: survey.NewSummarizer(opts.Schema)}
}

// Coverage calls emit with the coverage of every village of the actor's
// scope that has households, in ascending code order, each as soon as its
// last household was read, and returns the roll-ups per township and
// county and the totals. Memory holds one village and the roll-ups, not
// the region. An error from emit stops the report and is returned.
func (r *ReportService) Coverage(ctx context.Context, actor Actor, emit func(*survey.VillageCoverage) error) (*CoverageReport, error) {
	b := survey.NewCoverageBuilder(r.schema)
	b.AsOf = r.now()
	at, err := r.households(ctx, actor, HouseholdQuery{Forms: r.forms, WaterFields: true}, func(h *survey.HouseholdInspections) error {
		done, err := b.Add(h)
		if err != nil || done == nil {
			return err
		}
		return emit(done)
	})
	if err != nil {
		return nil, err
	}
	last, sum := b.Finish()
	if last != nil {
		if err := emit(last); err != nil {
			return nil, err
		}
	}
	return &CoverageReport{CoverageSummary: *sum, At: at}, nil
}

// Reinspections calls emit with every household of the actor's scope that
// is due for re-inspection (survey.DueForReinspection), in village order,
// one at a time, and returns their counts by reason. An error from emit
// stops the list and is returned. q.Forms is the service's.
func (r *ReportService) Reinspections(ctx context.Context, actor Actor, q survey.ReinspectionQuery, emit func(*survey.DueHousehold) error) (*ReinspectionReport, error) {
	sum := survey.NewReinspectionSummary()
	q.Forms = r.forms
	at, err := r.store.HouseholdInspections(ctx, actor, HouseholdQuery{Forms: r.forms}, func(h *survey.HouseholdInspections) error {
		due := survey.DueForReinspection(h, q)
		if due == nil {
			return nil
		}
		sum.Count(due)
		return emit(due)
	})
	if err != nil {
		return nil, err
	}
	return &ReinspectionReport{ReinspectionSummary: *sum, At: at}, nil
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
