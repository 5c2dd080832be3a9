package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// loadForms loads the form set of serve --forms (and forms check): the
// built-in set when dir is empty. A bad set returns every problem, one a
// line (schema.SetErrors).
func loadForms(dir string) (*schema.Catalog, error) {
	if dir == "" {
		return schema.BuiltIn(), nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--forms %s: not a directory of version directories (1/, 2/, …)", dir)
	}
	c, err := schema.LoadCatalog(os.DirFS(dir), ".")
	if err != nil {
		return nil, fmt.Errorf("form set %s: %w", dir, err)
	}
	return c, nil
}

// runFormsCheck is fieldsync forms check DIR [--data DIR]: validate a form
// set and print what changed against the versions published in the data
// directory (the built-in set without --data).
func runFormsCheck(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "forms check")
	data := fs.String("data", "", "compare with the versions published in this data `DIR` (default: the built-in form set)")
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if fs.NArg() > 0 || dir == "" {
		fmt.Fprintln(env.Stderr, "usage: fieldsync forms check DIR [--data DIR]")
		return ErrUsage
	}
	set, err := loadForms(dir)
	if err != nil {
		return err
	}
	published := map[int][]byte{}
	against := "the built-in form set"
	if *data != "" {
		store, err := openExisting(ctx, *data, io.Discard)
		if err != nil {
			return err
		}
		stored, err := store.PublishedSchemas(ctx)
		store.Close()
		if err != nil {
			return err
		}
		for _, p := range stored {
			published[p.Version] = p.Document
		}
		against = "the versions published in " + *data
	} else {
		b := schema.BuiltIn()
		for _, n := range b.Versions() {
			published[n] = b.Document(n)
		}
	}
	return printFormsCheck(env.Stdout, dir, against, set, published)
}

// printFormsCheck prints, per version of set, whether it is unchanged,
// changed (an error: a published version is immutable) or new, with what
// changed and a new version's migration steps.
func printFormsCheck(w io.Writer, dir, against string, set *schema.Catalog, published map[int][]byte) error {
	vs := set.Versions()
	fmt.Fprintf(w, "form set %s: valid, versions %d to %d; compared with %s\n", dir, vs[0], vs[len(vs)-1], against)
	changed := 0
	for _, n := range vs {
		info := set.Info(n)
		doc, ok := published[n]
		switch {
		case ok && string(doc) == string(set.Document(n)):
			fmt.Fprintf(w, "version %d: published, unchanged\n", n)
			continue
		case ok:
			changed++
			fmt.Fprintf(w, "version %d: CHANGED — a published version is immutable; publish the change as a new version\n", n)
			if old, _, err := schema.ParseDocument(doc); err == nil {
				printLines(w, schema.Diff(old, set.Version(n)))
			}
			continue
		}
		fmt.Fprintf(w, "version %d: new (published %s)\n", n, info.Published)
		if n > 1 {
			fmt.Fprintf(w, "  against version %d:\n", n-1)
			printLines(w, schema.Diff(set.Version(n-1), set.Version(n)))
			printStandards(w, set.Version(n).Standards)
			steps := set.MigrationSteps(n)
			fmt.Fprintf(w, "  migration steps (%d):\n", len(steps))
			for i, s := range steps {
				fmt.Fprintf(w, "    migrations[%d] %s\n", i, s)
			}
		} else {
			fmt.Fprintf(w, "  forms: %s\n", strings.Join(set.Version(n).Entities(), ", "))
		}
	}
	for n := range published {
		if set.Version(n) == nil {
			fmt.Fprintf(w, "version %d: published, not in the set (still served, from the store)\n", n)
		}
	}
	printStandardWarnings(w, set)
	if changed > 0 {
		return fmt.Errorf("%d published version(s) changed", changed)
	}
	return nil
}

// printStandards lists a new version's standards, each with its editions
// and the day each takes effect.
func printStandards(w io.Writer, std *schema.StandardSet) {
	if std == nil {
		return
	}
	fmt.Fprintf(w, "  standards (%d):\n", len(std.Standards))
	for _, st := range std.Standards {
		var eds []string
		for _, ed := range st.Editions {
			eds = append(eds, ed.Version+" from "+ed.Effective)
		}
		fmt.Fprintf(w, "    %s (%s, %s): %s\n", st.Name, st.Direction, st.Unit, strings.Join(eds, "; "))
	}
}

// printStandardWarnings prints a warning for every regional value of a
// version's standards that is stricter than its edition's national (or
// class) value for that region: the standards are neither raised nor
// lowered, a region may focus its checks but not tighten them. A warning
// does not make the check fail.
func printStandardWarnings(w io.Writer, set *schema.Catalog) {
	for _, n := range set.Versions() {
		for _, warn := range set.Version(n).Standards.Warnings(strconv.Itoa(n) + "/" + schema.StandardsFile) {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
	}
}

func printLines(w io.Writer, lines []string) {
	if len(lines) == 0 {
		fmt.Fprintln(w, "    no change to the forms")
	}
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

// openCatalog holds the form set to the versions the store published and
// publishes the new ones (syncproto.OpenCatalog).
func openCatalog(ctx context.Context, store syncproto.SchemaStore, set *schema.Catalog) (*schema.Catalog, error) {
	return syncproto.OpenCatalog(ctx, store, set, time.Now())
}

// publishedLatest returns the latest schema version the store published
// (the built-in set's latest when it published none): what the server
// serves its snapshots in, for export.
func publishedLatest(ctx context.Context, store syncproto.SchemaStore) (*schema.Schema, error) {
	stored, err := store.PublishedSchemas(ctx)
	if err != nil {
		return nil, err
	}
	docs := map[int][]byte{}
	for _, p := range stored {
		docs[p.Version] = p.Document
	}
	cat, err := schema.BuiltIn().WithPublished(docs)
	if err != nil {
		// The data directory's version 1 is not the built-in one: read
		// its latest document alone.
		if len(stored) == 0 {
			return nil, err
		}
		sch, _, perr := schema.ParseDocument(stored[len(stored)-1].Document)
		return sch, perr
	}
	return cat.Latest(), nil
}
