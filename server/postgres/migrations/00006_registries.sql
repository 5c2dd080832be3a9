-- +goose Up
-- Registry imports (issue 19): other departments' lists, read-only records
-- of their source, never rows of records. Each import of a source is a
-- version; registry_rows holds each source's current rows by key (seen is
-- the version that last read the row: after an import, a row not seen by
-- it is removed); registry_diffs what each version added, changed and
-- removed.
CREATE TABLE registry_imports (
    source      TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT COLLATE "C" NOT NULL,
    file_name   TEXT COLLATE "C" NOT NULL DEFAULT '',
    imported_by TEXT COLLATE "C" NOT NULL,
    imported_at TEXT COLLATE "C" NOT NULL,
    rows        INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    changed     INTEGER NOT NULL,
    removed     INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    PRIMARY KEY (source, version)
);

CREATE TABLE registry_rows (
    source      TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    village     TEXT COLLATE "C" NOT NULL,
    line        INTEGER NOT NULL,
    fields      TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    seen        INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX registry_rows_village ON registry_rows (village, source, key);

CREATE TABLE registry_diffs (
    source      TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    op          TEXT COLLATE "C" NOT NULL,
    before      TEXT COLLATE "C",
    after       TEXT COLLATE "C",
    PRIMARY KEY (source, version, key)
);

-- The department a user belongs to (departments.json), and the
-- department of the actor of each change. '' for none.
ALTER TABLE users ADD COLUMN department TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN department TEXT COLLATE "C" NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE changes DROP COLUMN department;
ALTER TABLE users DROP COLUMN department;
DROP TABLE registry_diffs;
DROP TABLE registry_rows;
DROP TABLE registry_imports;
