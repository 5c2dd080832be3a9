-- +goose Up
-- Which records reference which photos: one row per digest in a record's
-- photos field (a set of SHA-256 digests), with the record's village, so
-- that a download is allowed by one indexed lookup — a caller may fetch a
-- photo that a record in their scope references. Written in the same
-- transaction as every version of a record, and moved with an inspection
-- when its household moves to another village.
CREATE TABLE attachment_refs (
    hash      TEXT NOT NULL,
    record_id TEXT NOT NULL,
    village   TEXT NOT NULL,
    PRIMARY KEY (hash, record_id)
) WITHOUT ROWID;
CREATE INDEX attachment_refs_record ON attachment_refs (record_id);

-- The records written before this migration.
INSERT OR IGNORE INTO attachment_refs (hash, record_id, village)
SELECT p.value, r.id, r.village
FROM records r, json_each(r.fields, '$.photos') p
WHERE json_type(r.fields, '$.photos') = 'array' AND p.type = 'text';

-- +goose Down
DROP TABLE attachment_refs;
