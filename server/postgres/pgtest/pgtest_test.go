package pgtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestDatabasesAreSeparate: each DB is a new, empty database of the
// running cluster; what one test writes another does not see.
func TestDatabasesAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := DB(t), DB(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table created in one test's database is visible in another's")
	}
}

// TestOrphanedClustersAreReaped: a cluster whose test binary died without
// stopping it (here: one started under the id of a process that has
// exited) is stopped and removed by the next Start.
func TestOrphanedClustersAreReaped(t *testing.T) {
	orphan, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan.dir, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	next, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer next.Stop()
	if _, err := os.Stat(orphan.dir); !errors.Is(err, os.ErrNotExist) {
		orphan.Stop()
		t.Fatalf("the orphaned cluster's directory is still there: %v", err)
	}
	if _, err := os.Stat(shared.dir); err != nil {
		t.Fatalf("the running binary's own cluster was reaped: %v", err)
	}
}

// TestDatabasesCopyTheTemplate: once a template is set, every new
// database starts as prepare left the template (here: a table and its
// row), and what a test writes in its copy reaches neither the template
// nor the next copy.
func TestDatabasesCopyTheTemplate(t *testing.T) {
	ctx := context.Background()
	c := shared
	t.Cleanup(func() { c.template = "" })
	err := c.SetTemplate(ctx, func(ctx context.Context, url string) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE prepared (x int); INSERT INTO prepared VALUES (1)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	count := func(url string) int {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM prepared`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO prepared VALUES (2)`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(DB(t)); n != 1 {
		t.Fatalf("the first copy has %d rows, want the template's 1", n)
	}
	if n := count(DB(t)); n != 1 {
		t.Fatalf("the second copy has %d rows: a copy's write reached the template", n)
	}
}
