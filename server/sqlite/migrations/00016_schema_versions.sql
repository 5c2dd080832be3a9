-- +goose Up
-- Every schema version the server has published (served): immutable once
-- written. digest is the SHA-256 (hex) of document, the version's
-- canonical JSON (its version.json members and its forms).
CREATE TABLE schema_versions (
    version      INTEGER PRIMARY KEY,
    digest       TEXT NOT NULL,
    document     BLOB NOT NULL,
    published_at TEXT NOT NULL
);

-- The schema_version each change was sent in, and its fields as sent when
-- they were migrated on arrival (the value of a dropped field stays here).
-- NULL: a change recorded before versions were kept.
ALTER TABLE changes ADD COLUMN schema_version INTEGER;
ALTER TABLE changes ADD COLUMN sent TEXT;

-- The schema_version a device last pushed in: a pull without
-- ?schema_version= answers in it.
ALTER TABLE devices ADD COLUMN schema_version INTEGER;

-- +goose Down
ALTER TABLE devices DROP COLUMN schema_version;
ALTER TABLE changes DROP COLUMN sent;
ALTER TABLE changes DROP COLUMN schema_version;
DROP TABLE schema_versions;
