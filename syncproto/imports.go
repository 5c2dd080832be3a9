package syncproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// MaxRowErrors is how many bad rows an import's error lists; it counts
// them all.
const MaxRowErrors = 100

// Table is a file's rows as a reader yields them: the header first, then
// each row with its line in the file (the header's line is 1). Cells are
// text as the file holds them; the service parses them.
type Table interface {
	// Header returns the column headers; io.EOF for an empty file.
	Header() ([]string, error)
	// Next returns the next row and its line, or io.EOF after the last.
	Next() (line int, cells []string, err error)
}

// ImportRequest is one file to import as a source's list: the source's
// name, the file's name and SHA-256 (hex, of its bytes as received), its
// rows, the mapping of column headers to the source's fields (nil: the
// source's default, schema.RegistrySource.DefaultMapping; a mapping given
// replaces the default for the headers it names), and Progress, called
// with the number of rows read so far as they are read (may be nil).
type ImportRequest struct {
	Source   string
	FileName string
	SHA256   string
	Table    Table
	Mapping  map[string]string
	// MappingPath is where the mapping came from, for the paths of its
	// errors ("body.mapping"; "mapping" when empty).
	MappingPath string
	Progress    func(rows int)
}

// ImportService imports the registry sources' files (fieldsync import and
// POST /v1/imports) into a RegistryStore. It owns the schema whose
// registries.json declares the sources.
type ImportService struct {
	store  RegistryStore
	schema *schema.Schema
	now    func() time.Time
}

// NewImportService returns the import service over store for the sources
// of sch; now is the clock (time.Now when nil).
func NewImportService(store RegistryStore, sch *schema.Schema, now func() time.Time) *ImportService {
	if now == nil {
		now = time.Now
	}
	return &ImportService{store: store, schema: sch, now: now}
}

// Import reads req's rows and stores them as the source's next import in
// one transaction (RegistryStore.ImportRegistry): the same file as the
// latest import changes nothing. Only an admin or a supervisor imports
// (EForbidden); a supervisor's rows must lie in their region. Every bad
// row makes the whole file import nothing: the error is EInvalid with the
// first MaxRowErrors bad rows (each at "line L, column C") and the count
// of all in its message. A mapping naming a field the source lacks is
// EInvalid at MappingPath.columns.HEADER, before any row is read. An
// unknown source is ENotFound.
func (s *ImportService) Import(ctx context.Context, actor Actor, req ImportRequest) (*RegistryImport, error) {
	if actor.Role != RoleAdmin && actor.Role != RoleSupervisor {
		return nil, Errorf(EForbidden, "only an admin or a supervisor imports a registry")
	}
	src := s.schema.Registries().Source(req.Source)
	if src == nil {
		return nil, Errorf(ENotFound, "unknown registry source %q (the form set declares %s)", req.Source, strings.Join(s.schema.Registries().SourceNames(), ", "))
	}
	if errs := checkMapping(src, req.Mapping, req.MappingPath); len(errs) > 0 {
		return nil, &Error{Code: EInvalid, Title: "Invalid mapping", Message: "the mapping does not fit the source: nothing was imported", Errors: errs}
	}
	if !sha256Hex.MatchString(req.SHA256) {
		return nil, Errorf(EInvalid, "the file's SHA-256 is 64 lower-case hex digits")
	}
	header, err := req.Table.Header()
	if errors.Is(err, io.EOF) {
		return nil, rowsInvalid([]*RowError{{Line: 1, Message: "the file is empty: it needs a header row"}}, 1)
	}
	if err != nil {
		return nil, tableError(err)
	}
	cols, herrs := mapColumns(src, header, req.Mapping)
	if len(herrs) > 0 {
		return nil, rowsInvalid(herrs, 1)
	}
	imp := RegistryImport{Source: src.Name, SHA256: req.SHA256, FileName: req.FileName, ImportedBy: actor.UserID, ImportedAt: s.now().UTC()}
	if !actor.AllRegions {
		imp.Scope = actor.Scope
	}
	// bad are the errors of the first MaxRowErrors bad rows; nbad counts
	// the bad rows.
	var bad []*RowError
	nbad := 0
	report := func(errs ...*RowError) {
		nbad++
		if nbad <= MaxRowErrors {
			bad = append(bad, errs...)
		}
	}
	n := 0
	res, err := s.store.ImportRegistry(ctx, imp, func(put func(*RegistryRow) error) error {
		for {
			line, cells, err := req.Table.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return tableError(err)
			}
			if blank(cells) {
				continue
			}
			n++
			if req.Progress != nil {
				req.Progress(n)
			}
			row, errs := parseRow(src, cols, line, cells, actor)
			if len(errs) > 0 {
				report(errs...)
				continue
			}
			// Rows after a bad one are still stored (and rolled back at
			// the end): a key repeated later is found all the same.
			var re *RowError
			if err := put(row); errors.As(err, &re) {
				report(re)
			} else if err != nil {
				return err
			}
		}
		if nbad > 0 {
			return rowsInvalid(bad, nbad)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// rowsInvalid is the EInvalid error of an import with count bad rows:
// the errors of the first of them with their paths.
func rowsInvalid(bad []*RowError, count int) *Error {
	e := Errorf(EInvalid, "%d bad rows: nothing of the file was imported", count)
	if count == 1 {
		e.Message = "1 bad row: nothing of the file was imported"
		if bad[0].Line == 1 {
			e.Message = "the header row does not fit the source: nothing of the file was imported"
		}
	}
	for _, b := range bad {
		msg := b.Message
		if b.Header != "" {
			msg = fmt.Sprintf("%s (column %q)", b.Message, b.Header)
		}
		e.Errors = append(e.Errors, FieldError{Path: b.Path(), Message: msg})
	}
	return e
}

// tableError is a file that cannot be read as a table (not CSV, a broken
// XLSX): EInvalid with the reader's message, which names no cell value.
func tableError(err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	var re *RowError
	if errors.As(err, &re) {
		return rowsInvalid([]*RowError{re}, 1)
	}
	return Errorf(EInvalid, "the file cannot be read as a table: %v", err)
}

// mapColumns maps each column of the header to a field of src (-1: the
// column is not imported) and returns the problems: a header two columns
// share a field, and a required field no column maps to.
func mapColumns(src *schema.RegistrySource, header []string, mapping map[string]string) ([]*schema.RegistryField, []*RowError) {
	m := src.DefaultMapping()
	for h, f := range mapping {
		m[schema.NormalizeHeader(h)] = f
	}
	cols := make([]*schema.RegistryField, len(header))
	seen := map[string]int{}
	var errs []*RowError
	for i, h := range header {
		name, ok := m[schema.NormalizeHeader(h)]
		if !ok {
			continue
		}
		f := src.Field(name)
		if f == nil {
			errs = append(errs, &RowError{Line: 1, Column: i + 1, Header: h, Message: fmt.Sprintf("the mapping names %q, which is no field of %s", name, src.Name)})
			continue
		}
		if prev, dup := seen[name]; dup {
			errs = append(errs, &RowError{Line: 1, Column: i + 1, Header: h, Message: fmt.Sprintf("maps to %s, as column %d does", name, prev)})
			continue
		}
		seen[name] = i + 1
		cols[i] = f
	}
	for _, f := range src.Fields {
		if _, ok := seen[f.Name]; !ok && f.Required {
			errs = append(errs, &RowError{Line: 1, Message: fmt.Sprintf("no column maps to %s, which every row of %s has (headers: %s)", f.Name, src.Name, strings.Join(append([]string{f.Name}, f.Aliases...), ", "))})
		}
	}
	return cols, errs
}

// blank reports whether a row has no text in any cell (spreadsheets end
// with such rows).
func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// parseRow reads one row by the columns' fields: every cell's problem, at
// its column, without its value.
func parseRow(src *schema.RegistrySource, cols []*schema.RegistryField, line int, cells []string, actor Actor) (*RegistryRow, []*RowError) {
	row := &RegistryRow{Source: src.Name, Line: line, Fields: map[string]json.RawMessage{}}
	var errs []*RowError
	for i, f := range cols {
		if f == nil {
			continue
		}
		cell := ""
		if i < len(cells) {
			cell = strings.Trim(cells[i], " \t\u3000\r\n")
		}
		if cell == "" {
			if f.Required {
				errs = append(errs, &RowError{Line: line, Column: i + 1, Message: f.Name + " is required"})
			}
			continue
		}
		v, msg := parseCell(f, cell)
		if msg != "" {
			errs = append(errs, &RowError{Line: line, Column: i + 1, Message: f.Name + " " + msg})
			continue
		}
		b, _ := json.Marshal(v)
		row.Fields[f.Name] = b
		if f.Name == src.Key {
			row.Key = cell
		}
		if f.Name == "village" {
			row.Village = v.(string)
			if !actor.InScope(row.Village) {
				errs = append(errs, &RowError{Line: line, Column: i + 1, Message: "village lies outside your region"})
			}
		}
	}
	return row, errs
}

var (
	sha256Hex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	trueWords  = []string{"true", "1", "yes", "y", "是", "有", "已参保", "参保", "正常参保"}
	falseWords = []string{"false", "0", "no", "n", "否", "无", "未参保", "未", "停保"}
	dateForms  = []string{time.DateOnly, "2006/1/2", "2006.1.2", "20060102", "2006-1-2"}
)

// parseCell reads a cell as the field's type: the value, or what it must
// be (never the value itself).
func parseCell(f *schema.RegistryField, cell string) (any, string) {
	switch f.Type {
	case schema.RegistryInteger:
		n, err := strconv.ParseInt(cell, 10, 64)
		if err != nil {
			// A spreadsheet's number cell may read "4.0".
			x, ferr := strconv.ParseFloat(cell, 64)
			if ferr != nil || x != float64(int64(x)) {
				return nil, "must be a whole number"
			}
			n = int64(x)
		}
		return n, ""
	case schema.RegistryBoolean:
		l := strings.ToLower(cell)
		for _, w := range trueWords {
			if l == w {
				return true, ""
			}
		}
		for _, w := range falseWords {
			if l == w {
				return false, ""
			}
		}
		return nil, "must be yes or no (是/否, 1/0, true/false)"
	case schema.RegistryDivisionCode:
		if !schema.IsDivisionCode(cell) {
			return nil, "must be a 12-digit division code"
		}
		return cell, ""
	case schema.RegistryDate:
		for _, layout := range dateForms {
			if t, err := time.Parse(layout, cell); err == nil {
				return t.Format(time.DateOnly), ""
			}
		}
		return nil, "must be a date (YYYY-MM-DD)"
	case schema.RegistryEnum:
		for _, v := range f.Values {
			if cell == v {
				return v, ""
			}
		}
		if v, ok := f.ValueAliases[cell]; ok {
			return v, ""
		}
		return nil, fmt.Sprintf("must be one of %s", strings.Join(enumSpellings(f), ", "))
	default:
		if len(cell) > 1000 {
			return nil, "is longer than 1000 bytes"
		}
		return cell, ""
	}
}

// enumSpellings lists an enum field's values and their aliases.
func enumSpellings(f *schema.RegistryField) []string {
	out := append([]string(nil), f.Values...)
	return append(out, slices.Sorted(maps.Keys(f.ValueAliases))...)
}
