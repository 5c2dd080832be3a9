package syncproto

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

// RegistryDevice is the device a cross-department conflict names: the
// registry source whose list disagrees with the field record, as
// "registry:SOURCE"; its user is "department:DEPARTMENT".
func RegistryDevice(source string) string { return "registry:" + source }

// OpenConflicts reconciles the actor's scope and opens a cross-department
// conflict in the supervisors' queue for every disagreement between a
// registry and the field record (Kind DisagreeField): on the household or
// person record, the field, the field's value stored and kept, the
// registry's incoming; device RegistryDevice(source), user
// "department:DEPARTMENT". It is idempotent: a record already holding an
// open conflict on the field from the source gets no second one, and a
// record whose field meanwhile equals the registry's value none. Nothing
// is decided: the record keeps its value until a supervisor resolves the
// conflict (POST /v1/conflicts/{id}/resolve), which makes the decision a
// version that syncs back like any resolution. Two registries that
// disagree with each other disagree with the field record too (unless it
// lacks the value): each opens its own conflict on the same field. It
// returns how many conflicts it opened, all in one write transaction.
func (s *ReconciliationService) OpenConflicts(ctx context.Context, actor Actor, w SupervisionWriter, now time.Time) (int, error) {
	type pending struct {
		d       Disagreement
		village string
	}
	var todo []pending
	if _, err := s.Reconcile(ctx, actor, func(v *VillageReconciliation) error {
		for _, d := range v.Disagreements {
			if d.Kind == DisagreeField {
				todo = append(todo, pending{d, v.Village})
			}
		}
		return nil
	}); err != nil || len(todo) == 0 {
		return 0, err
	}
	reg := s.schema.Registries()
	opened := 0
	err := w.WriteSupervision(ctx, "registry_conflicts", func(ctx context.Context, tx SuperviseTx) error {
		opened = 0
		for _, p := range todo {
			id := p.d.HouseholdID
			if p.d.PersonID != "" {
				id = p.d.PersonID
			}
			rec, err := tx.Record(ctx, id)
			if err != nil {
				return err
			}
			if rec == nil || rec.Deleted || !actor.InScope(rec.Village) {
				continue
			}
			current := valueOf(rec.Fields, p.d.Field)
			if sameValue(current, p.d.A.Value) {
				continue
			}
			open, err := tx.OpenConflicts(ctx, id)
			if err != nil {
				return err
			}
			dup := false
			for _, c := range open {
				dup = dup || (c.Field == p.d.Field && c.DeviceID == RegistryDevice(p.d.A.Source))
			}
			if dup {
				continue
			}
			incoming := bytes.Clone(p.d.A.Value)
			var set []string
			if json.Unmarshal(current, &set) == nil {
				// A set field: the registry's value joins the set.
				incoming, _ = json.Marshal(append(set, text(p.d.A.Value)))
			}
			dept := ""
			if src := reg.Source(p.d.A.Source); src != nil {
				dept = src.Department
			}
			if err := tx.AddConflict(ctx, ConflictEntry{ID: newID(), Entity: rec.Entity, RecordID: id, Village: rec.Village,
				Field: p.d.Field, Policy: "manual", Stored: current, Incoming: incoming, Kept: current, State: StateOpen,
				ChangesetID: "registry:" + p.d.A.Source, DeviceID: RegistryDevice(p.d.A.Source), UserID: "department:" + dept,
				DeviceAt: now.UTC(), CreatedAt: now.UTC(), Version: rec.Version}); err != nil {
				return err
			}
			opened++
		}
		return nil
	})
	return opened, err
}
