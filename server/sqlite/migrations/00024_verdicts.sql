-- +goose Up
-- The kept verdicts (syncproto.KeptVerdict): per household its verdict,
-- follow-up and the day it can next change with no write; per village
-- their sums as one JSON object of counters (KeptVerdict.Keys); and the
-- households a write marked, judged again by the refresher. The judge's
-- key and the day of the latest refresh are in settings (verdicts_key,
-- verdicts_as_of).
CREATE TABLE household_verdicts (
    household_id TEXT PRIMARY KEY,
    village      TEXT NOT NULL,
    next_change  TEXT NOT NULL,
    verdict      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX household_verdicts_next ON household_verdicts (next_change) WHERE next_change != '';

CREATE TABLE village_verdicts (
    village TEXT PRIMARY KEY,
    counts  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE verdicts_pending (
    household_id TEXT PRIMARY KEY
) WITHOUT ROWID;

-- +goose Down
DROP TABLE verdicts_pending;
DROP TABLE village_verdicts;
DROP TABLE household_verdicts;
