-- +goose Up
-- The aggregates the coverage overview reads (survey.HouseholdSummary):
-- one summary per household, kept in the write transaction that changes
-- the household or its inspections, and per village the sums of the
-- summaries' counters and the inspections per day and form, adjusted by the
-- difference between a household's old and new summary. The summarizer's
-- key and the day they were judged as of are in settings
-- (summaries_key, summaries_as_of); a store opened with another key
-- rebuilds them.
CREATE TABLE household_summaries (
    household_id    TEXT PRIMARY KEY,
    village         TEXT NOT NULL,
    never_inspected INTEGER NOT NULL,
    with_water      INTEGER NOT NULL,
    last_inspected  TEXT NOT NULL,
    summary         TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX household_summaries_never ON household_summaries (village, household_id) WHERE never_inspected;

-- village_counts: one row per village, its counters' sums as one JSON
-- object (key → n, survey.HouseholdSummary.Keys), so that the counts of a
-- province are one row per village to read, not one per village and key.
CREATE TABLE village_counts (
    village TEXT PRIMARY KEY,
    counts  TEXT NOT NULL
) WITHOUT ROWID;

-- village_days: the inspections per day and form, day_form being
-- "YYYY-MM-DD/entity" (survey.HouseholdSummary.DayKeys), so that the days
-- from one on are a range of the index by day.
CREATE TABLE village_days (
    village  TEXT NOT NULL,
    day_form TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (village, day_form)
) WITHOUT ROWID;
CREATE INDEX village_days_day ON village_days (day_form, village);

-- +goose Down
DROP TABLE village_days;
DROP TABLE village_counts;
DROP TABLE household_summaries;
DELETE FROM settings WHERE name IN ('summaries_key', 'summaries_as_of');
