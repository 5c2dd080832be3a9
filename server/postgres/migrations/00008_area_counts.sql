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

-- +goose Down
DROP TABLE area_counts;
