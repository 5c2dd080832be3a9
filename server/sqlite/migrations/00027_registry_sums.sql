-- +goose Up
-- The households only a registry lists, in the kept coverage sums
-- (syncproto.RegistrySumStore): per village, each household of a
-- household source's list matching no recorded household, with the name
-- the list gives and the summary (a household with no record) whose
-- counters are in the village's, township's and county's sums; and the
-- villages an import or a household's write marked for reconciling
-- again. Every village with registry rows is marked here: the refresher
-- adds them to the sums kept so far.
CREATE TABLE registry_only (
    village      TEXT NOT NULL,
    household_id TEXT NOT NULL,
    head_name    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    PRIMARY KEY (village, household_id)
) WITHOUT ROWID;
CREATE TABLE registry_marks (
    village TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO registry_marks (village) SELECT DISTINCT village FROM registry_rows;

-- +goose Down
DROP TABLE registry_marks;
DROP TABLE registry_only;
