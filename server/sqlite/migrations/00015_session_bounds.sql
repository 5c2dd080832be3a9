-- +goose Up
-- A login removes the user's sessions beyond the newest
-- auth.MaxSessionsPerUser: this index makes that a range of the user's own
-- sessions, newest first.
CREATE INDEX sessions_user ON sessions (user_name);

-- +goose Down
DROP INDEX sessions_user;
