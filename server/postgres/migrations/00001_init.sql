-- +goose Up
-- The PostgreSQL store's schema: the tables of the SQLite store's
-- migrations 1 to 16 as they stand after them (same names, same columns),
-- in PostgreSQL's types. JSON is kept as text, byte for byte as the push
-- wrote it (pulls send it as stored); it is cast to jsonb where a query
-- reads inside it. Every text column collates as "C" (bytes), as SQLite
-- compares: village prefixes, ids and RFC 3339 times order and match the
-- same on every database whatever its default collation, and prefix
-- matches (LIKE '5002%') can use the indexes.

CREATE TABLE changes (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity         TEXT COLLATE "C" NOT NULL,
    record_id      TEXT COLLATE "C" NOT NULL,
    version        BIGINT  NOT NULL,
    op             TEXT COLLATE "C" NOT NULL,
    changeset_id   TEXT COLLATE "C",
    user_id        TEXT COLLATE "C" NOT NULL,
    device_id      TEXT COLLATE "C" NOT NULL,
    device_at      TEXT COLLATE "C" NOT NULL,
    server_at      TEXT COLLATE "C" NOT NULL,
    flags          TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    diff           TEXT COLLATE "C" NOT NULL,
    conflict_ids   TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    village        TEXT COLLATE "C" NOT NULL DEFAULT '',
    note           TEXT COLLATE "C",
    schema_version INTEGER,
    sent           TEXT COLLATE "C"
);
CREATE INDEX changes_record ON changes (record_id, version);

CREATE TABLE records (
    id             TEXT COLLATE "C" PRIMARY KEY,
    entity         TEXT COLLATE "C" NOT NULL,
    version        BIGINT  NOT NULL,
    village        TEXT COLLATE "C" NOT NULL DEFAULT '',
    parent_id      TEXT COLLATE "C",
    fields         TEXT COLLATE "C" NOT NULL,
    meta           TEXT COLLATE "C" NOT NULL,
    deleted        BOOLEAN NOT NULL DEFAULT FALSE,
    merged_into    TEXT COLLATE "C",
    seq            BIGINT  NOT NULL,
    created_at     TEXT COLLATE "C" NOT NULL,
    updated_at     TEXT COLLATE "C" NOT NULL,
    updated_by     TEXT COLLATE "C" NOT NULL,
    updated_device TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX records_seq ON records (seq);
CREATE INDEX records_village ON records (village, entity);
CREATE INDEX records_village_seq ON records (village, seq);
CREATE INDEX records_parent ON records (parent_id);
CREATE INDEX households_regno ON records (village, ((CASE WHEN strpos(fields, E'\\u0000') = 0 THEN fields::jsonb END) ->> 'registration_no')) WHERE entity = 'household';
CREATE INDEX households_head ON records (village, ((CASE WHEN strpos(fields, E'\\u0000') = 0 THEN fields::jsonb END) ->> 'head_name')) WHERE entity = 'household';

CREATE TABLE receipts (
    pos          BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE,
    changeset_id TEXT COLLATE "C" PRIMARY KEY,
    device_id    TEXT COLLATE "C" NOT NULL,
    device_seq   BIGINT  NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    content_hash TEXT COLLATE "C" NOT NULL,
    response     TEXT COLLATE "C" NOT NULL,
    received_at  TEXT COLLATE "C" NOT NULL,
    applied      BIGINT  NOT NULL,
    merged       BIGINT  NOT NULL,
    conflicts    BIGINT  NOT NULL,
    rejected     BIGINT  NOT NULL
);
CREATE INDEX receipts_device ON receipts (device_id, device_seq);

CREATE TABLE devices (
    device_id      TEXT COLLATE "C" PRIMARY KEY,
    user_id        TEXT COLLATE "C" NOT NULL,
    last_seq       BIGINT  NOT NULL,
    last_push_at   TEXT COLLATE "C",
    applied        BIGINT  NOT NULL DEFAULT 0,
    merged         BIGINT  NOT NULL DEFAULT 0,
    conflicts      BIGINT  NOT NULL DEFAULT 0,
    rejected       BIGINT  NOT NULL DEFAULT 0,
    last_pull_at   TEXT COLLATE "C",
    last_pull_seq  BIGINT  NOT NULL DEFAULT 0,
    schema_version INTEGER
);

CREATE TABLE conflicts (
    pos              BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE,
    id               TEXT COLLATE "C" PRIMARY KEY,
    entity           TEXT COLLATE "C" NOT NULL,
    record_id        TEXT COLLATE "C" NOT NULL,
    village          TEXT COLLATE "C" NOT NULL DEFAULT '',
    field            TEXT COLLATE "C" NOT NULL,
    policy           TEXT COLLATE "C" NOT NULL,
    stored           TEXT COLLATE "C" NOT NULL,
    incoming         TEXT COLLATE "C" NOT NULL,
    kept             TEXT COLLATE "C" NOT NULL,
    state            TEXT COLLATE "C" NOT NULL,
    changeset_id     TEXT COLLATE "C" NOT NULL,
    device_id        TEXT COLLATE "C" NOT NULL,
    user_id          TEXT COLLATE "C" NOT NULL,
    device_at        TEXT COLLATE "C" NOT NULL,
    created_at       TEXT COLLATE "C" NOT NULL,
    version          BIGINT  NOT NULL,
    resolved_at      TEXT COLLATE "C",
    resolved_by      TEXT COLLATE "C",
    resolved_device  TEXT COLLATE "C",
    resolution       TEXT COLLATE "C",
    resolution_note  TEXT COLLATE "C",
    resolved_version BIGINT
);
CREATE INDEX conflicts_record ON conflicts (record_id);
CREATE INDEX conflicts_state ON conflicts (state, village);

CREATE TABLE quarantine (
    pos          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id           TEXT COLLATE "C" PRIMARY KEY,
    changeset_id TEXT COLLATE "C" NOT NULL,
    device_id    TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    entity       TEXT COLLATE "C" NOT NULL,
    record_id    TEXT COLLATE "C" NOT NULL,
    village      TEXT COLLATE "C" NOT NULL DEFAULT '',
    errors       TEXT COLLATE "C" NOT NULL,
    raw          TEXT COLLATE "C" NOT NULL,
    received_at  TEXT COLLATE "C" NOT NULL,
    state        TEXT COLLATE "C" NOT NULL DEFAULT 'open',
    closed_at    TEXT COLLATE "C",
    closed_by    TEXT COLLATE "C",
    close_note   TEXT COLLATE "C"
);
CREATE INDEX quarantine_changeset ON quarantine (changeset_id);
CREATE INDEX quarantine_village ON quarantine (village);

CREATE TABLE scope_exits (
    seq         BIGINT NOT NULL,
    record_id   TEXT COLLATE "C" NOT NULL,
    entity      TEXT COLLATE "C" NOT NULL,
    old_village TEXT COLLATE "C" NOT NULL,
    new_village TEXT COLLATE "C" NOT NULL
);
CREATE INDEX scope_exits_seq ON scope_exits (seq);

CREATE TABLE scope_sums (
    village TEXT COLLATE "C" PRIMARY KEY,
    n  BIGINT NOT NULL DEFAULT 0,
    s0 BIGINT NOT NULL DEFAULT 0,
    s1 BIGINT NOT NULL DEFAULT 0,
    s2 BIGINT NOT NULL DEFAULT 0,
    s3 BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE settings (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE duplicates (
    id          TEXT COLLATE "C" PRIMARY KEY,
    village     TEXT COLLATE "C" NOT NULL,
    household_a TEXT COLLATE "C" NOT NULL,
    household_b TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    state       TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    decided_at  TEXT COLLATE "C",
    decided_by  TEXT COLLATE "C",
    survivor    TEXT COLLATE "C",
    note        TEXT COLLATE "C"
);
CREATE INDEX duplicates_village ON duplicates (state, village);
CREATE UNIQUE INDEX duplicates_pair ON duplicates (household_a, household_b);

CREATE TABLE attachment_refs (
    hash      TEXT COLLATE "C" NOT NULL,
    record_id TEXT COLLATE "C" NOT NULL,
    village   TEXT COLLATE "C" NOT NULL,
    added_by  TEXT COLLATE "C" NOT NULL DEFAULT '',
    legacy    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (hash, record_id)
);
CREATE INDEX attachment_refs_record ON attachment_refs (record_id);

CREATE TABLE attachment_uploads (
    hash      TEXT COLLATE "C" NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL,
    at        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (hash, user_id, device_id)
);

CREATE TABLE attachment_released (
    hash TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    at   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE device_names (
    device_id  TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE outbox_replays (
    changeset_id TEXT COLLATE "C" PRIMARY KEY,
    replayed_by  TEXT COLLATE "C" NOT NULL,
    via_device   TEXT COLLATE "C" NOT NULL,
    replayed_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE schema_versions (
    version      INTEGER PRIMARY KEY,
    digest       TEXT COLLATE "C" NOT NULL,
    document     BYTEA NOT NULL,
    published_at TEXT COLLATE "C" NOT NULL
);

-- +goose Down
DROP TABLE schema_versions;
DROP TABLE outbox_replays;
DROP TABLE device_names;
DROP TABLE attachment_released;
DROP TABLE attachment_uploads;
DROP TABLE attachment_refs;
DROP TABLE duplicates;
DROP TABLE settings;
DROP TABLE scope_sums;
DROP TABLE scope_exits;
DROP TABLE quarantine;
DROP TABLE conflicts;
DROP TABLE devices;
DROP TABLE receipts;
DROP TABLE records;
DROP TABLE changes;
