-- +goose Up
-- Server-wide settings, such as the secret that signs pull cursors.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- +goose Down
DROP TABLE settings;
