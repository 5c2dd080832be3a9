package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

const deviceUsage = `fieldsync device — play a tablet from the command line (the Go sync client)

Each tablet is a directory holding its own database (DIR/device.db): its
copy of the records in its scope, its outbox of edits not yet pushed, its
tokens. Use one directory per tablet to play several in several terminals.

Usage:
  fieldsync device login  --dir DIR --server URL --user NAME [--schema-version N]
                                                               log in (password on standard input)
  fieldsync device sync   --dir DIR [--timeout 2m]             push pending edits, pull, verify the copy
  fieldsync device edit   --dir DIR --entity E --id ID FIELD=VALUE...   change fields of a record
  fieldsync device edit   --dir DIR --entity E --new FIELD=VALUE...     create a record (prints its id)
  fieldsync device edit   --dir DIR --entity E --id ID --delete         delete a record
  fieldsync device list   --dir DIR [--entity E] [--json]      the records this tablet holds ('*' = pending edits)
  fieldsync device status --dir DIR                            pending edits, cursor, last sync, conflicts
  fieldsync device conflicts --dir DIR                         conflicts and refusals reported to this tablet
  fieldsync device fields --dir DIR [--entity E]               the fields of each form: type, required, values
  fieldsync device upgrade --dir DIR                           move to the server's latest version of the forms
  fieldsync device judge  --dir DIR --id ID --rule NAME        judge a criterion (an any_of rule) on a record
  fieldsync device photo  --dir DIR FILE                       keep a photo on the tablet; prints its SHA-256 for photos=…
  fieldsync device outbox export --dir DIR --out FILE         write the pending edits to a file (offline; a revoked tablet)
  fieldsync device outbox replay --dir DIR FILE              a supervisor's tablet hands on a revoked tablet's exported edits

Values are read by the field's type in the schema: numbers, true/false,
sets as comma-separated items (hazards=roof,walls), a location as lat,lon;
'null' clears a field. Edits are kept on disk at once and pushed by 'sync'.
An edit is checked on the tablet against its version of the forms, their
fields and their requirement rules, as the server checks it: a refused edit
names the rule and the field and is not kept.

A tablet is on one version of the forms: the latest at its first login, or
--schema-version N. It edits, pushes (schema_version) and pulls in it, also
after the server publishes newer ones (the server migrates its edits and
down-converts its pulls; a record the version cannot hold whole is listed
with (not_expressible)). 'upgrade' moves it to the latest: edits queued
before go as they were made, in the old version; edits after, in the new.
`

func runDevice(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stdout, deviceUsage)
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	switch args[0] {
	case "login":
		return runDeviceLogin(ctx, env, args[1:])
	case "sync":
		return runDeviceSync(ctx, env, args[1:])
	case "edit":
		return runDeviceEdit(ctx, env, args[1:])
	case "list":
		return runDeviceList(ctx, env, args[1:])
	case "status":
		return runDeviceStatus(ctx, env, args[1:])
	case "conflicts":
		return runDeviceConflicts(ctx, env, args[1:])
	case "fields":
		return runDeviceFields(ctx, env, args[1:])
	case "photo":
		return runDevicePhoto(ctx, env, args[1:])
	case "outbox":
		return runDeviceOutbox(ctx, env, args[1:])
	case "upgrade":
		return runDeviceUpgrade(ctx, env, args[1:])
	case "judge":
		return runDeviceJudge(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "fieldsync device: unknown command %q\n\n%s", args[0], deviceUsage)
	return ErrUsage
}

// openDevice opens the tablet database in dir. Only login creates one: a
// mistyped directory is an error, not a new tablet.
func openDevice(dir string, create bool) (*client.Client, error) {
	return openDeviceWith(dir, create, client.Options{})
}

// openDeviceWith is openDevice with the client's options.
func openDeviceWith(dir string, create bool, opts client.Options) (*client.Client, error) {
	if dir == "" {
		return nil, errors.New("give the tablet's directory with --dir")
	}
	path := filepath.Join(dir, "device.db")
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no tablet in %s: run 'fieldsync device login --dir %s --server URL --user NAME' first", dir, dir)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return client.Open(path, opts)
}

// parseAndOpenDevice parses a device command's flags and opens its tablet.
// A nil client ends the command with the error: a bad flag, no tablet, or
// nil after --help.
func parseAndOpenDevice(fs *flag.FlagSet, dir *string, args []string) (*client.Client, error) {
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return nil, err
	}
	return openDevice(*dir, false)
}

// deviceError words the client's errors for a person at a terminal.
func deviceError(dir string, err error) error {
	switch {
	case errors.Is(err, client.ErrLoginRequired):
		return fmt.Errorf("this tablet is not logged in, or its session ended (30 days without a sync, a new password): "+
			"run 'fieldsync device login --dir %s --server URL --user NAME'; pending edits are kept", dir)
	case errors.Is(err, client.ErrAccountDisabled):
		return fmt.Errorf("this account is disabled: ask an admin to enable it (fieldsync user enable), then run "+
			"'fieldsync device login --dir %s --server URL --user NAME' (disabling ended the old session); pending edits are kept", dir)
	case errors.Is(err, client.ErrDeviceRevoked):
		return fmt.Errorf("a supervisor revoked this tablet: it can no longer sync (its pending edits stay in %s)", dir)
	}
	return err
}

func deviceFlags(env Env, name string) (*flag.FlagSet, *string) {
	fs := newFlagSet(env, "device "+name)
	return fs, fs.String("dir", "", "the tablet's directory (its database is DIR/device.db)")
}

func runDeviceLogin(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "login")
	server := fs.String("server", "http://127.0.0.1:8080", "the fieldsync server's URL")
	user := fs.String("user", "", "the name of the user to log in as")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long (the server is retried meanwhile)")
	version := fs.Int("schema-version", 0, "the version of the forms to put the tablet on (default: the one it is on, at the first login the latest)")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *user == "" {
		return errors.New("give the user name with --user")
	}
	if *version < 0 {
		return errors.New("--schema-version is a version number: 1, 2, …")
	}
	password, err := readSecretLine(env.Stdin)
	if err != nil {
		return err
	}
	c, err := openDeviceWith(*dir, true, client.Options{SchemaVersion: *version})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := c.Login(ctx, *server, *user, password); err != nil {
		return fmt.Errorf("login to %s: %w", *server, err)
	}
	v, err := c.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "logged in as %s on device %s (%s), on schema version %d\n", *user, c.DeviceID(), *server, v)
	return nil
}

func readSecretLine(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("the password is read from standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("give the password on standard input, e.g. echo 'secret' | fieldsync device login ...")
	}
	return line, nil
}

func runDeviceSync(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "sync")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up (keeping everything for the next sync) after this long")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := c.Sync(ctx)
	if err != nil && rep.Pushed == 0 && rep.Pulled == 0 && rep.Refused == 0 {
		return deviceError(*dir, err)
	}
	fmt.Fprintf(env.Stdout, "pushed %d change sets (%d changes", rep.Pushed, rep.Changes)
	if rep.Replayed > 0 {
		fmt.Fprintf(env.Stdout, ", %d answered again after a lost answer", rep.Replayed)
	}
	if rep.Photos > 0 {
		fmt.Fprintf(env.Stdout, ", %d photos uploaded", rep.Photos)
	}
	fmt.Fprintf(env.Stdout, "), %d conflicts reported, %d refused; pulled %d records", rep.Conflicts, rep.Refused, rep.Pulled)
	switch {
	case rep.Repaired && rep.Verified:
		fmt.Fprint(env.Stdout, "; the copy differed from the server's and was pulled again: now verified")
	case rep.Verified:
		fmt.Fprint(env.Stdout, "; copy verified against the server's checksum")
	}
	fmt.Fprintln(env.Stdout)
	if rep.PhotosWaiting > 0 {
		why := "the server could not take them yet"
		if rep.PhotosWaitReason != "" {
			why += " (" + rep.PhotosWaitReason + ")"
		}
		fmt.Fprintf(env.Stdout, "%d photos wait on this device: %s; their records were pushed, and a later sync sends them "+
			"(until then other tablets cannot download them)\n", rep.PhotosWaiting, why)
	}
	if err != nil {
		return fmt.Errorf("sync: %w (nothing is lost: pending edits stay in the outbox)", deviceError(*dir, err))
	}
	if rep.Refused > 0 {
		return fmt.Errorf("%d changes or photos refused by the server: 'fieldsync device conflicts --dir %s' shows why; "+
			"an edit of a refused change's record sends it again, while a refused photo is never sent again "+
			"(take it again as a %s file, 'fieldsync device photo', and put the new SHA-256 in the record)", rep.Refused, *dir, syncproto.PhotoTypes)
	}
	return nil
}

func runDeviceEdit(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "edit")
	entity := fs.String("entity", "", "household, housing_inspection or water_inspection")
	id := fs.String("id", "", "the record's id")
	isNew := fs.Bool("new", false, "create a new record (its id is printed)")
	del := fs.Bool("delete", false, "delete the record")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if *entity == "" || (*id == "") == !*isNew {
		return errors.New("give --entity and either --id ID or --new")
	}
	c, err := openDevice(*dir, false)
	if err != nil {
		return err
	}
	defer c.Close()
	if *del {
		if fs.NArg() > 0 {
			return errors.New("--delete takes no FIELD=VALUE")
		}
		if err := c.Delete(ctx, *entity, strings.ToLower(*id)); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "deleted %s %s (pending: run 'fieldsync device sync')\n", *entity, *id)
		return nil
	}
	if fs.NArg() == 0 {
		return errors.New("give at least one FIELD=VALUE")
	}
	forms, err := deviceForms(ctx, c)
	if err != nil {
		return err
	}
	fields := client.Fields{}
	for _, a := range fs.Args() {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return fmt.Errorf("%q: write FIELD=VALUE", a)
		}
		v, err := parseFieldValue(forms[*entity], name, value)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fields[name] = v
	}
	if *isNew {
		newID, err := c.Create(ctx, *entity, fields)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, newID)
		return nil
	}
	if err := c.Update(ctx, *entity, strings.ToLower(*id), fields); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "edited %s %s (pending: run 'fieldsync device sync')\n", *entity, *id)
	return nil
}

// deviceForms reads the form definitions the tablet fetched at login.
func deviceForms(ctx context.Context, c *client.Client) (map[string]*schema.Form, error) {
	raw, err := c.Schema(ctx)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, errors.New("this tablet has no schema yet: run 'fieldsync device login' first")
	}
	var s schema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("the schema fetched at login: %w", err)
	}
	out := map[string]*schema.Form{}
	for _, f := range s.Forms {
		out[f.Entity] = f
	}
	return out, nil
}

// parseFieldValue reads a command-line value by the field's type. The
// server validates it again; this only picks the JSON type.
func parseFieldValue(form *schema.Form, name, value string) (json.RawMessage, error) {
	if value == "null" {
		return json.RawMessage("null"), nil
	}
	var typ schema.FieldType
	if form != nil {
		for _, f := range form.Fields {
			if f.Name == name {
				typ = f.Type
			}
		}
	}
	var v any = value
	switch typ {
	case schema.TypeInteger, schema.TypeNumber:
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", value)
		}
		v = n
	case schema.TypeBoolean:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", value)
		}
		v = b
	case schema.TypeSet:
		items := []string{}
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v = items
	case schema.TypeLocation:
		lat, lon, ok := strings.Cut(value, ",")
		la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
		lo, err2 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q: write lat,lon", value)
		}
		v = map[string]float64{"lat": la, "lon": lo}
	case "":
		// A field the schema does not name: JSON if it is JSON, else text.
		if json.Valid([]byte(value)) {
			return json.RawMessage(value), nil
		}
	}
	return json.Marshal(v)
}

func runDeviceList(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "list")
	entity := fs.String("entity", "", "only records of this entity")
	asJSON := fs.Bool("json", false, "one JSON record per line")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	if *entity != "" {
		forms, err := deviceForms(ctx, c)
		if err != nil {
			return err
		}
		if err := knownEntity(forms, *entity); err != nil {
			return err
		}
	}
	records, err := c.List(ctx, *entity)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, r := range records {
			rec := map[string]any{"entity": r.Entity, "id": r.ID, "version": r.Version, "fields": r.Fields,
				"deleted": r.Deleted, "pending": r.Pending}
			if len(r.Flags) > 0 {
				rec["flags"] = r.Flags
			}
			if err := enc.Encode(rec); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTITY\tID\tVERSION\tFIELDS")
	for _, r := range records {
		mark := ""
		if r.Pending {
			mark = "*"
		}
		if r.Deleted {
			mark += " (deleted)"
		}
		for _, f := range r.Flags {
			mark += " (" + f + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%s\t%s\n", r.Entity, r.ID, r.Version, mark, fieldsText(r.Fields))
	}
	return tw.Flush()
}

// fieldsText renders fields as name=value, sorted by name.
func fieldsText(fields map[string]json.RawMessage) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + string(fields[k])
	}
	return strings.Join(parts, " ")
}

func runDeviceStatus(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "status")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return syncproto.FormatTime(t)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "server\t%s\n", st.Server)
	fmt.Fprintf(tw, "user\t%s (logged in: %v)\n", st.User, st.LoggedIn)
	fmt.Fprintf(tw, "device\t%s\n", st.DeviceID)
	fmt.Fprintf(tw, "schema version\t%d\n", st.SchemaVersion)
	fmt.Fprintf(tw, "pending changes\t%d\n", st.Pending)
	if st.InFlight != "" {
		fmt.Fprintf(tw, "change set in flight\t%s (sent again, same id, at the next sync)\n", st.InFlight)
	}
	fmt.Fprintf(tw, "last device_seq\t%d\n", st.DeviceSeq)
	fmt.Fprintf(tw, "records held\t%d\n", st.Records)
	fmt.Fprintf(tw, "cursor\t%s\n", st.Cursor)
	fmt.Fprintf(tw, "last sync\t%s\n", when(st.LastSync))
	fmt.Fprintf(tw, "last verified\t%s\n", when(st.LastVerified))
	fmt.Fprintf(tw, "conflicts reported\t%d (%d open, awaiting a supervisor)\n", st.Conflicts, st.OpenConflicts)
	fmt.Fprintf(tw, "changes refused\t%d\n", st.Refused)
	fmt.Fprintf(tw, "photos to upload\t%d\n", st.PhotosPending)
	if st.PhotosWaiting > 0 {
		fmt.Fprintf(tw, "  of them waiting\t%d (their records were pushed; the server could not take them yet)\n", st.PhotosWaiting)
	}
	return tw.Flush()
}

func runDeviceConflicts(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "conflicts")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	conflicts, err := c.Conflicts(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONFLICT\tRECORD\tFIELD\tPOLICY\tSTATE\tSENT\tKEPT")
	for _, cf := range conflicts {
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", cf.ConflictID, cf.Entity, cf.RecordID, cf.Field, cf.Policy,
			cf.State, cf.Incoming, cf.Kept)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	refused, err := c.Refused(ctx)
	if err != nil || len(refused) == 0 {
		return err
	}
	fmt.Fprintln(env.Stdout, "\nRefused by the server (kept here, not applied; edit the record to fix it and send it again):")
	for _, r := range refused {
		fmt.Fprintf(env.Stdout, "  %s %s: %s\n", r.Entity, r.RecordID, r.Reason)
	}
	return nil
}

func runDeviceFields(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "fields")
	entity := fs.String("entity", "", "only this entity")
	lang := fs.String("lang", "", "`LANG` of the forms' titles and the fields' labels: zh or en (default: the forms' own title and label)")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	forms, err := deviceForms(ctx, c)
	if err != nil {
		return err
	}
	if *entity != "" {
		if err := knownEntity(forms, *entity); err != nil {
			return err
		}
	}
	if *lang != "" && *lang != schema.LangZH && *lang != schema.LangEN {
		return fmt.Errorf("--lang %s: must be zh or en", *lang)
	}
	names := make([]string, 0, len(forms))
	for name := range forms {
		if *entity == "" || name == *entity {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	// One table per form, so that a form's title or a region rule does
	// not widen the columns of the fields; the rules follow, as text.
	for i, name := range names {
		f := forms[name]
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		title := f.Title
		if *lang != "" {
			title = f.TitleIn(*lang)
		}
		fmt.Fprintf(env.Stdout, "%s (%s)\n", name, title)
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FIELD\tTYPE\tREQUIRED\tPOLICY\tVALUES\tLABEL")
		for _, fd := range f.Fields {
			req := ""
			if fd.Required {
				req = "required"
			}
			detail := strings.Join(fd.Values, ",")
			if fd.Min != nil || fd.Max != nil {
				detail = strings.TrimSpace(fmt.Sprintf("%s %s", rangeOf(fd.Min, ">= "), rangeOf(fd.Max, "<= ")))
			}
			if fd.Type == schema.TypeReference && fd.Entity != "" {
				detail = "id of a " + fd.Entity
			}
			label := fd.Label
			if *lang != "" {
				label = fd.LabelIn(*lang)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", fd.Name, fd.Type, req, fd.Policy, orDash(detail), orDash(label))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, rule := range f.RegionRules {
			fmt.Fprintf(env.Stdout, "  in regions %s also required: %s\n", strings.Join(rule.Prefixes, ","), strings.Join(rule.Require, ", "))
		}
	}
	return nil
}

// knownEntity refuses an --entity that no form of the tablet's schema has,
// naming the ones it has.
func knownEntity(forms map[string]*schema.Form, entity string) error {
	if forms[entity] != nil {
		return nil
	}
	names := make([]string, 0, len(forms))
	for name := range forms {
		names = append(names, name)
	}
	sort.Strings(names)
	return fmt.Errorf("--entity %q is not a form of this tablet's schema: use one of %s", entity, strings.Join(names, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rangeOf(v *float64, prefix string) string {
	if v == nil {
		return ""
	}
	return prefix + strconv.FormatFloat(*v, 'f', -1, 64)
}

func runDevicePhoto(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "photo")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() != 1 {
		return errors.New("give one photo file")
	}
	c, err := openDevice(*dir, false)
	if err != nil {
		return err
	}
	defer c.Close()
	hash, err := c.AddPhotoFile(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, hash)
	return nil
}
