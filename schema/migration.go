package schema

// TEMPORARY stand-in until branch migrations lands; replaced by its migration.go.

import (
	"encoding/json"
	"errors"
)

type Migration struct{}

func CompileMigration(from, to *Schema, steps json.RawMessage) (*Migration, error) {
	if len(steps) > 0 && string(steps) != "[]" {
		return nil, errors.New("migrations: not yet supported")
	}
	return &Migration{}, nil
}

func (m *Migration) Up(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string, error) {
	return fields, nil, nil
}

func (m *Migration) Down(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string) {
	return fields, nil
}
