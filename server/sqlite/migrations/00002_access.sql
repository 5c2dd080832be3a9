-- +goose Up
-- Records that left a village: a pull in the old village's scope returns
-- them as removals ({"removed": true}) so that tablets drop their copies.
CREATE TABLE scope_exits (
    seq         INTEGER NOT NULL,
    record_id   TEXT    NOT NULL,
    entity      TEXT    NOT NULL,
    old_village TEXT    NOT NULL,
    new_village TEXT    NOT NULL
);
CREATE INDEX scope_exits_seq ON scope_exits (seq);

-- Users: role, region scope (JSON list of division-code prefixes) and an
-- argon2id password hash in PHC format.
CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

-- One session per login of a user on a device; refresh tokens rotate
-- within it.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    revoked_at   TEXT,
    revoke_reason TEXT
);
CREATE INDEX sessions_device ON sessions (device_id);

-- Every refresh token ever issued, by the SHA-256 of its secret: the
-- current one of a session, or a rotated one whose reuse revokes it.
CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    current    INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Revoked devices (a lost tablet): every token bound to them fails.
CREATE TABLE revoked_devices (
    device_id  TEXT PRIMARY KEY,
    revoked_at TEXT NOT NULL,
    revoked_by TEXT NOT NULL
);

-- +goose Down
DROP TABLE revoked_devices;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE scope_exits;
