-- +goose Up
-- The append-only change log: every accepted version of every record, with
-- who, which device, when, and the before/after of each field. Its seq is the
-- global change sequence that pull cursors name.
CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    entity       TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    op           TEXT    NOT NULL,
    changeset_id TEXT,
    user_id      TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    device_at    TEXT    NOT NULL,
    server_at    TEXT    NOT NULL,
    flags        TEXT    NOT NULL DEFAULT '[]',
    diff         TEXT    NOT NULL,
    conflict_ids TEXT    NOT NULL DEFAULT '[]',
    village      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX changes_record ON changes (record_id, version);

-- The current state of every record, with per-field version/device/time of
-- the last write (meta). seq is the change-log position of its last change.
CREATE TABLE records (
    id             TEXT    PRIMARY KEY,
    entity         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    village        TEXT    NOT NULL DEFAULT '',
    parent_id      TEXT,
    fields         TEXT    NOT NULL,
    meta           TEXT    NOT NULL,
    deleted        INTEGER NOT NULL DEFAULT 0,
    merged_into    TEXT,
    seq            INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    updated_by     TEXT    NOT NULL,
    updated_device TEXT    NOT NULL
);
CREATE UNIQUE INDEX records_seq ON records (seq);
CREATE INDEX records_village ON records (village, entity);
CREATE INDEX records_parent ON records (parent_id);

-- One receipt per change set: the stored response and a content hash, so
-- that a retry is answered identically and never applied twice.
CREATE TABLE receipts (
    changeset_id TEXT    PRIMARY KEY,
    device_id    TEXT    NOT NULL,
    device_seq   INTEGER NOT NULL,
    user_id      TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    response     TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    applied      INTEGER NOT NULL,
    merged       INTEGER NOT NULL,
    conflicts    INTEGER NOT NULL,
    rejected     INTEGER NOT NULL
);
CREATE INDEX receipts_device ON receipts (device_id, device_seq);

-- Per device: the last accepted device_seq and running counts.
CREATE TABLE devices (
    device_id    TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    last_seq     INTEGER NOT NULL,
    last_push_at TEXT,
    applied      INTEGER NOT NULL DEFAULT 0,
    merged       INTEGER NOT NULL DEFAULT 0,
    conflicts    INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0
);

-- Every concurrent-edit decision, open (manual) or auto-resolved.
CREATE TABLE conflicts (
    id           TEXT    PRIMARY KEY,
    entity       TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    village      TEXT    NOT NULL DEFAULT '',
    field        TEXT    NOT NULL,
    policy       TEXT    NOT NULL,
    stored       TEXT    NOT NULL,
    incoming     TEXT    NOT NULL,
    kept         TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    changeset_id TEXT    NOT NULL,
    device_id    TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    device_at    TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX conflicts_record ON conflicts (record_id);
CREATE INDEX conflicts_state ON conflicts (state, village);

-- Rejected changes, with the reasons and the raw change.
CREATE TABLE quarantine (
    id           TEXT PRIMARY KEY,
    changeset_id TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    entity       TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    village      TEXT NOT NULL DEFAULT '',
    errors       TEXT NOT NULL,
    raw          TEXT NOT NULL,
    received_at  TEXT NOT NULL
);
CREATE INDEX quarantine_changeset ON quarantine (changeset_id);
CREATE INDEX quarantine_village ON quarantine (village);

-- +goose Down
DROP TABLE quarantine;
DROP TABLE conflicts;
DROP TABLE devices;
DROP TABLE receipts;
DROP TABLE records;
DROP TABLE changes;
