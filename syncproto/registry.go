package syncproto

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
)

// RegistryStore keeps the registry imports: each import of a source's file
// as a version, and the source's current rows, read-only records of the
// department that keeps the list (never records of the field teams).
type RegistryStore interface {
	// LatestImport returns the source's latest import, or nil when the
	// source has none.
	LatestImport(ctx context.Context, source string) (*RegistryImport, error)
	// ImportRegistry writes one import of imp.Source in one write
	// transaction. When the source's latest import has imp.SHA256 it
	// writes nothing and returns that import with Same set, without
	// calling rows. Otherwise the import is the source's next version:
	// rows calls put with each row as it is read, and put stores it
	// against the source's current row of the same key (added, changed
	// or left as it was); a key put twice is an EInvalid *RowError naming
	// the line that had it first. When rows returns, the current rows not
	// put are removed — those in imp.Scope only, when it is given (a
	// county's list replaces that county's rows, not the province's). Every added, changed and removed row is kept in
	// the import's diff (RegistryDiff). An error from rows (or put) rolls
	// everything back and is returned. The result has the counts.
	ImportRegistry(ctx context.Context, imp RegistryImport, rows func(put func(*RegistryRow) error) error) (*RegistryImport, error)
	// RegistryImports lists the imports of a source (of every source when
	// source is empty), oldest first.
	RegistryImports(ctx context.Context, source string) ([]RegistryImport, error)
	// RegistryDiff lists the rows version of the source added, changed
	// and removed, by key; ENotFound when the source has no such import.
	RegistryDiff(ctx context.Context, source string, version int) ([]RegistryRowChange, error)
	// RegistryRows calls emit with every current row of every source in
	// the actor's scope, ordered by village, source and key, from one read
	// transaction. An error from emit stops the read and is returned.
	RegistryRows(ctx context.Context, actor Actor, emit func(*RegistryRow) error) error
	// RegistryVillages reads, in one read transaction, village by village
	// in code order, every village of the actor's scope that has live
	// households or registry rows, and calls emit with the village's
	// households (as HouseholdInspections streams them with q) and its
	// registry rows (by source and key). Memory is bounded by the largest
	// village. It returns the head of the change log the read reflects;
	// an error from emit stops the read and is returned.
	RegistryVillages(ctx context.Context, actor Actor, q HouseholdQuery, emit func(*RegistryVillage) error) (Cursor, error)
}

// RegistryVillage is one village as RegistryVillages reads it: its
// households, with their records, and the registry rows placed in it.
type RegistryVillage struct {
	Village    string
	Households []*survey.HouseholdInspections
	Rows       []*RegistryRow
}

// RegistryImport is one import of a registry source's file: which source,
// its version (1, 2… per source), the SHA-256 of the file (hex), the
// file's name as given, who imported it and when, and what it did.
type RegistryImport struct {
	Source     string    `json:"source"`
	Version    int       `json:"version"`
	SHA256     string    `json:"sha256"`
	FileName   string    `json:"file_name,omitempty"`
	ImportedBy string    `json:"imported_by"`
	ImportedAt time.Time `json:"imported_at"`
	// Scope is the region the file covers (the importer's: division-code
	// prefixes); empty for every region.
	Scope []string `json:"scope,omitempty"`
	// Rows is the number of rows the file held; Added, Changed and
	// Removed the diff against the source's rows before it; Unchanged
	// the rest.
	Rows      int `json:"rows"`
	Added     int `json:"added"`
	Changed   int `json:"changed"`
	Removed   int `json:"removed"`
	Unchanged int `json:"unchanged"`
	// Same is set when the file equals the source's latest import: no
	// new version was made and the import is that one.
	Same bool `json:"same,omitempty"`
	// ConflictsOpened is how many cross-department conflicts the import
	// opened in the supervisors' queue (ReconciliationService.OpenConflicts);
	// not stored.
	ConflictsOpened int `json:"conflicts_opened,omitempty"`
}

// RegistryRow is one row of a registry source as stored: its key (the
// value of the source's key field), village, the line of the file it was
// read from, its fields (the source's field names, JSON values), the
// import version that last added or changed it and that import's time.
type RegistryRow struct {
	Source  string                     `json:"source"`
	Key     string                     `json:"key"`
	Village string                     `json:"village"`
	Line    int                        `json:"line"`
	Fields  map[string]json.RawMessage `json:"fields"`
	Version int                        `json:"version"`
	// ImportedAt is when the row's version was imported (the date the
	// reconciliation gives as the source's).
	ImportedAt time.Time `json:"imported_at"`
}

// The operations of a RegistryRowChange.
const (
	RowAdded   = "added"
	RowChanged = "changed"
	RowRemoved = "removed"
)

// RegistryRowChange is one row an import added, changed or removed, with
// its fields before and after (Before nil when added, After nil when
// removed).
type RegistryRowChange struct {
	Key    string                     `json:"key"`
	Op     string                     `json:"op"`
	Before map[string]json.RawMessage `json:"before,omitempty"`
	After  map[string]json.RawMessage `json:"after,omitempty"`
}

// RowError is a bad row of an import: its line in the file (the header is
// line 1), its column (1-based; 0 for the row as a whole) and what is
// wrong, never the cell's value (it may be personal data).
type RowError struct {
	Line    int    `json:"line"`
	Column  int    `json:"column,omitempty"`
	Header  string `json:"header,omitempty"`
	Message string `json:"message"`
}

func (e *RowError) Error() string {
	return e.Path() + ": " + e.Message
}

// Path is where the error is, as a problem document's error path gives
// it: "line 12, column 3", or "line 12" for the row as a whole.
func (e *RowError) Path() string {
	if e.Column == 0 {
		return "line " + strconv.Itoa(e.Line)
	}
	return "line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column)
}
