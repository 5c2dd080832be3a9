// Package cli is the fieldsync command: Run (which main and the
// end-to-end tests start), the command table, the configuration (flags,
// FIELDSYNC_* variables, the TOML file), progress bars, and one file per
// command — serve, seed and generate, export, user, key, backup and
// restore, device, bench, version.
//
// It is where the parts are wired together: it may import every package
// of fieldsync (api, export, bench, the SQLite store, auth, attachments,
// the client, the fixtures); nothing imports it but main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldsync/fieldsync/server/sqlite"
)

// Version is the build's version, set by `make build` with -ldflags -X.
var Version = "dev"

// Env is what a command sees of its process: arguments, standard streams,
// the environment, and a hook that reports the address the server listens
// on (tests use it to find a free port chosen by the kernel).
type Env struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads an environment variable (os.LookupEnv in main); nil
	// for an empty environment.
	LookupEnv func(string) (string, bool)
	Listening func(addr string)
}

// command is one command of the fieldsync command line. The table below is
// what Run dispatches on and what fieldsync --help lists, so that the two
// cannot drift apart; each command's --help prints its synopsis, its
// description and every flag it defines.
type command struct {
	name     string // as typed: "serve", "user add"
	synopsis string // its arguments, for the usage line
	summary  string // one line for fieldsync --help
	about    string // what COMMAND --help says before the flags
	run      func(ctx context.Context, env Env, args []string) error
}

// commands are the commands of fieldsync, in the order of its --help. (A
// function, not a variable: the commands' own help refers back to it.)
func commands() []command {
	return []command{
		{"serve", "[--config FILE] [--addr HOST:PORT] [--data DIR] [--store URL] [flags]", "serve the sync API from the database in DIR",
			`Serve the sync API (docs/protocol.md, GET /v1/openapi.json) from the database in
--data, creating it, migrating it and making a signing key on first start. Stops
gracefully on SIGTERM or SIGINT, finishing requests in flight.

Every setting is a flag, an environment variable (FIELDSYNC_ and the flag's name
in capitals, dashes as underscores) or a key of a TOML config file (--config FILE
or FIELDSYNC_CONFIG; the flag's name without dashes as the key, e.g.
busy-timeout = "10s"). A flag wins over the environment, which wins over the
file, which wins over the default. An empty variable counts as unset. An invalid
value or an unknown key in the file stops serve before it starts.`, runServe},
		{"seed", "--data DIR [--store URL]", "load the demo regions, households and inspections",
			`Load the demo data set (fixtures/) through the normal push path, and create the
demo accounts that do not exist yet. Safe to repeat: the change sets have fixed
ids, so a second run replays instead of duplicating.`, runSeed},
		{"generate", "--data DIR --households N [--seed S] [--store URL]", "load a large deterministic data set (benchmarks)",
			`Generate households with their inspections, deterministically from --seed, and
load them through the normal push path. The same seed and size give the same data.`, runGenerate},
		{"export", "--data DIR --out FILE [--region PREFIX] [--entity E] [--format F] [--as-of CURSOR] [--lang L] [--divisions FILE] [--force] [--store URL]", "write a snapshot to a file, for offline hand-over",
			`Write every current record of a region to FILE in a snapshot format of
GET /v1/snapshot (ndjson, csv, geojson, xlsx), byte for byte what the API would
send. Reads from one SQLite read transaction, so it may run while the server
serves the same --data. The file is written beside FILE under a temporary name,
fsynced, and renamed to FILE only when complete (mode 0600: it holds personal data).`, runExport},
		{"import", "--data DIR --source NAME [--mapping FILE] [--store URL] FILE", "import a department's list (CSV or XLSX) as a registry source's next version",
			`Import FILE (CSV in UTF-8 or GBK, or XLSX: its first sheet) as the next version of
the registry source NAME (docs/forms.md, "Departments and registries"). Its columns
map to the source's fields by their names and Chinese headers, or by --mapping.
The same file as the source's latest import changes nothing; another file is
diffed against the source's rows by their key (added, changed, removed). Every
bad row is reported with its line and column, and then nothing of the file is
imported. Rows are written as they are read, in one transaction: memory stays
bounded whatever the file's size. The server may be running.`, runImport},
		{"user add", "--data DIR --name NAME --role ROLE [--scope P1,P2] [--department D] [--create] [--store URL]", "create or update a user (password on standard input)",
			`Create a user, or update an existing one's role, scope and password (which ends
the sessions opened with the old password). The password is one line on standard
input, e.g. echo 'a-long-password' | fieldsync user add ... The database in --data
must exist (serve or seed creates it); --create makes it when it does not.`, runUserAdd},
		{"user list", "--data DIR [--store URL]", "list users, roles, scopes and state",
			`List every user with role, scope, state and last update.`, runUserList},
		{"user disable", "--data DIR --name NAME [--store URL]", "stop a user's access at once",
			`Disable a user: their tokens stop working on the next request and they cannot
log in until enabled.`, runUserDisable},
		{"user enable", "--data DIR --name NAME [--store URL]", "allow a disabled user again",
			`Enable a disabled user again. Disabling ended their sessions for good: each of
their tablets logs in again (its pending edits are kept).`, runUserDisable},
		{"key rotate", "--data DIR | --store URL", "make a new token-signing key current",
			`Make a new Ed25519 token-signing key current. A running server picks it up
within 5 seconds; tokens signed with the previous keys (the last three are kept)
stay valid until they expire.`, runKeyRotate},
		{"backup", "--data DIR --out FILE [--keys] [--attachments=false] [--force]", "a consistent copy of the database and the photos, the server running or not",
			`Copy the database with SQLite's online backup API, in one read transaction,
while the server goes on serving; check the copy (integrity_check), fsync it, and
rename FILE.tmp to FILE. The photos go to FILE.attachments/ (unless
--attachments=false); --keys also copies the signing keys to FILE.keys/.`, runBackup},
		{"restore", "--data DIR --from FILE [--force]", "put a backup in place (stop the server first)",
			`Check a backup and put it in place as the database of --data (the server must be
stopped), with its photos (FILE.attachments/) and keys (FILE.keys/) when the
backup has them. With --force an existing database is kept beside, renamed
*.before-restore-TIME. Cursors issued before the restore stop being accepted, so
tablets pull afresh.`, runRestore},
		{"device login", "--dir DIR --server URL --user NAME [--schema-version N]  (password on standard input)", "a tablet: log in (fieldsync device help)",
			deviceAbout + "Log this tablet in: a new device id on first login, the password on standard input. It fetches the forms of its version: --schema-version N, else the one it is on, else (a first login) the latest the server serves.", runDeviceLogin},
		{"device sync", "--dir DIR [--timeout 2m]", "a tablet: push pending edits, pull, verify the copy",
			deviceAbout + "Push the pending edits, pull every change since the last sync, and compare the copy's checksum with the server's.", runDeviceSync},
		{"device edit", "--dir DIR --entity E (--id ID | --new) [--delete] FIELD=VALUE...", "a tablet: change, create or delete a record",
			deviceAbout + "Change fields of a record (--id), create one (--new, prints its id) or delete one (--delete). Values are read by the field's type; 'null' clears a field.", runDeviceEdit},
		{"device list", "--dir DIR [--entity E] [--json]", "a tablet: the records it holds",
			deviceAbout + "List the records this tablet holds ('*' marks pending edits).", runDeviceList},
		{"device status", "--dir DIR", "a tablet: pending edits, cursor, last sync, conflicts",
			deviceAbout + "Show the pending edits, the cursor, the last sync and the conflicts of this tablet.", runDeviceStatus},
		{"device conflicts", "--dir DIR", "a tablet: conflicts and refusals reported to it",
			deviceAbout + "List the conflicts and refusals the server reported to this tablet.", runDeviceConflicts},
		{"device photo", "--dir DIR FILE", "a tablet: keep a photo, print its SHA-256 for photos=…",
			deviceAbout + "Keep a photo file on the tablet (uploaded by the next sync) and print its SHA-256, to put in a record's photos field.", runDevicePhoto},
		{"device outbox", "export --dir DIR --out FILE | replay --dir DIR FILE", "a tablet: export its pending edits to a file; a supervisor's: replay one",
			deviceAbout + deviceOutboxAbout, runDeviceOutbox},
		{"device fields", "--dir DIR [--entity E]", "a tablet: the fields of each form",
			deviceAbout + "Show the fields of each form: type, required, values.", runDeviceFields},
		{"device upgrade", "--dir DIR [--timeout 2m]", "a tablet: move to the server's latest version of the forms",
			deviceAbout + "Move this tablet to the latest version of the forms the server serves, and pull its records again in it. The edits queued before stay in the old version (pushed as they were made; the server migrates them); edits after are checked against and sent in the new one.", runDeviceUpgrade},
		{"device judge", "--dir DIR --id ID --rule NAME", "a tablet: judge a criterion on a record",
			deviceAbout + "Judge a criterion (an any_of rule of the record's form) on the tablet's copy of a record, pending edits included: met, not_met or not_evaluable, and the condition that decided.", runDeviceJudge},
		{"bench", strings.TrimPrefix(benchUsage, "bench "), "the load generator and its raw SQLite ceiling (BENCHMARKS.md)",
			`Generate a database, push change sets from simulated tablets, pull, download
snapshots, and measure a raw SQLite loop beside them; print the results (and
--json FILE). See BENCHMARKS.md.`, runBench},
		{"forms check", "DIR [--data DIR]", "validate a form set and show what changed against the published versions",
			`Validate the form set in DIR (version directories 1/, 2/, …, each with its
version.json and form files): every problem is listed with its file and JSON
path, and the exit status is non-zero. Then print, per version, what changed
against the versions published in the data directory --data (without it, the
built-in form set): forms and fields added, removed or retyped, enum values
added or removed, new versions and their migration steps. A published version
that changed is an error: publish the change as a new version.`, runFormsCheck},
		{"version", "", "print the version and the Go version it was built with",
			`Print the version of fieldsync and of the Go toolchain that built it.`, runVersion},
	}
}

// deviceAbout starts the help of each device subcommand.
const deviceAbout = `Play a tablet from the command line with the Go sync client: DIR holds its own
database (its copy of the records, its outbox, its tokens). 'fieldsync device
help' shows every device subcommand.

`

// commandNamed finds a command of the table.
func commandNamed(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// printUsage writes fieldsync --help.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `fieldsync — the sync server for village survey teams

Tablets push household, housing and water inspections here and pull the merged
records back; supervisors read snapshots, reports and conflicts.

Usage: fieldsync COMMAND [flags]

Commands:
`)
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'fieldsync COMMAND --help' for what a command does and all its flags.
Start with: make run (the demo data, then serve on http://127.0.0.1:8080).
Operators: docs/operators.md. The API: docs/protocol.md, GET /v1/openapi.json.
`)
}

// ErrUsage is returned for a command line that cannot be run; the usage
// has been printed.
var ErrUsage = errors.New("usage")

// Run runs the fieldsync command line until ctx is done (for serve) or the
// command finishes. main calls it; so do the end-to-end tests.
func Run(ctx context.Context, env Env) error {
	if len(env.Args) == 0 {
		printUsage(env.Stderr)
		return ErrUsage
	}
	name, args := env.Args[0], env.Args[1:]
	switch name {
	case "help", "-h", "--help", "-help":
		printUsage(env.Stdout)
		return nil
	case "--version", "-version":
		name = "version"
	case "device":
		if len(args) == 0 || helpAsked(args[:1]) || args[0] == "help" {
			return runDevice(ctx, env, args)
		}
		name, args = name+" "+args[0], args[1:]
	case "user", "key", "forms":
		if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
			return groupUsage(env, name, args)
		}
		name, args = name+" "+args[0], args[1:]
	}
	if c := commandNamed(name); c != nil {
		return c.run(ctx, env, args)
	}
	fmt.Fprintf(env.Stderr, "fieldsync: unknown command %q\n\n", strings.Join(env.Args[:min(2, len(env.Args))], " "))
	printUsage(env.Stderr)
	return ErrUsage
}

// groupUsage answers `fieldsync user` and `fieldsync key` without (or
// with --help before) a subcommand: the list of its subcommands.
func groupUsage(env Env, group string, args []string) error {
	w, err := env.Stderr, ErrUsage
	if helpAsked(args) || (len(args) > 0 && args[0] == "help") {
		w, err = env.Stdout, nil
	}
	fmt.Fprintf(w, "Usage: fieldsync %s SUBCOMMAND [flags]\n\nSubcommands:\n", group)
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  fieldsync %-14s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'fieldsync %s SUBCOMMAND --help' for its flags.\n", group)
	return err
}

// newFlagSet makes the flag set of a command of the table. Its usage, the
// answer to --help, goes to standard output; after a wrong flag, to
// standard error.
func newFlagSet(env Env, name string) *flag.FlagSet {
	c := commandNamed(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	if helpAsked(env.Args) {
		fs.SetOutput(env.Stdout)
	}
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: fieldsync %s %s\n\n%s\n", name, c.synopsis, c.about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			printSettings(w, fs, name == "serve")
		}
	}
	return fs
}

// parseFlags parses a command's arguments; --help prints the usage (the
// caller then returns nil, see helpAsked).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return ErrUsage
	}
	return nil
}

func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// openData opens (creating if needed) the database in a data directory.
func openData(ctx context.Context, dir string, stderr io.Writer) (*sqlite.Store, error) {
	return openDataWith(ctx, dir, stderr, sqlite.Options{})
}

// openExisting opens the database of a data directory that must have one:
// the commands that read or change what is there (user add without
// --create, list, disable, enable, key rotate) refuse a mistyped --data
// instead of starting an empty database beside the real one. Only serve,
// seed and generate create one.
func openExisting(ctx context.Context, dir string, stderr io.Writer) (*sqlite.Store, error) {
	if err := mustHaveDatabase(dir); err != nil {
		return nil, err
	}
	return openData(ctx, dir, stderr)
}

func mustHaveDatabase(dir string) error {
	if dir == "" {
		return errors.New("--data is required")
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		return fmt.Errorf("no fieldsync database in %s (is --data right? 'fieldsync serve' or 'seed' creates one; 'user add --create' an empty one)", dir)
	}
	return nil
}

// openDataWith is openData with store options (serve's busy timeout).
func openDataWith(ctx context.Context, dir string, stderr io.Writer, opts sqlite.Options) (*sqlite.Store, error) {
	if dir == "" {
		return nil, errors.New("--data is required")
	}
	if err := prepareDataDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, sqlite.FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// Say so: a mistyped --data would otherwise silently start a new,
		// empty database.
		fmt.Fprintf(stderr, "fieldsync: creating a new database at %s\n", path)
	}
	return sqlite.Open(ctx, path, opts)
}
