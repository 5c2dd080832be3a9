package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// runExport is fieldsync export: a snapshot of GET /v1/snapshot written to
// a file, with the same request checks and the same encoders, read from the
// database directly (as an admin: every region, or --region).
func runExport(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "export")
	data := fs.String("data", "data", "data directory `DIR` of the database (the server may be running)")
	region := fs.String("region", "", "division-code `PREFIX` of 2 to 12 digits (e.g. 500240, a county); every region when absent")
	entity := fs.String("entity", "", "`ENTITY`: household, housing_inspection or water_inspection (required for ndjson and csv; geojson is households; xlsx without it has a sheet per entity)")
	format := fs.String("format", export.FormatNDJSON, "`FORMAT`: ndjson, csv, geojson or xlsx")
	asOf := fs.String("as-of", "", "a `CURSOR` of this server (X-Snapshot-Cursor, a pull or history cursor): the state at that earlier point")
	out := fs.String("out", "", "the `FILE` to write (written under a temporary name beside it, then renamed)")
	force := fs.Bool("force", false, "replace FILE if it exists")
	divisionsFile := fs.String("divisions", "", "division register `FILE` (CSV code,name) naming villages when --lang is zh or en")
	lang := fs.String("lang", export.LangCodes, "`LANG` of CSV and XLSX headers and enum values: zh, en, or codes (field keys and enum codes)")
	storeURL := fs.String("store", "", storeUsage)
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	dst, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if err := outDirExists(dst); err != nil {
		return err
	}
	if !*force {
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s exists; use --force to replace it", dst)
		}
	}
	actor := syncproto.Actor{UserID: "export", Role: syncproto.RoleAdmin, AllRegions: true}
	if *region != "" {
		if !schema.IsRegion(*region) {
			return errors.New("--region must be a division-code prefix of 2 to 12 digits")
		}
		actor.Scope, actor.AllRegions = []string{*region}, false
	}
	store, err := openExportStore(ctx, *storeURL, *data)
	if err != nil {
		return err
	}
	defer store.Close()
	// The latest version the server published (serve --forms), as the
	// snapshots of GET /v1/snapshot; the built-in set before any.
	sch, err := publishedLatest(ctx, store)
	if err != nil {
		return err
	}
	cursors := syncproto.NewCursorCodec(store.CursorKey())
	req, err := export.NewSnapshotRequest(sch, cursors, actor, *region, export.SnapshotParams{Format: *format, Entity: *entity, AsOf: *asOf, Lang: *lang})
	if err != nil {
		return cliError(err)
	}
	if *divisionsFile != "" {
		if req.Divisions, err = schema.LoadDivisions(*divisionsFile); err != nil {
			return err
		}
	}

	// The file holds personal data: 0600, and whole or not at all.
	f, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	started := time.Now()
	sink := &exportSink{out: bufio.NewWriterSize(f, 64<<10), progress: newProgress(env.Stderr, "export", progressRecords)}
	sink.enc = export.NewEncoder(req, sch, sink.out)
	defer sink.enc.Close()
	err = store.Snapshot(ctx, req.Actor, req.Query(sch), sink)
	sink.progress.set(sink.rows, 0)
	sink.progress.finish()
	if err == nil {
		err = sink.enc.End()
	}
	if err == nil {
		err = sink.out.Flush()
	}
	if err != nil {
		return cliError(err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	committed = true
	if err := attachments.SyncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	what := req.Entity
	if what == "" {
		what = "every entity"
	}
	where := req.Region
	if where == "" {
		where = "every region"
	}
	fi, _ := os.Stat(dst)
	fmt.Fprintf(env.Stdout, "exported %d records (%s, %s, %s) to %s: %s in %s; snapshot cursor %s\n",
		sink.rows, what, where, req.Format, dst, byteSize(fi.Size()), time.Since(started).Round(time.Millisecond),
		cursors.Encode(sink.at))
	if lc, ok := sink.enc.(export.LocationCounter); ok {
		fmt.Fprintf(env.Stdout, "%d of them without a location (features with a null geometry)\n", lc.WithoutLocation())
	}
	return nil
}

// exportSink receives the store's snapshot rows and hands them to the
// format's encoder, as the API does for the HTTP answer.
type exportSink struct {
	enc      export.Encoder
	out      *bufio.Writer
	progress *progress
	at       syncproto.Cursor
	rows     int64
}

// Start begins the file once the store knows the snapshot's point.
func (e *exportSink) Start(at syncproto.Cursor) error {
	e.at = at
	return e.enc.Begin()
}

// Row encodes one record.
func (e *exportSink) Row(row syncproto.SnapshotRow) error {
	if err := e.enc.Row(row); err != nil {
		return err
	}
	e.rows++
	if e.rows%1000 == 0 {
		e.progress.set(e.rows, 0)
	}
	return nil
}

// cliError words a request error of export for the command line: the
// parameters become the flags (as_of: --as-of).
func cliError(err error) error {
	var se *syncproto.Error
	if !errors.As(err, &se) {
		return err
	}
	parts := []string{se.Message}
	for _, fe := range se.Errors {
		flag := strings.ReplaceAll(fe.Path, "_", "-")
		parts = append(parts, fmt.Sprintf("--%s %s", flag, fe.Message))
	}
	return errors.New(strings.Join(parts, "; "))
}
