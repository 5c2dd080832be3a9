-- +goose Up
-- The change log's flagged versions (decided, override, registered, a
-- clamped clock…) are few among all of them: the list of exits reads them
-- through this partial index instead of the whole log.
CREATE INDEX changes_flagged ON changes (seq) WHERE flags <> '[]';

-- +goose Down
DROP INDEX changes_flagged;
