-- +goose Up
-- Why a version was made, when a person said so: the note of a merge.
ALTER TABLE changes ADD COLUMN note TEXT;

-- A duplicate's decision carries its note (a merge's or a dismissal's).
ALTER TABLE duplicates ADD COLUMN note TEXT;

-- A quarantine entry stays open until a supervisor closes it with a note.
ALTER TABLE quarantine ADD COLUMN state TEXT NOT NULL DEFAULT 'open';
ALTER TABLE quarantine ADD COLUMN closed_at TEXT;
ALTER TABLE quarantine ADD COLUMN closed_by TEXT;
ALTER TABLE quarantine ADD COLUMN close_note TEXT;

-- The name a tablet gave itself at login (optional), shown in the devices
-- list.
CREATE TABLE device_names (
    device_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- How far behind a tablet is, counted within its scope: per village of the
-- scope, the records changed after the tablet's cursor, found by one range
-- of this index instead of a scan of the change log.
CREATE INDEX records_village_seq ON records (village, seq);

-- +goose Down
DROP INDEX records_village_seq;
DROP TABLE device_names;
ALTER TABLE quarantine DROP COLUMN close_note;
ALTER TABLE quarantine DROP COLUMN closed_by;
ALTER TABLE quarantine DROP COLUMN closed_at;
ALTER TABLE quarantine DROP COLUMN state;
ALTER TABLE duplicates DROP COLUMN note;
ALTER TABLE changes DROP COLUMN note;
