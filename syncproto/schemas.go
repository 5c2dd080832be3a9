package syncproto

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// PublishedSchema is a schema version as a store keeps it once the server
// has served it: its number, the SHA-256 (hex) of its canonical document
// (schema.Catalog.Document), the document, and when it was first served.
type PublishedSchema struct {
	Version     int
	Digest      string
	Document    []byte
	PublishedAt time.Time
}

// SchemaStore keeps the schema versions a server has published. A
// published version is immutable: the store never changes or removes one.
type SchemaStore interface {
	// PublishedSchemas returns every published version, oldest first.
	PublishedSchemas(ctx context.Context) ([]PublishedSchema, error)
	// PublishSchema records a version not published before. A version
	// already published with the same digest is kept as it is (no error);
	// with another digest it is EConflict and nothing changes.
	PublishSchema(ctx context.Context, v PublishedSchema) error
	// DeviceSchemaVersion returns the schema_version the device last
	// pushed a change set in; 0 when it has pushed none (or none since
	// versions were kept).
	DeviceSchemaVersion(ctx context.Context, deviceID string) (int, error)
	// RecordMigrator brings the stored records to a newly published
	// version (MigrateStoredRecords).
	RecordMigrator
}

// OpenCatalog holds a form set to the versions the store published before
// (schema.Catalog.WithPublished: a changed published version is an error
// naming it and what differs; a published version the set lacks is still
// served) and publishes the set's new versions, stamped now. Then every
// stored record still in an older version is migrated to the latest
// (MigrateStoredRecords, in the store's batches), so that pulls, snapshots
// and merges meet records in the version they are served in; a crash
// leaves each record as it was or migrated whole, and the next OpenCatalog
// resumes. It returns the catalog to serve, and an error (the
// records each as they were or migrated whole) when a stored record cannot
// be migrated.
func OpenCatalog(ctx context.Context, store SchemaStore, set *schema.Catalog, now time.Time) (*schema.Catalog, error) {
	stored, err := store.PublishedSchemas(ctx)
	if err != nil {
		return nil, fmt.Errorf("published schema versions: %w", err)
	}
	docs := make(map[int][]byte, len(stored))
	for _, p := range stored {
		docs[p.Version] = p.Document
	}
	served, err := set.WithPublished(docs)
	if err != nil {
		return nil, err
	}
	for _, n := range served.Versions() {
		if _, ok := docs[n]; ok {
			continue
		}
		err := store.PublishSchema(ctx, PublishedSchema{Version: n, Digest: served.Digest(n), Document: served.Document(n), PublishedAt: now.UTC()})
		if err != nil {
			return nil, fmt.Errorf("publishing schema version %d: %w", n, err)
		}
	}
	if _, err := MigrateStoredRecords(ctx, store, served, now); err != nil {
		return nil, err
	}
	return served, nil
}
