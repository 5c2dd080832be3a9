-- +goose Up
-- Each refresh token names the token whose presentation issued it
-- (replaces; NULL for a login's first) and whether it was issued by the
-- grace re-rotation of a lost answer (via_grace). Only the current token's
-- own predecessor, presented within the grace and only once, rotates
-- again; the successor it replaces is retired, so one refresh token of a
-- session is live at any moment and every other one is reuse.
ALTER TABLE refresh_tokens ADD COLUMN replaces TEXT;
ALTER TABLE refresh_tokens ADD COLUMN via_grace INTEGER NOT NULL DEFAULT 0;

-- The tokens issued before this migration: a current token replaces the
-- session's token rotated out last.
UPDATE refresh_tokens SET replaces = (
    SELECT r.hash FROM refresh_tokens r
    WHERE r.session_id = refresh_tokens.session_id AND r.current = 0 AND r.rowid < refresh_tokens.rowid
    ORDER BY r.rowid DESC LIMIT 1)
WHERE current = 1;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN via_grace;
ALTER TABLE refresh_tokens DROP COLUMN replaces;
