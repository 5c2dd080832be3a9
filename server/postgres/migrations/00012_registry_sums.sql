-- +goose Up
-- The households only a registry lists in the kept coverage sums, as the
-- SQLite store keeps them (its migration 00027 says how): per village the
-- registry-only households with their list's name and summary, and the
-- villages marked for reconciling again (every village with registry rows
-- here: the refresher adds them to the sums kept so far).
CREATE TABLE registry_only (
    village      TEXT COLLATE "C" NOT NULL,
    household_id TEXT COLLATE "C" NOT NULL,
    head_name    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    PRIMARY KEY (village, household_id)
);
CREATE TABLE registry_marks (
    village TEXT COLLATE "C" PRIMARY KEY
);
INSERT INTO registry_marks (village) SELECT DISTINCT village FROM registry_rows;

-- +goose Down
DROP TABLE registry_marks;
DROP TABLE registry_only;
