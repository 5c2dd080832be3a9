-- +goose Up
-- The signing keys of access tokens (auth.KeyStore), in the database so
-- that every fieldsync instance on it signs and verifies with the same
-- keys and sees a rotation made by any. The current key is the one added
-- last (the highest pos, handed out under the write lock), whatever the
-- clocks of the machines that made the keys.
CREATE TABLE signing_keys (
    pos        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    kid        TEXT COLLATE "C" PRIMARY KEY,
    pkcs8      BYTEA NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
