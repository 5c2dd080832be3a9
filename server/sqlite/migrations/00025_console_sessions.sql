-- +goose Up
-- The web console's sessions (issue 20), kept here so that a restart signs
-- nobody out. token_hash is auth.ConsoleTokenHash of the cookie's token:
-- the token itself is never stored. A session is live while now is before
-- both idle_expires_at (seen_at plus the idle limit, renewed at most once
-- a minute) and expires_at (created_at plus the absolute limit).
CREATE TABLE console_sessions (
    token_hash      TEXT PRIMARY KEY,
    user_name       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    seen_at         TEXT NOT NULL,
    idle_expires_at TEXT NOT NULL,
    expires_at      TEXT NOT NULL
) WITHOUT ROWID;
-- A sign-in keeps the user's newest sessions; PutUser and SetUserDisabled
-- end a user's sessions.
CREATE INDEX console_sessions_user ON console_sessions (user_name, created_at);
-- The sweep takes the expired ones first (idle_expires_at is never after
-- expires_at).
CREATE INDEX console_sessions_idle ON console_sessions (idle_expires_at);

-- +goose Down
DROP TABLE console_sessions;
