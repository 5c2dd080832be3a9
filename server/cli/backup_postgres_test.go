package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupAndRestoreRefusePostgres: backup and restore given a
// PostgreSQL --store refuse, naming PostgreSQL's tools and the photo
// directory fieldsync leaves to the operator, without the URL's password,
// and write nothing.
func TestBackupAndRestoreRefusePostgres(t *testing.T) {
	const store = "postgres://fieldsync:s3cret-pw@db.example:5432/fieldsync"
	dir := t.TempDir()
	out := filepath.Join(dir, "backup.db")
	for _, args := range [][]string{
		{"backup", "--store", store, "--out", out},
		{"restore", "--store", store, "--data", filepath.Join(dir, "data"), "--from", out},
	} {
		msg := cliFails(t, args...)
		for _, want := range []string{"pg_dump", "pg_basebackup", "photo directory", "--photos"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q not in the refusal:\n%s", args[0], want, msg)
			}
		}
		if strings.Contains(msg, "s3cret-pw") {
			t.Errorf("%s: the refusal repeats the password:\n%s", args[0], msg)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused backup or restore wrote %d files", len(entries))
	}
}
