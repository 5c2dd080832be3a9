-- +goose Up
-- Change sets applied from an exported outbox (a revoked tablet's pending
-- work) by a supervisor: the change set was applied as its original device
-- and user; this row says who replayed it and through which device. The
-- history of a record shows it beside the version.
CREATE TABLE outbox_replays (
    changeset_id TEXT PRIMARY KEY,
    replayed_by  TEXT NOT NULL,
    via_device   TEXT NOT NULL,
    replayed_at  TEXT NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE outbox_replays;
