-- +goose Up
-- area_counts: the townships' (digits 9) and counties' (digits 6) sums of
-- their villages' counters (village_counts), one JSON object per area,
-- adjusted by the same deltas in the same write transaction as the
-- village rows, so that the counts of a county are one row to read. Filled
-- here from the village rows kept so far.
CREATE TABLE area_counts (
    digits INTEGER NOT NULL,
    area   TEXT NOT NULL,
    counts TEXT NOT NULL,
    PRIMARY KEY (digits, area)
) WITHOUT ROWID;
INSERT INTO area_counts (digits, area, counts)
SELECT digits, area, json_group_object(key, n) FROM (
    SELECT l.digits AS digits, substr(v.village, 1, l.digits) AS area, j.key AS key, SUM(j.value) AS n
    FROM village_counts v, json_each(v.counts) j, (SELECT 9 AS digits UNION ALL SELECT 6) l
    GROUP BY 1, 2, 3
) WHERE n != 0 GROUP BY digits, area;

-- The villages behind and those with households never inspected, the
-- overview's lists above a township, read as two bounded ranges of an
-- index rather than every village's counters: each village row carries
-- its never-inspected households and its coverage (the lower of the
-- shares of households with a housing and with a water inspection, in
-- whole percent rounded half up), taken from its counters
-- (survey.HouseholdSummary.Keys: households, with_housing, with_water,
-- never_inspected) by SQLite itself.
CREATE TABLE village_counts_new (
    village         TEXT PRIMARY KEY,
    counts          TEXT NOT NULL,
    never_inspected INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(counts, '$.never_inspected'), 0)) STORED,
    coverage        INTEGER GENERATED ALWAYS AS (CASE WHEN COALESCE(json_extract(counts, '$.households'), 0) = 0 THEN 0 ELSE
        min((COALESCE(json_extract(counts, '$.with_housing'), 0) * 100 + json_extract(counts, '$.households') / 2) / json_extract(counts, '$.households'),
            (COALESCE(json_extract(counts, '$.with_water'), 0) * 100 + json_extract(counts, '$.households') / 2) / json_extract(counts, '$.households')) END) STORED
) WITHOUT ROWID;
INSERT INTO village_counts_new (village, counts) SELECT village, counts FROM village_counts;
DROP TABLE village_counts;
ALTER TABLE village_counts_new RENAME TO village_counts;
CREATE INDEX village_counts_never ON village_counts (never_inspected DESC, village) WHERE never_inspected > 0;
CREATE INDEX village_counts_behind ON village_counts (coverage, village) WHERE coverage < 100;

-- +goose Down
DROP INDEX village_counts_behind;
DROP INDEX village_counts_never;
ALTER TABLE village_counts DROP COLUMN coverage;
ALTER TABLE village_counts DROP COLUMN never_inspected;
DROP TABLE area_counts;
