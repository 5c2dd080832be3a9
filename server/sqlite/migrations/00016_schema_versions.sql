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

-- +goose Down
DROP TABLE schema_versions;
