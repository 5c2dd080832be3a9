package syncproto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
)

// MaxMappingBytes bounds a mapping document: a source has a dozen fields,
// and a mapping names each by a header or two.
const MaxMappingBytes = 64 << 10

// ParseMapping reads a mapping document, {"columns": {"HEADER": "field",
// …}} — what `fieldsync import --mapping FILE` reads and the part
// "mapping" of POST /v1/imports and of the console's import form holds —
// into the columns it maps. Every problem is an EInvalid *Error whose
// errors are at path (the document as a whole: not JSON, too large, not an
// object), at path.KEY (a key other than columns) or at
// path.columns.HEADER (a header that maps to no field name). Whether the
// fields exist is the source's to say (ImportService.Import).
func ParseMapping(b []byte, path string) (map[string]string, error) {
	bad := func(p, msg string) error {
		return &Error{Code: EInvalid, Title: "Invalid mapping", Message: "the mapping cannot be used: nothing was imported",
			Errors: []FieldError{{Path: p, Message: msg}}}
	}
	if len(b) > MaxMappingBytes {
		return nil, bad(path, fmt.Sprintf("is larger than %d bytes", MaxMappingBytes))
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff"))))
	if err := dec.Decode(&doc); err != nil || doc == nil || dec.More() {
		return nil, bad(path, `is not a JSON object {"columns": {"HEADER": "field"}}`)
	}
	var errs []FieldError
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "columns" {
			errs = append(errs, FieldError{Path: path + "." + k, Message: "is no member of a mapping (only columns)"})
		}
	}
	raw, ok := doc["columns"]
	if !ok {
		errs = append(errs, FieldError{Path: path + ".columns", Message: "is required"})
	}
	var cols map[string]json.RawMessage
	if ok && (json.Unmarshal(raw, &cols) != nil || cols == nil) {
		errs = append(errs, FieldError{Path: path + ".columns", Message: "must be an object of column headers to field names"})
	}
	out := map[string]string{}
	headers := make([]string, 0, len(cols))
	for h := range cols {
		headers = append(headers, h)
	}
	sort.Strings(headers)
	seen := map[string]string{}
	for _, h := range headers {
		p := path + ".columns." + h
		var field string
		if json.Unmarshal(cols[h], &field) != nil || strings.TrimSpace(field) == "" {
			errs = append(errs, FieldError{Path: p, Message: "must be the name of a field of the source"})
			continue
		}
		n := schema.NormalizeHeader(h)
		if n == "" {
			errs = append(errs, FieldError{Path: p, Message: "is an empty column header"})
			continue
		}
		if prev, dup := seen[n]; dup && out[prev] != field {
			errs = append(errs, FieldError{Path: p, Message: fmt.Sprintf("is the header %q again, mapped to another field", prev)})
			continue
		}
		seen[n] = h
		out[h] = strings.TrimSpace(field)
	}
	if len(errs) > 0 {
		return nil, &Error{Code: EInvalid, Title: "Invalid mapping", Message: "the mapping cannot be used: nothing was imported", Errors: errs}
	}
	return out, nil
}

// checkMapping is every header of a mapping that names no field of src,
// at path.columns.HEADER.
func checkMapping(src *schema.RegistrySource, mapping map[string]string, path string) []FieldError {
	if path == "" {
		path = "mapping"
	}
	headers := make([]string, 0, len(mapping))
	for h := range mapping {
		headers = append(headers, h)
	}
	sort.Strings(headers)
	var errs []FieldError
	for _, h := range headers {
		if src.Field(mapping[h]) == nil {
			names := make([]string, len(src.Fields))
			for i, f := range src.Fields {
				names[i] = f.Name
			}
			errs = append(errs, FieldError{Path: path + ".columns." + h,
				Message: fmt.Sprintf("names %q, which is no field of %s (%s)", mapping[h], src.Name, strings.Join(names, ", "))})
		}
	}
	return errs
}

// ImportAndOpenConflicts is the import of one file as every way in makes
// it — POST /v1/imports, the console's import form, fieldsync import:
// Import, then, when the file made a new version, the cross-department
// conflicts it causes opened in w (ReconciliationService.OpenConflicts),
// counted in the result's ConflictsOpened. The conflicts open in a
// transaction of their own: when that fails, the import stays committed
// and is returned with the error (a later reconciliation's
// OpenConflicts opens them). Its errors are Import's.
func (s *ImportService) ImportAndOpenConflicts(ctx context.Context, actor Actor, req ImportRequest, w SupervisionWriter) (*RegistryImport, error) {
	imp, err := s.Import(ctx, actor, req)
	if err != nil || imp.Same {
		return imp, err
	}
	n, err := NewReconciliationService(s.store, s.schema).OpenConflicts(ctx, actor, w, s.now())
	if err != nil {
		return imp, fmt.Errorf("the import is stored; opening its conflicts: %w", err)
	}
	imp.ConflictsOpened = n
	return imp, nil
}
