-- +goose Up
-- A supervisor's decision on a conflict.
ALTER TABLE conflicts ADD COLUMN resolved_at TEXT;
ALTER TABLE conflicts ADD COLUMN resolved_by TEXT;
ALTER TABLE conflicts ADD COLUMN resolved_device TEXT;
ALTER TABLE conflicts ADD COLUMN resolution TEXT;
ALTER TABLE conflicts ADD COLUMN resolution_note TEXT;
ALTER TABLE conflicts ADD COLUMN resolved_version INTEGER;

-- Each tablet's last pull, so supervisors see who has not synced.
ALTER TABLE devices ADD COLUMN last_pull_at TEXT;
ALTER TABLE devices ADD COLUMN last_pull_seq INTEGER NOT NULL DEFAULT 0;

-- Households registered twice offline, found when the second arrives.
CREATE TABLE duplicates (
    id          TEXT PRIMARY KEY,
    village     TEXT NOT NULL,
    household_a TEXT NOT NULL,
    household_b TEXT NOT NULL,
    reason      TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    decided_at  TEXT,
    decided_by  TEXT,
    survivor    TEXT
);
CREATE INDEX duplicates_village ON duplicates (state, village);
CREATE UNIQUE INDEX duplicates_pair ON duplicates (household_a, household_b);

-- +goose Down
DROP TABLE duplicates;
ALTER TABLE devices DROP COLUMN last_pull_seq;
ALTER TABLE devices DROP COLUMN last_pull_at;
ALTER TABLE conflicts DROP COLUMN resolved_version;
ALTER TABLE conflicts DROP COLUMN resolution_note;
ALTER TABLE conflicts DROP COLUMN resolution;
ALTER TABLE conflicts DROP COLUMN resolved_device;
ALTER TABLE conflicts DROP COLUMN resolved_by;
ALTER TABLE conflicts DROP COLUMN resolved_at;
