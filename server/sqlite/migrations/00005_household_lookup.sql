-- +goose Up
-- Duplicate-household detection looks up, per village, households with the
-- same registration number or head name: index those expressions instead of
-- scanning the village at every new household.
CREATE INDEX households_regno ON records (village, json_extract(fields, '$.registration_no')) WHERE entity = 'household';
CREATE INDEX households_head ON records (village, json_extract(fields, '$.head_name')) WHERE entity = 'household';

-- +goose Down
DROP INDEX households_head;
DROP INDEX households_regno;
