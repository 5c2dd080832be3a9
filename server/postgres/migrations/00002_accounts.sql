-- +goose Up
-- The accounts (auth.Accounts): the tables of the SQLite store's
-- migrations 2, 8 and 15 as they stand after them. pos stands for SQLite's
-- rowid: the order sessions and refresh tokens were made in.
CREATE TABLE users (
    name          TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT COLLATE "C" NOT NULL,
    role          TEXT COLLATE "C" NOT NULL,
    scope         TEXT COLLATE "C" NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE sessions (
    pos           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id            TEXT COLLATE "C" PRIMARY KEY,
    user_name     TEXT COLLATE "C" NOT NULL,
    device_id     TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    last_used_at  TEXT COLLATE "C" NOT NULL,
    revoked_at    TEXT COLLATE "C",
    revoke_reason TEXT COLLATE "C"
);
CREATE INDEX sessions_device ON sessions (device_id);
CREATE INDEX sessions_user ON sessions (user_name, pos);

CREATE TABLE refresh_tokens (
    pos        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    hash       TEXT COLLATE "C" PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL,
    current    BOOLEAN NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    replaces   TEXT COLLATE "C",
    via_grace  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE revoked_devices (
    device_id  TEXT COLLATE "C" PRIMARY KEY,
    revoked_at TEXT COLLATE "C" NOT NULL,
    revoked_by TEXT COLLATE "C" NOT NULL
);

-- +goose Down
DROP TABLE revoked_devices;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
