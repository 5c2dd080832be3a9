package export

import (
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// SnapshotParams are a snapshot's parameters as a caller gave them: the
// query of GET /v1/snapshot, or the flags of fieldsync export.
type SnapshotParams struct {
	Format, Entity, AsOf, Lang string
	// Preferred are the reader's language preferences, weighted as in
	// HTTP's Accept-Language ("zh-CN,zh;q=0.9,en;q=0.8"); "" for none (the
	// command line), which keeps a table in codes unless Lang says otherwise.
	Preferred string
}

// SnapshotRequest is a validated snapshot request.
type SnapshotRequest struct {
	Actor  syncproto.Actor // the caller, narrowed to the region
	Region string          // the region asked for; "" for the caller's scope
	Format string
	Entity string // "" for every entity (XLSX only)
	AsOf   *syncproto.Cursor
	// Lang is the language of a CSV's or XLSX's headers and enum values:
	// zh, en, or codes (TableLang).
	Lang string
	// Divisions names the villages of a labelled table.
	Divisions schema.Divisions
	// PhotoURL is the URL of a photo by its digest, for GeoJSON's photo
	// links; photos are left out without it.
	PhotoURL func(sha256 string) string
}

// NewSnapshotRequest checks a snapshot's format, entity, as_of and lang for
// an actor already narrowed to region. It returns an EInvalid error whose
// field errors have the parameters' names as paths (format, entity, as_of,
// lang): the HTTP API answers them under query., the command line as flags.
// lang and the Accept-Language header choose the language of CSV and XLSX
// (TableLang); NDJSON and GeoJSON keep their keys and codes whatever they
// say.
func NewSnapshotRequest(sch *schema.Schema, cursors *syncproto.CursorCodec, actor syncproto.Actor, region string, p SnapshotParams) (SnapshotRequest, error) {
	req := SnapshotRequest{Actor: actor, Region: region, Format: strings.TrimSpace(p.Format), Entity: strings.TrimSpace(p.Entity)}
	if req.Format == "" {
		req.Format = FormatNDJSON
	}
	var errs []syncproto.FieldError
	req.Lang = LangCodes
	if l, fe := TableLang(p.Lang, p.Preferred); fe != nil {
		errs = append(errs, *fe)
	} else if req.Format == FormatCSV || req.Format == FormatXLSX {
		req.Lang = l
	}
	entities := "must be one of " + strings.Join(sch.Entities(), ", ")
	switch req.Format {
	case FormatNDJSON, FormatCSV:
		if req.Entity == "" {
			errs = append(errs, syncproto.FieldError{Path: "entity", Message: "is required for format " + req.Format + "; " + entities})
		} else if sch.Form(req.Entity) == nil {
			errs = append(errs, syncproto.FieldError{Path: "entity", Message: entities})
		}
	case FormatGeoJSON:
		if req.Entity == "" {
			req.Entity = "household"
		} else if req.Entity != "household" {
			errs = append(errs, syncproto.FieldError{Path: "entity", Message: "must be household (or absent) for format geojson"})
		}
	case FormatXLSX:
		if req.Entity != "" && sch.Form(req.Entity) == nil {
			errs = append(errs, syncproto.FieldError{Path: "entity", Message: entities})
		}
	default:
		errs = append(errs, syncproto.FieldError{Path: "format", Message: "must be one of ndjson, csv, geojson, xlsx"})
	}
	if p.AsOf != "" {
		cur, err := cursors.Parse(p.AsOf)
		if err != nil {
			errs = append(errs, syncproto.FieldError{Path: "as_of", Message: "must be a cursor returned by this server"})
		} else {
			req.AsOf = &cur
		}
	}
	if len(errs) > 0 {
		return SnapshotRequest{}, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid snapshot request",
			Message: "the snapshot's parameters are invalid", Errors: errs}
	}
	return req, nil
}

// Query is what the store reads for the request. A GeoJSON snapshot also
// asks for each household's latest housing and water inspection.
func (r SnapshotRequest) Query(sch *schema.Schema) syncproto.SnapshotQuery {
	// NDJSON writes each record's fields as stored, without decoding them.
	// Identity numbers to mask need the fields decoded.
	q := syncproto.SnapshotQuery{Schema: sch, Entities: r.Entities(sch), AsOf: r.AsOf, RawFields: r.Format == FormatNDJSON && !r.MasksIdentities(),
		Parents: r.Format == FormatCSV || r.Format == FormatXLSX}
	if r.Format == FormatGeoJSON {
		// The latest of each household's housing appraisals and water
		// inspections, each by its own role's date field.
		f := survey.FormsOf(sch)
		housing, water := f.Entity(survey.KindHousing), f.Entity(survey.KindWater)
		q.Latest, q.LatestBy = []string{housing, water}, f.HousingDate
		q.LatestByEntity = map[string]string{housing: f.HousingDate, water: f.WaterDate}
	}
	return q
}

// MasksIdentities reports whether the snapshot masks identity numbers:
// its actor lacks syncproto.PermissionSeeIdentity.
func (r SnapshotRequest) MasksIdentities() bool { return !r.Actor.Can(syncproto.PermissionSeeIdentity) }

// MaskRow masks the identity numbers of a snapshot row, the record and
// the records it carries (its parent, its latest children), for an actor
// without syncproto.PermissionSeeIdentity; the row is changed in place
// (its maps are replaced, not written).
func MaskRow(sch *schema.Schema, row *syncproto.SnapshotRow) {
	mask := func(r *syncproto.StoredRecord) {
		if r != nil {
			r.Fields = sch.MaskIdentities(r.Entity, r.Fields)
		}
	}
	mask(&row.Record)
	mask(row.Parent)
	for _, r := range row.Latest {
		mask(r)
	}
}

// Entities are the entities the snapshot holds: the one asked for, or
// every entity of the schema (XLSX without entity).
func (r SnapshotRequest) Entities(sch *schema.Schema) []string {
	if r.Entity == "" {
		return sch.Entities()
	}
	return []string{r.Entity}
}

// FileName is the download's name: fieldsync-<entity>-<region>.<format>,
// with "snapshot" for a workbook of every entity and the caller's scope
// (or "all") when no region was asked for.
func (r SnapshotRequest) FileName() string {
	entity := r.Entity
	if entity == "" {
		entity = "snapshot"
	}
	return "fieldsync-" + entity + "-" + RegionFileName(r.Actor, r.Region) + "." + r.Format
}

// RegionFileName is the region part of a download's name: the region
// asked for, else the caller's single scope, else "all".
func RegionFileName(actor syncproto.Actor, region string) string {
	if region != "" {
		return region
	}
	if !actor.AllRegions && len(actor.Scope) == 1 {
		return actor.Scope[0]
	}
	return "all"
}
