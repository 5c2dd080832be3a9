package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The reports' tables are designed in export (report_tables.go: columns,
// order, labels, rows); here they are answered: the store's values fed as
// rows into a reportOutput (report_output.go).

// tablePageSize is how many conflicts a table of the queue reads at a
// time: the server holds one page, however long the queue.
const tablePageSize = 500

// coverageTable answers the coverage report as CSV or XLSX
// (export.CoverageTables): a CSV holds the table named by table (villages
// when empty), an XLSX the three as sheets.
func (s *Server) coverageTable(c echo.Context, f reportFormat, table string, actor syncproto.Actor, region string) error {
	keys := export.CoverageTableKeys()
	csvTable := export.CoverageVillages
	if table != "" {
		csvTable = -1
		for i, t := range keys {
			if t == table {
				csvTable = i
			}
		}
		switch {
		case csvTable < 0:
			return invalidReport([]syncproto.FieldError{{Path: "query.table", Message: "must be one of " + strings.Join(keys, ", ")}})
		case f.format != export.FormatCSV:
			return invalidReport([]syncproto.FieldError{{Path: "query.table", Message: "is for format csv: an XLSX holds every table as a sheet"}})
		}
	}
	l := s.reportLabels(f.lang)
	cov := export.NewCoverageTables(l, s.divisions)
	name := "fieldsync-coverage-"
	if table != "" && table != keys[export.CoverageVillages] {
		name += table + "-"
	}
	out, err := s.newReportOutput(c, f, l, cov.Tables, csvTable, name+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	sum, err := s.reports.Coverage(c.Request().Context(), actor, func(v *survey.VillageCoverage) error {
		return cov.Village(v, out.row)
	})
	if err != nil {
		return out.fail(err)
	}
	if err := cov.Summary(region, &sum.CoverageSummary, out.row); err != nil {
		return out.fail(err)
	}
	return out.finish()
}

// reinspectionTable answers the re-inspection list as CSV or XLSX
// (export.ReinspectionTable), one row per due household.
func (s *Server) reinspectionTable(c echo.Context, f reportFormat, actor syncproto.Actor, region string) error {
	l := s.reportLabels(f.lang)
	tb := export.NewReinspectionTable(l, s.divisions)
	out, err := s.newReportOutput(c, f, l, tb.Tables, 0, "fieldsync-reinspections-"+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	q := survey.ReinspectionQuery{Now: s.now(), After: s.reinspectAfter}
	_, err = s.reports.Reinspections(c.Request().Context(), actor, q, func(d *survey.DueHousehold) error {
		return out.row(0, tb.Row(d)...)
	})
	if err != nil {
		return out.fail(err)
	}
	return out.finish()
}

// conflictTable answers the conflict queue as CSV or XLSX
// (export.ConflictTable): every conflict of the scope (and state), read
// page by page of tablePageSize, so that the server holds one page at a
// time however long the queue.
func (s *Server) conflictTable(c echo.Context, f reportFormat, actor syncproto.Actor, region, state string) error {
	l := s.reportLabels(f.lang)
	tb := export.NewConflictTable(l, s.divisions)
	out, err := s.newReportOutput(c, f, l, tb.Tables, 0, "fieldsync-conflicts-"+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	for after := int64(0); ; {
		list, next, err := s.store.ListConflicts(ctx, actor, state, after, tablePageSize)
		if err != nil {
			return out.fail(err)
		}
		for i := range list {
			if err := out.row(0, tb.Row(&list[i])...); err != nil {
				return out.fail(err)
			}
		}
		if len(list) < tablePageSize {
			break
		}
		after = next
	}
	return out.finish()
}

// duplicateTable answers the suspected duplicates as CSV or XLSX
// (export.DuplicateTable), one row each.
func (s *Server) duplicateTable(c echo.Context, f reportFormat, actor syncproto.Actor, region, state string) error {
	l := s.reportLabels(f.lang)
	tb := export.NewDuplicateTable(l, s.divisions)
	out, err := s.newReportOutput(c, f, l, tb.Tables, 0, "fieldsync-duplicates-"+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	list, err := s.store.ListDuplicates(c.Request().Context(), actor, state)
	if err != nil {
		return out.fail(err)
	}
	for i := range list {
		if err := out.row(0, tb.Row(&list[i])...); err != nil {
			return out.fail(err)
		}
	}
	return out.finish()
}
