-- +goose Up
-- Knowing a photo's digest grants nothing (issue 14, item 5): a reference
-- grants a download only when the user who made it proved possession of
-- the photo's bytes by uploading them. attachment_refs learns who added
-- each digest to its record (added_by: the user whose version first held
-- it). The references made before this migration were made under the old
-- rule and keep granting (legacy), or the photos of every existing record
-- would be lost to their readers at the upgrade.
ALTER TABLE attachment_refs ADD COLUMN added_by TEXT NOT NULL DEFAULT '';
ALTER TABLE attachment_refs ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0;
UPDATE attachment_refs SET legacy = 1;

-- Proofs of possession: a user (on a device) sent every byte of the photo
-- and they hashed to its digest, as a new upload or as a re-upload of a
-- photo the server held already. at is the last such proof, which also
-- keeps an unreferenced photo from the sweep for a while.
CREATE TABLE IF NOT EXISTS attachment_uploads (
    hash      TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (hash, user_id, device_id)
) WITHOUT ROWID;

-- When a photo last lost a reference (a version that dropped it from its
-- record's photos): the sweep of unreferenced photos counts its age from
-- the later of this and the last upload.
CREATE TABLE IF NOT EXISTS attachment_released (
    hash TEXT NOT NULL PRIMARY KEY,
    at   TEXT NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE attachment_released;
DROP TABLE attachment_uploads;
ALTER TABLE attachment_refs DROP COLUMN legacy;
ALTER TABLE attachment_refs DROP COLUMN added_by;
