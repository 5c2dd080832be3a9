package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.ReportStore = (*Store)(nil)

// HouseholdInspections streams the live households of the actor's scope,
// each with its live housing and water inspections, in village order, from
// one snapshot, and returns the head of the change log it shows
// (syncproto.ReportStore). The fields it reads are those q.Forms names.
func (s *Store) HouseholdInspections(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*survey.HouseholdInspections) error) (syncproto.Cursor, error) {
	forms := q.Forms
	if forms == nil {
		forms = survey.FormsOf(schema.V1())
	}
	var at syncproto.Cursor
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		at, err = readHouseholds(ctx, tx, actor, forms, q, emit)
		return err
	})
	return at, err
}

// householdsQuery joins each household to its inspections: one row per
// inspection (or one with NULLs for a household without any), households
// together and in village order. %s is the scope condition on h.village.
// With @children every child record of the household comes (persons, any
// form), and the fields of the household and of each child come whole.
const householdsQuery = `SELECT h.id, h.village,
	COALESCE((CASE WHEN strpos(h.fields, E'\\u0000') = 0 THEN h.fields::jsonb END) ->> @head_name, ''),
	COALESCE((CASE WHEN strpos(h.fields, E'\\u0000') = 0 THEN h.fields::jsonb END) ->> @registration_no, ''),
	COALESCE((CASE WHEN strpos(h.fields, E'\\u0000') = 0 THEN h.fields::jsonb END) ->> @status, ''),
	i.id, i.entity,
	COALESCE((CASE WHEN strpos(i.fields, E'\\u0000') = 0 THEN i.fields::jsonb END) ->> CASE WHEN i.entity = @housing THEN @housing_date ELSE @water_date END, ''),
	COALESCE((CASE WHEN strpos(i.fields, E'\\u0000') = 0 THEN i.fields::jsonb END) ->> @grade_field, ''),
	COALESCE((CASE WHEN strpos(i.fields, E'\\u0000') = 0 THEN i.fields::jsonb END) ->> @renovation, ''),
	COALESCE((CASE WHEN strpos(i.fields, E'\\u0000') = 0 THEN i.fields::jsonb END) ->> @previous_id, ''),
	i.updated_at, i.seq,
	CASE WHEN i.entity IN (@housing, @water) THEN COALESCE((SELECT c.device_id FROM changes c WHERE c.record_id = i.id AND c.op = 'create' ORDER BY c.version LIMIT 1),
		i.updated_device, '') ELSE '' END,
	CASE WHEN i.entity = @housing THEN (SELECT json_agg(k.id ORDER BY k.pos)::text FROM conflicts k
		WHERE k.record_id = i.id AND k.field = @grade AND k.state IN (@open, @auto)) END,
	CASE WHEN (@water_fields::boolean AND i.entity = @water) OR @children::boolean THEN i.fields END,
	CASE WHEN @children::boolean THEN h.fields END
FROM records h
LEFT JOIN records i ON i.parent_id = h.id AND NOT i.deleted AND (@children::boolean OR i.entity IN (@housing, @water))
WHERE h.entity = @household AND NOT h.deleted AND %s
ORDER BY h.village, h.id`

// jsonKey is a form's field as a key to read; a role without a field reads
// a key no record has.
func jsonKey(field string) string {
	if field == "" {
		return "_none"
	}
	return field
}

func readHouseholds(ctx context.Context, tx pgx.Tx, actor syncproto.Actor, forms *survey.Forms, q syncproto.HouseholdQuery, fn func(*survey.HouseholdInspections) error) (syncproto.Cursor, error) {
	seq, err := head(ctx, tx)
	if err != nil {
		return syncproto.Cursor{}, fmt.Errorf("report head: %w", err)
	}
	at := syncproto.Cursor{Seq: seq, Scope: actor.ScopeKey()}
	where, args := "TRUE", pgx.NamedArgs{}
	switch {
	case actor.AllRegions:
	case len(actor.Scope) == 0:
		where = "FALSE"
	default:
		parts := make([]string, len(actor.Scope))
		for i, p := range actor.Scope {
			name := fmt.Sprintf("scope%d", i)
			parts[i] = "h.village LIKE @" + name
			args[name] = likePrefix(p)
		}
		where = "(" + strings.Join(parts, " OR ") + ")"
	}
	return at, loadHouseholds(ctx, tx, where, args, forms, q, fn)
}

// loadHouseholds runs householdsQuery on tx for the households where (a
// condition on h, with its named args) and calls fn with each household
// and its inspections, in village order.
func loadHouseholds(ctx context.Context, tx pgx.Tx, where string, args pgx.NamedArgs, forms *survey.Forms, q syncproto.HouseholdQuery, fn func(*survey.HouseholdInspections) error) error {
	for k, v := range (pgx.NamedArgs{"housing": forms.Entity(survey.KindHousing), "water": forms.Entity(survey.KindWater),
		"household": forms.HouseholdEntity(), "grade": forms.Grade,
		"open": syncproto.StateOpen, "auto": syncproto.StateAutoResolved, "water_fields": q.WaterFields, "children": q.Children,
		"head_name": jsonKey(forms.HeadName), "registration_no": jsonKey(forms.RegistrationNo),
		"status": jsonKey(forms.Status), "housing_date": jsonKey(forms.HousingDate), "water_date": jsonKey(forms.WaterDate),
		"grade_field": jsonKey(forms.Grade), "renovation": jsonKey(forms.Renovation), "previous_id": jsonKey(forms.Previous)}) {
		args[k] = v
	}
	rows, err := tx.Query(ctx, fmt.Sprintf(householdsQuery, where), args)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer rows.Close()

	housing, water := forms.Entity(survey.KindHousing), forms.Entity(survey.KindWater)
	var h *survey.HouseholdInspections
	for rows.Next() {
		var id, village, headName, regNo, status string
		var inID, inEntity, updated, conflicts, fields, hfields *string
		var inSeq *int64
		var in survey.InspectionFacts
		if err := rows.Scan(&id, &village, &headName, &regNo, &status, &inID, &inEntity, &in.InspectedOn, &in.Grade,
			&in.Renovation, &in.PreviousID, &updated, &inSeq, &in.Device, &conflicts, &fields, &hfields); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if h == nil || h.ID != id {
			if h != nil {
				if err := fn(h); err != nil {
					return err
				}
			}
			h = &survey.HouseholdInspections{ID: id, Village: village, HeadName: headName, RegistrationNo: regNo, Status: status}
			if hfields != nil {
				if err := json.Unmarshal([]byte(*hfields), &h.Fields); err != nil {
					return fmt.Errorf("report: fields of %s: %w", id, err)
				}
			}
		}
		if inID == nil {
			continue
		}
		in.ID, in.Entity, in.UpdatedAt, in.Seq = *inID, *inEntity, parseTime(*updated), *inSeq
		if q.Children {
			r := survey.Record{ID: in.ID, Entity: in.Entity, UpdatedAt: in.UpdatedAt, Seq: in.Seq}
			if fields != nil {
				if err := json.Unmarshal([]byte(*fields), &r.Fields); err != nil {
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
			fields = nil
		}
		in.Kind = survey.KindWater
		if in.Entity == housing {
			in.Kind = survey.KindHousing
		}
		if conflicts != nil {
			if err := json.Unmarshal([]byte(*conflicts), &in.GradeConflicts); err != nil {
				return fmt.Errorf("report: conflicts of %s: %w", in.ID, err)
			}
		}
		if fields != nil {
			if err := json.Unmarshal([]byte(*fields), &in.Fields); err != nil {
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
