package syncproto

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// RecordMigrator is what migrating the stored records to a newly published
// schema version needs of a store.
type RecordMigrator interface {
	// RecordsSchemaVersion returns the schema version every stored record
	// is in, but those an interrupted migration already moved
	// (PendingRecordsVersion); 1 when the store never recorded one
	// (records written before versions were kept are in version 1).
	RecordsSchemaVersion(ctx context.Context) (int, error)
	// PendingRecordsVersion returns the version an interrupted
	// MigrateRecords was moving the records to, 0 when none is pending:
	// the records it reached are in that version, the others in
	// RecordsSchemaVersion.
	PendingRecordsVersion(ctx context.Context) (int, error)
	// MigrateRecords calls fn on every stored record, tombstones and
	// merged records included, and writes back each record's Fields and
	// Meta as fn left them (nothing else of the record: not its version,
	// its sequence in the change log nor the change log itself), then
	// records that every record is in version to. It may do so in batches,
	// each a durable transaction of the store's write path that also
	// records how far it got; each record is either as it was or migrated
	// whole, never half, and a MigrateRecords to the same version after a
	// failure or a crash resumes after the last committed batch (calling
	// fn only on the records not yet migrated). When fn returns an error,
	// or a transaction cannot commit, the batch changes nothing and
	// MigrateRecords returns that error. A migration to another version
	// while one is pending is an error.
	MigrateRecords(ctx context.Context, to int, fn func(rec *StoredRecord) error) error
}

// MigrateStoredRecords brings every stored record from the schema version
// the store holds them in to cat's latest, in place, through the store's
// MigrateRecords (MigrateStoredRecord on each): after it, a pull's Down
// starts from the version the records are really in. A migration an
// earlier start left unfinished is finished first, to the version it was
// for, then the records go on to the latest. A store already in the
// latest version is left alone. It returns how many versions the records
// moved (0 when none) or the first record that cannot be migrated; then
// every record is as it was or migrated whole, and the next call resumes.
func MigrateStoredRecords(ctx context.Context, store RecordMigrator, cat *schema.Catalog, now time.Time) (int, error) {
	from, err := store.RecordsSchemaVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("records schema version: %w", err)
	}
	latest := cat.Latest().Version
	start := from
	pending, err := store.PendingRecordsVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("records migration: %w", err)
	}
	if pending != 0 && pending != latest {
		// Finish the interrupted migration with the versions it was for.
		through := cat.Through(pending)
		if through == nil || pending <= from {
			return 0, fmt.Errorf("an interrupted migration of the stored records to schema version %d is pending, which the form set (latest %d) does not hold", pending, latest)
		}
		if err := migrateRecordsTo(ctx, store, through, from, now); err != nil {
			return 0, err
		}
		from = pending
	}
	if from == latest {
		return latest - start, nil
	}
	if cat.Version(from) == nil || from > latest {
		return 0, fmt.Errorf("stored records are in schema version %d, which the form set (latest %d) does not hold", from, latest)
	}
	if err := migrateRecordsTo(ctx, store, cat, from, now); err != nil {
		return 0, err
	}
	return latest - start, nil
}

// migrateRecordsTo migrates the stored records from version from to cat's
// latest.
func migrateRecordsTo(ctx context.Context, store RecordMigrator, cat *schema.Catalog, from int, now time.Time) error {
	latest := cat.Latest().Version
	// The origins depend on the entity only: worked out once, not per record.
	origins := make(map[string]map[string]string, len(cat.Latest().Forms))
	for _, f := range cat.Latest().Forms {
		origins[f.Entity] = cat.Origins(from, f.Entity)
	}
	err := store.MigrateRecords(ctx, latest, func(rec *StoredRecord) error {
		return migrateStoredRecord(cat, from, origins[rec.Entity], rec, now)
	})
	if err != nil {
		return fmt.Errorf("migrating stored records from schema version %d to %d: %w", from, latest, err)
	}
	return nil
}

// MigrateStoredRecord moves one stored record from schema version from to
// cat's latest, in place: its fields through Catalog.UpRecord (a default
// fills a field the record lacks when the field is new or now required),
// and its per-field metadata with them — a
// renamed field keeps its metadata under its new name, a dropped field's
// goes, a derived field takes its source's (the write that set the source
// set it; a record born in the latest version has exactly that) or, when
// the source has none, the record's last update's, as a defaulted field
// takes too. The record's version
// and the deletion flag's metadata do not change: the data is the same,
// only its shape, so no tablet sees a concurrent edit. An entity the
// latest version has no form for is left as it is.
func MigrateStoredRecord(cat *schema.Catalog, from int, rec *StoredRecord, now time.Time) error {
	return migrateStoredRecord(cat, from, cat.Origins(from, rec.Entity), rec, now)
}

// migrateStoredRecord is MigrateStoredRecord with the entity's origins
// (Catalog.Origins) given.
func migrateStoredRecord(cat *schema.Catalog, from int, origins map[string]string, rec *StoredRecord, now time.Time) error {
	if cat.Latest().Form(rec.Entity) == nil || cat.Version(from).Form(rec.Entity) == nil {
		return nil
	}
	up, _, err := cat.UpRecord(from, rec.Entity, rec.Fields)
	if err != nil {
		return fmt.Errorf("record %s (%s): %w", rec.ID, rec.Entity, err)
	}
	meta := make(map[string]FieldMeta, len(rec.Meta))
	if m, ok := rec.Meta[FieldDeleted]; ok {
		meta[FieldDeleted] = m
	}
	asOfMigration := FieldMeta{Version: rec.Version, Device: rec.UpdatedDevice, At: rec.UpdatedAt}
	if asOfMigration.At.IsZero() {
		asOfMigration.At = now.UTC()
	}
	for name := range up {
		if m, ok := rec.Meta[origins[name]]; ok && origins[name] != "" {
			meta[name] = m
		} else {
			meta[name] = asOfMigration
		}
	}
	// A field the record's history wrote and then cleared (null removes it
	// from the fields) keeps its metadata under its new name, so a stale
	// edit of it still meets the clearing.
	for name, o := range origins {
		if _, ok := meta[name]; ok {
			continue
		}
		if m, ok := rec.Meta[o]; ok {
			meta[name] = m
		}
	}
	rec.Fields, rec.Meta = up, meta
	return nil
}
