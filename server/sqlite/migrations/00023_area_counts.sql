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

-- +goose Down
DROP TABLE area_counts;
