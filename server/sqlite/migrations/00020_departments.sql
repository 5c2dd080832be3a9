-- +goose Up
-- The department a user belongs to (the form set's departments.json), and
-- the department of the actor of each change (issue 19). '' for none.
ALTER TABLE users ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE changes ADD COLUMN department TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE changes DROP COLUMN department;
ALTER TABLE users DROP COLUMN department;
