package syncproto

import (
	"context"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema/survey"
)

// registryHouseholds is the namespace of the ids of the households only a
// registry lists (RegistryHouseholdID).
var registryHouseholds = uuid.MustParse("6f1d2c1e-19a0-5c3b-9e61-7d0f4a2b8c90")

// RegistryHouseholdID is the id the reports give a household that only a
// registry lists (no team recorded it): a name-based UUID of the source
// and the row's key, the same at every report.
func RegistryHouseholdID(source, key string) string {
	return uuid.NewSHA1(registryHouseholds, []byte(source+"/"+key)).String()
}

// households streams the households of the actor's scope for the coverage
// and verification reports: the households the teams recorded and, when
// the store keeps registries and the served forms declare them, the
// households that only a registry lists (a row of a household source
// matching no recorded household; one per village and head of household
// whichever lists hold it) with no record of their own — so that "never
// inspected" and "no evidence" count every household anybody lists. The
// households come village by village, from one read.
func (r *ReportService) households(ctx context.Context, actor Actor, q HouseholdQuery, fn func(*survey.HouseholdInspections) error) (Cursor, error) {
	return r.householdsMarked(ctx, actor, q, func(h *survey.HouseholdInspections, _ bool) error { return fn(h) })
}

// householdsMarked is households telling fn whether each household was
// recorded by a team (false: only a registry lists it).
func (r *ReportService) householdsMarked(ctx context.Context, actor Actor, q HouseholdQuery, mark func(h *survey.HouseholdInspections, recorded bool) error) (Cursor, error) {
	fn := func(h *survey.HouseholdInspections) error { return mark(h, true) }
	rs, ok := r.store.(RegistryStore)
	reg := r.schema.Registries()
	if !ok || reg == nil || len(reg.Sources) == 0 {
		return r.store.HouseholdInspections(ctx, actor, q, fn)
	}
	// Without any import the reports read the households alone, as
	// before registries (and as fast). An import committed between this
	// look and the read is counted from the next report on.
	if imps, err := rs.RegistryImports(ctx, ""); err != nil {
		return Cursor{}, err
	} else if len(imps) == 0 {
		return r.store.HouseholdInspections(ctx, actor, q, fn)
	}
	return rs.RegistryVillages(ctx, actor, q, func(v *RegistryVillage) error {
		for _, h := range v.Households {
			if err := fn(h); err != nil {
				return err
			}
		}
		for _, h := range RegistryOnlyOf(r.schema, r.forms, v, q.Children) {
			if err := mark(h, false); err != nil {
				return err
			}
		}
		return nil
	})
}
