-- +goose Up
-- Registry imports (issue 19): other departments' lists, read-only records
-- of their source, never rows of records. Each import of a source is a
-- version; registry_rows holds each source's current rows by key (seen is
-- the version that last read the row: after an import, a row not seen by
-- it is removed); registry_diffs what each version added, changed and
-- removed.
CREATE TABLE registry_imports (
    source      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    file_name   TEXT    NOT NULL DEFAULT '',
    imported_by TEXT    NOT NULL,
    imported_at TEXT    NOT NULL,
    rows        INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    changed     INTEGER NOT NULL,
    removed     INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    PRIMARY KEY (source, version)
);

CREATE TABLE registry_rows (
    source      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    village     TEXT    NOT NULL,
    line        INTEGER NOT NULL,
    fields      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    seen        INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX registry_rows_village ON registry_rows (village, source, key);

CREATE TABLE registry_diffs (
    source      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    op          TEXT    NOT NULL,
    before      TEXT,
    after       TEXT,
    PRIMARY KEY (source, version, key)
);

-- +goose Down
DROP TABLE registry_diffs;
DROP TABLE registry_rows;
DROP TABLE registry_imports;
