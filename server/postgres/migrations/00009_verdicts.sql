-- +goose Up
-- The kept verdicts (syncproto.KeptVerdict), as in the SQLite store's
-- migration 00024: per household its verdict, follow-up and the day it
-- can next change with no write; per village their sums as one JSON
-- object of counters; the households a write marked. The judge's key and
-- the day of the latest refresh are in settings (verdicts_key,
-- verdicts_as_of).
CREATE TABLE household_verdicts (
    household_id TEXT COLLATE "C" PRIMARY KEY,
    village      TEXT COLLATE "C" NOT NULL,
    next_change  TEXT COLLATE "C" NOT NULL,
    verdict      TEXT NOT NULL
);
CREATE INDEX household_verdicts_next ON household_verdicts (next_change) WHERE next_change <> '';

CREATE TABLE village_verdicts (
    village TEXT COLLATE "C" PRIMARY KEY,
    counts  TEXT NOT NULL
);

CREATE TABLE verdicts_pending (
    household_id TEXT COLLATE "C" PRIMARY KEY
);

-- +goose Down
DROP TABLE verdicts_pending;
DROP TABLE village_verdicts;
DROP TABLE household_verdicts;
