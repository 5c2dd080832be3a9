package syncproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
)

// RegistrySumStore is the part of a store that keeps, per village, the
// households only a registry lists (on a household source's list, matching
// no recorded household: the blind spots the coverage report counts) in
// the coverage sums it keeps (SummaryStore): each such household adds the
// counters of a household with no record (survey.Summarizer.Summarize of
// it) to its village's, township's and county's sums, so that the
// overview's households and never inspected are of every household
// anybody lists, read from the same rows. An import marks the villages
// whose rows it added, changed or removed, and a write of a household
// (created, changed, moved, deleted, merged) marks its villages that
// have registry rows, in their transactions; RefreshRegistrySums works
// the marked villages off.
type RegistrySumStore interface {
	// RefreshRegistrySums reconciles up to limit marked villages with the
	// registry sources sch declares (registries.json), in one durable
	// write through the store's write path: it keeps each village's
	// registry-only households and adds the difference to the kept sums.
	// It returns how many villages stay marked. It returns
	// ErrSummariesNotKept before SummaryStore.KeepSummaries (the marks
	// stay).
	RefreshRegistrySums(ctx context.Context, sch *schema.Schema, limit int) (pending int, err error)
	// RegistryOnlyHouseholds returns the kept registry-only households of
	// one village, by id (RegistryHouseholdID), with the name the list
	// gives, and the head of the change log: none when the village is
	// outside the actor's scope. It returns ErrSummariesNotKept before
	// SummaryStore.KeepSummaries.
	RegistryOnlyHouseholds(ctx context.Context, actor Actor, village string) ([]survey.HouseholdMark, Cursor, error)
	// RegistryOnlyInScope calls emit with every kept registry-only
	// household of the actor's scope, by village and then id, from one
	// read transaction (one index range: the cost is the number of such
	// households, not of the households), and returns the head of the
	// change log. It returns ErrSummariesNotKept before
	// SummaryStore.KeepSummaries; an error from emit stops it and is
	// returned.
	RegistryOnlyInScope(ctx context.Context, actor Actor, emit func(RegistryOnly) error) (Cursor, error)
}

// RegistryOnly is a household only a registry lists, with its village.
type RegistryOnly struct {
	Village string
	survey.HouseholdMark
}

// RegistrySumTx is the SQL a refresh of the registry-only households
// needs of a store's write transaction (RefreshRegistryVillage), besides
// the summaries' (SummaryTx: the area counters).
type RegistrySumTx interface {
	SummaryTx
	// RegistryVillage reads the village's live households (no children)
	// and its registry rows, as the transaction holds them.
	RegistryVillage(ctx context.Context, forms *survey.Forms, village string) (*RegistryVillage, error)
	// RegistryOnly returns the village's kept registry-only households:
	// id → summary document.
	RegistryOnly(ctx context.Context, village string) (map[string]string, error)
	// SaveRegistryOnly keeps a registry-only household of the village:
	// its summary s (JSON doc) and the name its list gives.
	SaveRegistryOnly(ctx context.Context, s *survey.HouseholdSummary, name, doc string) error
	// DeleteRegistryOnly forgets a registry-only household of the village.
	DeleteRegistryOnly(ctx context.Context, village, id string) error
	// UnmarkRegistryVillage removes the village's mark.
	UnmarkRegistryVillage(ctx context.Context, village string) error
}

// RegistryMarkTx is what a SummaryBook marks villages with when the
// transaction writes a household (a store keeping RegistrySumStore's
// counts implements it on its SummaryTx).
type RegistryMarkTx interface {
	// MarkRegistryVillage marks the village for RefreshRegistrySums when
	// it has registry rows (one index probe; nothing otherwise).
	MarkRegistryVillage(ctx context.Context, village string) error
}

// RegistrySumsBatch is how many villages a refresh reconciles in one
// write transaction.
const RegistrySumsBatch = 50

// RegistryOnlyOf returns the households only a registry lists in the
// village: one per head of household named by a household source's row
// that matches no recorded household (the reconciliation's blind spots
// "not in field"), in the order of the rows, with no record of their own
// (their fields, when withFields, the village and the head's name).
func RegistryOnlyOf(sch *schema.Schema, forms *survey.Forms, v *RegistryVillage, withFields bool) []*survey.HouseholdInspections {
	reg := sch.Registries()
	if reg == nil || len(reg.Sources) == 0 || len(v.Rows) == 0 {
		return nil
	}
	rec := &ReconciliationService{schema: sch, forms: forms}
	vr := rec.village(reg, v)
	seen := map[string]bool{}
	var out []*survey.HouseholdInspections
	for _, b := range vr.BlindSpots {
		src := reg.Source(b.Source)
		if b.Kind != BlindNotInField || src == nil || src.Level != schema.LevelHousehold || seen[b.Name] {
			continue
		}
		seen[b.Name] = true
		h := &survey.HouseholdInspections{ID: RegistryHouseholdID(b.Source, b.Key), Village: v.Village, HeadName: b.Name}
		if withFields {
			village, _ := json.Marshal(v.Village)
			head, _ := json.Marshal(b.Name)
			h.Fields = map[string]json.RawMessage{forms.Village: village, forms.HeadName: head}
		}
		out = append(out, h)
	}
	return out
}

// RefreshRegistryVillage reconciles one marked village in the
// transaction: its registry-only households (RegistryOnlyOf) summarized
// by keep replace those kept, the difference added to the village's,
// township's and county's sums, and the mark removed.
func RefreshRegistryVillage(ctx context.Context, keep *SummaryKeeper, sch *schema.Schema, tx RegistrySumTx, village string) error {
	forms := keep.Sum.Forms()
	v, err := tx.RegistryVillage(ctx, forms, village)
	if err != nil {
		return fmt.Errorf("registry sums of %s: %w", village, err)
	}
	kept, err := tx.RegistryOnly(ctx, village)
	if err != nil {
		return fmt.Errorf("registry sums of %s: %w", village, err)
	}
	var sums AreaSums
	decode := func(doc string) (*survey.HouseholdSummary, error) {
		s := &survey.HouseholdSummary{}
		return s, json.Unmarshal([]byte(doc), s)
	}
	for _, h := range RegistryOnlyOf(sch, forms, v, true) {
		s := keep.Sum.Summarize(h, keep.AsOf)
		doc, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		oldDoc, had := kept[h.ID]
		delete(kept, h.ID)
		if had && oldDoc == string(doc) {
			continue
		}
		var old *survey.HouseholdSummary
		if had {
			if old, err = decode(oldDoc); err != nil {
				return fmt.Errorf("registry sums of %s: %w", h.ID, err)
			}
		}
		sums.Add(old, &s)
		if err := tx.SaveRegistryOnly(ctx, &s, h.HeadName, string(doc)); err != nil {
			return fmt.Errorf("registry sums of %s: %w", village, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(kept)) {
		old, err := decode(kept[id])
		if err != nil {
			return fmt.Errorf("registry sums of %s: %w", id, err)
		}
		sums.Add(old, nil)
		if err := tx.DeleteRegistryOnly(ctx, village, id); err != nil {
			return fmt.Errorf("registry sums of %s: %w", village, err)
		}
	}
	if err := sums.Write(ctx, tx); err != nil {
		return err
	}
	return tx.UnmarkRegistryVillage(ctx, village)
}

// RegistrySumsReadLimit is the most marked villages a read of the sums
// reconciles itself first (RefreshRegistrySums through the store): an
// import or a push marks a few; a backlog larger than this (a rebuild of
// the summaries marks every village with registry rows) is worked off by
// the background refresher (server/cli), the sums meanwhile counting the
// villages not yet reconciled as they were.
const RegistrySumsReadLimit = RegistrySumsBatch

// refreshRegistrySums reconciles up to RegistrySumsReadLimit marked
// villages before a read of the kept sums, when the store keeps
// registry-only counts and the served forms declare registries.
func (r *ReportService) refreshRegistrySums(ctx context.Context) error {
	rs, ok := r.store.(RegistrySumStore)
	if reg := r.schema.Registries(); !ok || reg == nil || len(reg.Sources) == 0 {
		return nil
	}
	_, err := rs.RefreshRegistrySums(ctx, r.schema, RegistrySumsReadLimit)
	if errors.Is(err, ErrSummariesNotKept) {
		return nil
	}
	return err
}

// RefreshRegistrySums reconciles every marked village, batch after batch,
// until none is left (or ctx ends): what the server runs in the
// background. It returns ErrSummariesNotKept when the store keeps no
// registry-only counts or no summaries.
func (r *ReportService) RefreshRegistrySums(ctx context.Context) error {
	rs, ok := r.store.(RegistrySumStore)
	if !ok {
		return ErrSummariesNotKept
	}
	for {
		left, err := rs.RefreshRegistrySums(ctx, r.schema, RegistrySumsBatch)
		if err != nil || left == 0 {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// withRegistryOnly adds to a village's never-inspected households read
// from the store's summaries those only a registry lists, kept by the
// store (RegistrySumStore), in id order as the summaries' are.
func (r *ReportService) withRegistryOnly(ctx context.Context, actor Actor, village string, list []survey.HouseholdMark) ([]survey.HouseholdMark, error) {
	rs, ok := r.store.(RegistrySumStore)
	if reg := r.schema.Registries(); !ok || reg == nil || len(reg.Sources) == 0 {
		return list, nil
	}
	more, _, err := rs.RegistryOnlyHouseholds(ctx, actor, village)
	if errors.Is(err, ErrSummariesNotKept) || len(more) == 0 {
		return list, nil
	}
	if err != nil {
		return nil, err
	}
	list = append(list, more...)
	slices.SortFunc(list, func(a, b survey.HouseholdMark) int { return strings.Compare(a.ID, b.ID) })
	return list, nil
}

// RegistryOnlyHouseholds returns the households of one village of the
// actor's scope that only a registry lists (on a household source's list,
// recorded by no team), by id with the list's name: the store's kept ones
// when it keeps them (RegistrySumStore), else reconciled from the
// village's households and rows. None when the forms declare no
// registries or the village is outside the scope.
func (r *ReportService) RegistryOnlyHouseholds(ctx context.Context, actor Actor, village string) ([]survey.HouseholdMark, error) {
	list := []survey.HouseholdMark{}
	if reg := r.schema.Registries(); reg == nil || len(reg.Sources) == 0 || !actor.InScope(village) {
		return list, nil
	}
	if rs, ok := r.store.(RegistrySumStore); ok {
		if err := r.refreshRegistrySums(ctx); err != nil {
			return nil, err
		}
		got, _, err := rs.RegistryOnlyHouseholds(ctx, actor, village)
		if !errors.Is(err, ErrSummariesNotKept) {
			return got, err
		}
	}
	rs, ok := r.store.(RegistryStore)
	if !ok {
		return list, nil
	}
	actor.Scope, actor.AllRegions = []string{village}, false
	_, err := rs.RegistryVillages(ctx, actor, HouseholdQuery{Forms: r.forms}, func(v *RegistryVillage) error {
		if v.Village == village {
			for _, h := range RegistryOnlyOf(r.schema, r.forms, v, false) {
				list = append(list, survey.HouseholdMark{ID: h.ID, HeadName: h.HeadName})
			}
		}
		return nil
	})
	slices.SortFunc(list, func(a, b survey.HouseholdMark) int { return strings.Compare(a.ID, b.ID) })
	return list, err
}
