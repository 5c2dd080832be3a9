package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldsync/fieldsync/server/tabular"
	"github.com/fieldsync/fieldsync/syncproto"
)

// runImport is fieldsync import: one registry file (CSV or XLSX) imported
// as its source's next version through the ImportService, as an admin.
func runImport(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "import")
	data := fs.String("data", "data", "data directory `DIR` of the database (the server may be running)")
	source := fs.String("source", "", "the registry `NAME` (registries.json: poverty_registry, subsistence_allowance, extreme_poverty, disability, school_enrolment, medical_insurance)")
	mapping := fs.String("mapping", "", "a mapping `FILE` of column headers to the source's fields, {\"columns\": {\"HEADER\": \"field\"}}; the source's default mapping for the others")
	storeURL := fs.String("store", "", storeUsage)
	// FILE may come before the flags or after them.
	if err := fs.Parse(args); err != nil || helpAsked(args) {
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			return ErrUsage
		}
		return nil
	}
	if fs.NArg() == 0 {
		return errors.New("give the FILE to import (one CSV or XLSX file)")
	}
	file := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if *source == "" {
		return errors.New("--source is required")
	}
	var columns map[string]string
	if *mapping != "" {
		var err error
		if columns, err = readMapping(*mapping); err != nil {
			return err
		}
	}
	table, err := tabular.Open(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defer table.Close()
	store, err := openAccounts(ctx, *storeURL, *data, false, env.Stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	sch, err := publishedLatest(ctx, store)
	if err != nil {
		return err
	}
	actor := syncproto.Actor{UserID: "import", Role: syncproto.RoleAdmin, AllRegions: true}
	bar := newProgress(env.Stderr, "import", progressRows)
	imp, err := syncproto.NewImportService(store, sch, nil).ImportAndOpenConflicts(ctx, actor, syncproto.ImportRequest{
		Source: *source, FileName: filepath.Base(file), SHA256: table.SHA256, Table: table, Mapping: columns,
		Progress: func(n int) { bar.set(int64(n), 0) },
	}, store)
	bar.finish()
	if err != nil {
		return importError(err)
	}
	fmt.Fprintln(env.Stdout, importSummary(imp))
	return nil
}

// readMapping reads a mapping file: {"columns": {"HEADER": "field", …}},
// as syncproto.ParseMapping reads the mapping of POST /v1/imports.
func readMapping(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := syncproto.ParseMapping(b, "mapping")
	if err != nil {
		return nil, fmt.Errorf("--mapping %s: %w", path, importError(err))
	}
	return m, nil
}

// importSummary is the one line an import answers with.
func importSummary(imp *syncproto.RegistryImport) string {
	if imp.Same {
		return fmt.Sprintf("%s: the file equals import %d (sha256 %s…): nothing changed", imp.Source, imp.Version, imp.SHA256[:12])
	}
	return fmt.Sprintf("%s: import %d of %s (sha256 %s…): %d rows, %d added, %d changed, %d removed, %d unchanged; %d cross-department conflicts opened",
		imp.Source, imp.Version, imp.FileName, imp.SHA256[:12], imp.Rows, imp.Added, imp.Changed, imp.Removed, imp.Unchanged, imp.ConflictsOpened)
}

// importError is an import's error for the terminal: the message, then
// each bad row on a line of its own.
func importError(err error) error {
	var se *syncproto.Error
	if !errors.As(err, &se) || len(se.Errors) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString(se.Message)
	for _, fe := range se.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Path, fe.Message)
	}
	return errors.New(b.String())
}
