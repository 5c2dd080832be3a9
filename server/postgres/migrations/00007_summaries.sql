-- +goose Up
-- The aggregates the coverage overview reads (survey.HouseholdSummary), as
-- in the SQLite store's migration 00022: one summary per household, kept in
-- the write transaction that changes the household or its inspections, and
-- per village the sums of the summaries' counters and the inspections per
-- day and form (day_form "YYYY-MM-DD/entity"), adjusted by the difference
-- between a household's old and new summary. The summarizer's key and the
-- day they were judged as of are in settings (summaries_key,
-- summaries_as_of); a store opened with another key rebuilds them.
CREATE TABLE household_summaries (
    household_id    TEXT COLLATE "C" PRIMARY KEY,
    village         TEXT COLLATE "C" NOT NULL,
    never_inspected BOOLEAN NOT NULL,
    with_water      BOOLEAN NOT NULL,
    last_inspected  TEXT COLLATE "C" NOT NULL,
    summary         TEXT NOT NULL
);
CREATE INDEX household_summaries_never ON household_summaries (village, household_id) WHERE never_inspected;

-- village_counts: one row per village, its counters' sums as one JSON
-- object (key → n).
CREATE TABLE village_counts (
    village TEXT COLLATE "C" PRIMARY KEY,
    counts  TEXT NOT NULL
);

CREATE TABLE village_days (
    village  TEXT COLLATE "C" NOT NULL,
    day_form TEXT COLLATE "C" NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (village, day_form)
);
CREATE INDEX village_days_day ON village_days (day_form, village);

-- +goose Down
DROP TABLE village_days;
DROP TABLE village_counts;
DROP TABLE household_summaries;
DELETE FROM settings WHERE name IN ('summaries_key', 'summaries_as_of');
