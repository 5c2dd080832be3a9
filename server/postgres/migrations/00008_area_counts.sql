-- +goose Up
-- area_counts: the townships' (digits 9) and counties' (digits 6) sums of
-- their villages' counters, as in the SQLite store's migration 00023,
-- filled here from the village rows kept so far.
CREATE TABLE area_counts (
    digits INTEGER NOT NULL,
    area   TEXT COLLATE "C" NOT NULL,
    counts TEXT NOT NULL,
    PRIMARY KEY (digits, area)
);
INSERT INTO area_counts (digits, area, counts)
SELECT digits, area, json_object_agg(key, n)::text FROM (
    SELECT l.digits, left(v.village, l.digits) AS area, j.key, SUM(j.value::bigint) AS n
    FROM village_counts v CROSS JOIN LATERAL json_each_text(v.counts::json) j CROSS JOIN (VALUES (9), (6)) AS l(digits)
    GROUP BY 1, 2, 3
) s WHERE n <> 0 GROUP BY digits, area;

-- A village row's never-inspected households and coverage (in whole
-- percent rounded half up), as in the SQLite store's migration 00023.
ALTER TABLE village_counts ADD COLUMN never_inspected BIGINT
    GENERATED ALWAYS AS (COALESCE((counts::jsonb ->> 'never_inspected')::bigint, 0)) STORED;
ALTER TABLE village_counts ADD COLUMN coverage BIGINT GENERATED ALWAYS AS (CASE
    WHEN COALESCE((counts::jsonb ->> 'households')::bigint, 0) = 0 THEN 0 ELSE
    least((COALESCE((counts::jsonb ->> 'with_housing')::bigint, 0) * 100 + (counts::jsonb ->> 'households')::bigint / 2) / (counts::jsonb ->> 'households')::bigint,
          (COALESCE((counts::jsonb ->> 'with_water')::bigint, 0) * 100 + (counts::jsonb ->> 'households')::bigint / 2) / (counts::jsonb ->> 'households')::bigint) END) STORED;
CREATE INDEX village_counts_never ON village_counts (never_inspected DESC, village) WHERE never_inspected > 0;
CREATE INDEX village_counts_behind ON village_counts (coverage, village) WHERE coverage < 100;

-- +goose Down
DROP INDEX village_counts_behind;
DROP INDEX village_counts_never;
ALTER TABLE village_counts DROP COLUMN coverage;
ALTER TABLE village_counts DROP COLUMN never_inspected;
DROP TABLE area_counts;
