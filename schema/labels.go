package schema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// TableLabels are the labels, in zh and en, of what fieldsync's tables
// (the CSV and XLSX of snapshots and reports) show that is not a field of
// a form: a record's own columns, the reports' columns and sheets, and the
// values of the reports' own enumerations (reasons, states, levels). They
// are data, kept in labels/tables.json beside the forms, so that a label
// is changed there and not in the code.
type TableLabels struct {
	// Columns label columns by key. A label holding {value} heads one
	// column per value of an enum (or a field's part): {value} is replaced
	// by that value's label.
	Columns map[string]map[string]string `json:"columns"`
	// Sheets label an XLSX workbook's sheets by key.
	Sheets map[string]map[string]string `json:"sheets"`
	// Values label the values of an enumeration, by enumeration; the
	// entry "unset" (a map of languages) labels a count of households
	// with no value.
	Values map[string]json.RawMessage `json:"values"`

	values map[string]map[string]map[string]string
	unset  map[string]string
}

//go:embed labels/tables.json
var tableLabelsFile []byte

var (
	tableLabelsOnce sync.Once
	tableLabels     *TableLabels
	tableLabelsErr  error
)

// Tables returns the table labels embedded in this build. It panics if
// the file is invalid, which a test rules out.
func Tables() *TableLabels {
	tableLabelsOnce.Do(func() { tableLabels, tableLabelsErr = parseTableLabels(tableLabelsFile) })
	if tableLabelsErr != nil {
		panic(tableLabelsErr)
	}
	return tableLabels
}

func parseTableLabels(b []byte) (*TableLabels, error) {
	var t TableLabels
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("table labels: %w", err)
	}
	t.values = map[string]map[string]map[string]string{}
	for name, raw := range t.Values {
		if name == "unset" {
			if err := json.Unmarshal(raw, &t.unset); err != nil {
				return nil, fmt.Errorf("table labels: values.unset: %w", err)
			}
			continue
		}
		var m map[string]map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("table labels: values.%s: %w", name, err)
		}
		t.values[name] = m
	}
	for _, set := range []map[string]map[string]string{t.Columns, t.Sheets, {"unset": t.unset}} {
		for key, langs := range set {
			for _, lang := range []string{LangZH, LangEN} {
				if langs[lang] == "" {
					return nil, fmt.Errorf("table labels: %q has no %s label", key, lang)
				}
			}
		}
	}
	return &t, nil
}

// Column returns the label of the column key in lang, with {value}
// replaced by value; the key itself (and value after it) when the file
// has no label.
func (t *TableLabels) Column(key, value, lang string) string {
	l := t.Columns[key][lang]
	if l == "" {
		if value != "" {
			return key + "_" + value
		}
		return key
	}
	return strings.ReplaceAll(l, "{value}", value)
}

// Sheet returns the label of the sheet key in lang, or the key.
func (t *TableLabels) Sheet(key, lang string) string {
	if l := t.Sheets[key][lang]; l != "" {
		return l
	}
	return key
}

// Value returns the label of value of the enumeration enum in lang, or
// the value itself; Unset (when the enumeration does not label it) is
// labelled by the file's "unset" entry.
func (t *TableLabels) Value(enum, value, lang string) string {
	if l := t.values[enum][value][lang]; l != "" {
		return l
	}
	if value == "unset" {
		if l := t.unset[lang]; l != "" {
			return l
		}
	}
	return value
}
