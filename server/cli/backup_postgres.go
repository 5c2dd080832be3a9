package cli

import "fmt"

// errBackupOnPostgres is the answer of backup and restore given a
// PostgreSQL --store: the database is PostgreSQL's to back up, with its
// own tools; fieldsync's part is the photo directory.
func errBackupOnPostgres(command, store string) error {
	if err := checkStore(store); err != nil {
		return err
	}
	return fmt.Errorf("%s: fieldsync does not %s a PostgreSQL database: use PostgreSQL's own tools — "+
		"pg_dump / pg_restore for a copy, pg_basebackup with WAL archiving for a point in time (docs/operators.md "+
		"\"Backups on PostgreSQL\"). The signing keys and the cursor secret are in the database and come with it; "+
		"the photos are not: copy the photo directory (serve --photos) after the database, e.g. with rsync", command, command)
}
