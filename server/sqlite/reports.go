package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.ReportStore = (*Store)(nil)

// HouseholdInspections reads the households of the actor's scope with
// their inspections (householdsQuery) in one read transaction, ordered by
// village, and calls emit with each in turn; it returns the head of the
// change log the read reflects. What the reports make of them is the
// ReportService's (syncproto). It reads the forms and fields q.Forms names
// (the v1 forms' roles when nil).
func (s *Store) HouseholdInspections(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*survey.HouseholdInspections) error) (syncproto.Cursor, error) {
	forms := q.Forms
	if forms == nil {
		forms = survey.FormsOf(schema.V1())
	}
	return s.readHouseholds(ctx, actor, forms, q, emit)
}

// householdsQuery lists every household that is not deleted in a scope
// (the %s), each followed by its accepted inspections (none: one row with
// NULLs), ordered by village and household so that a household's rows are
// adjacent and villages come in code order. SQLite walks records_village in
// village order and sorts only within a village, so the sort's memory is
// bounded by the largest village. For each inspection it reads the device
// that created it (the change log's create entry) and the unresolved
// conflicts on a housing grade; a water inspection's fields come whole when
// :water_fields is true, to be judged against the standards. With :children
// every child record of the household comes (persons, any form), and the
// fields of the household and of each child come whole.
const householdsQuery = `SELECT h.id, h.village,
	COALESCE(json_extract(h.fields, :head_name_path), ''),
	COALESCE(json_extract(h.fields, :registration_no_path), ''),
	COALESCE(json_extract(h.fields, :status_path), ''),
	i.id, i.entity,
	COALESCE(json_extract(i.fields, CASE WHEN i.entity = :housing THEN :housing_date_path ELSE :water_date_path END), ''),
	COALESCE(json_extract(i.fields, :grade_path), ''),
	COALESCE(json_extract(i.fields, :renovation_path), ''),
	COALESCE(json_extract(i.fields, :previous_id_path), ''),
	i.updated_at, i.seq,
	CASE WHEN i.entity IN (:housing, :water) THEN COALESCE((SELECT c.device_id FROM changes c WHERE c.record_id = i.id AND c.op = 'create' ORDER BY c.version LIMIT 1),
		i.updated_device, '') ELSE '' END,
	CASE WHEN i.entity = :housing THEN (SELECT json_group_array(k.id) FROM conflicts k
		WHERE k.record_id = i.id AND k.field = :grade AND k.state IN (:open, :auto)) END,
	CASE WHEN (:water_fields AND i.entity = :water) OR :children THEN i.fields END,
	CASE WHEN :children THEN h.fields END
FROM records h
LEFT JOIN records i ON i.parent_id = h.id AND i.deleted = 0 AND (:children OR i.entity IN (:housing, :water))
WHERE h.entity = :household AND h.deleted = 0 AND %s
ORDER BY h.village, h.id`

// householdsArgs are the named parameters of householdsQuery but the scope:
// the forms and fields it reads are those the forms' roles name.
func householdsArgs(f *survey.Forms, q syncproto.HouseholdQuery) []any {
	return []any{sql.Named("housing", f.Entity(survey.KindHousing)), sql.Named("water", f.Entity(survey.KindWater)),
		sql.Named("household", f.HouseholdEntity()), sql.Named("grade", f.Grade),
		sql.Named("open", syncproto.StateOpen), sql.Named("auto", syncproto.StateAutoResolved),
		sql.Named("water_fields", q.WaterFields), sql.Named("children", q.Children),
		sql.Named("head_name_path", jsonPath(f.HeadName)), sql.Named("registration_no_path", jsonPath(f.RegistrationNo)),
		sql.Named("status_path", jsonPath(f.Status)), sql.Named("housing_date_path", jsonPath(f.HousingDate)),
		sql.Named("water_date_path", jsonPath(f.WaterDate)),
		sql.Named("grade_path", jsonPath(f.Grade)), sql.Named("renovation_path", jsonPath(f.Renovation)),
		sql.Named("previous_id_path", jsonPath(f.Previous))}
}

// jsonPath is the JSON path of a top-level field of a record's fields. A
// role without the field ("") reads a name no form field can have (they
// never start with '_'), so its value is NULL.
func jsonPath(field string) string {
	if field == "" {
		return "$._none"
	}
	return "$." + field
}

// readHouseholds runs householdsQuery for the actor's scope in one read
// transaction and calls fn with each household and its inspections, in
// village order. It returns the head of the change log the read reflects.
func (s *Store) readHouseholds(ctx context.Context, actor syncproto.Actor, forms *survey.Forms, q syncproto.HouseholdQuery, fn func(*survey.HouseholdInspections) error) (syncproto.Cursor, error) {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return syncproto.Cursor{}, fmt.Errorf("begin report: %w", err)
	}
	defer tx.Rollback()
	seq, err := head(ctx, tx)
	if err != nil {
		return syncproto.Cursor{}, fmt.Errorf("report head: %w", err)
	}
	at := syncproto.Cursor{Seq: seq, Scope: actor.ScopeKey()}
	return at, householdsIn(ctx, tx, actor, forms, q, fn)
}

// householdsIn runs householdsQuery for the actor's scope in tx and calls
// fn with each household and its inspections, in village order.
func householdsIn(ctx context.Context, tx *sql.Tx, actor syncproto.Actor, forms *survey.Forms, q syncproto.HouseholdQuery, fn func(*survey.HouseholdInspections) error) error {
	where, args := prefixClause("h.village", actor)
	return loadHouseholds(ctx, tx, where, args, forms, q, fn)
}

// loadHouseholds runs householdsQuery on db for the households where
// (a condition on h, with its named args) and calls fn with each
// household and its inspections, in village order.
func loadHouseholds(ctx context.Context, db queryer, where string, args []any, forms *survey.Forms, q syncproto.HouseholdQuery, fn func(*survey.HouseholdInspections) error) error {
	args = append(args, householdsArgs(forms, q)...)
	rows, err := db.QueryContext(ctx, fmt.Sprintf(householdsQuery, where), args...)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer rows.Close()

	housing, water := forms.Entity(survey.KindHousing), forms.Entity(survey.KindWater)
	var h *survey.HouseholdInspections
	for rows.Next() {
		var id, village, head, regNo, status string
		var inID, inEntity, updated, conflicts, fields, hfields sql.NullString
		var seq sql.NullInt64
		var in survey.InspectionFacts
		if err := rows.Scan(&id, &village, &head, &regNo, &status, &inID, &inEntity, &in.InspectedOn, &in.Grade,
			&in.Renovation, &in.PreviousID, &updated, &seq, &in.Device, &conflicts, &fields, &hfields); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if h == nil || h.ID != id {
			if h != nil {
				if err := fn(h); err != nil {
					return err
				}
			}
			h = &survey.HouseholdInspections{ID: id, Village: village, HeadName: head, RegistrationNo: regNo, Status: status}
			if hfields.Valid {
				if err := json.Unmarshal([]byte(hfields.String), &h.Fields); err != nil {
					return fmt.Errorf("report: fields of %s: %w", id, err)
				}
			}
		}
		if !inID.Valid {
			continue
		}
		in.ID, in.Entity, in.UpdatedAt, in.Seq = inID.String, inEntity.String, parseTime(updated.String), seq.Int64
		if q.Children {
			r := survey.Record{ID: in.ID, Entity: in.Entity, UpdatedAt: in.UpdatedAt, Seq: in.Seq}
			if fields.Valid {
				if err := json.Unmarshal([]byte(fields.String), &r.Fields); err != nil {
					return fmt.Errorf("report: fields of %s: %w", in.ID, err)
				}
			}
			h.Children = append(h.Children, r)
			if in.Entity != housing && in.Entity != water {
				continue
			}
			if in.Entity == water {
				in.Fields = r.Fields
			}
			fields.Valid = false
		}
		in.Kind = survey.KindWater
		if in.Entity == housing {
			in.Kind = survey.KindHousing
		}
		if conflicts.Valid && conflicts.String != "[]" {
			if err := json.Unmarshal([]byte(conflicts.String), &in.GradeConflicts); err != nil {
				return fmt.Errorf("report: conflicts of %s: %w", in.ID, err)
			}
		}
		if fields.Valid {
			if err := json.Unmarshal([]byte(fields.String), &in.Fields); err != nil {
				return fmt.Errorf("report: fields of %s: %w", in.ID, err)
			}
		}
		h.Inspections = append(h.Inspections, in)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if h != nil {
		return fn(h)
	}
	return nil
}

// prefixClause is scopeClause with named parameters, written so that
// SQLite can search the records_village index: each prefix p is the range
// [p, p + ":") — ':' sorts right after '9', and village codes are digits —
// and the exact prefix test keeps the condition right for any text.
func prefixClause(column string, a syncproto.Actor) (string, []any) {
	if a.AllRegions {
		return "1", nil
	}
	if len(a.Scope) == 0 {
		return "0", nil
	}
	parts := make([]string, len(a.Scope))
	args := make([]any, 0, 3*len(a.Scope))
	for i, p := range a.Scope {
		parts[i] = fmt.Sprintf("(%[1]s >= :scope%[2]d AND %[1]s < :scope%[2]d_end AND substr(%[1]s, 1, :scope%[2]d_len) = :scope%[2]d)", column, i)
		args = append(args, sql.Named(fmt.Sprintf("scope%d", i), p), sql.Named(fmt.Sprintf("scope%d_end", i), p+":"),
			sql.Named(fmt.Sprintf("scope%d_len", i), len(p)))
	}
	return "(" + strings.Join(parts, " OR ") + ")", args
}
