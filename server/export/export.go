// Package export writes fieldsync's data for people and their tools: a
// snapshot of the records as NDJSON, CSV (for Excel), GeoJSON (for QGIS)
// or XLSX, and the reports' tables as CSV or XLSX, in codes or labelled in
// Chinese or English. The HTTP API (GET /v1/snapshot, the reports'
// format=csv|xlsx) and the command line (fieldsync export) take the same
// requests through it and get the same bytes.
//
// The reports' tables are designed here too (report_tables.go): which
// columns, in what order, headed how, and how the domain's values (survey's
// coverage figures and re-inspection list, the conflict queue, the
// suspected duplicates) become rows, so that the API and a command give
// the same table.
//
// It may import schema, syncproto and the encoders' libraries (excelize,
// x/text); never echo, net/http, SQL or a store: it writes rows it is
// given to an io.Writer.
package export

// The formats: of snapshots (ndjson, csv, geojson, xlsx) and of the reports
// and lists (json, the default, csv and xlsx).
const (
	FormatNDJSON  = "ndjson"
	FormatCSV     = "csv"
	FormatGeoJSON = "geojson"
	FormatXLSX    = "xlsx"
	FormatJSON    = "json"
)

// MIMEXLSX is the media type of an XLSX workbook.
const MIMEXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
